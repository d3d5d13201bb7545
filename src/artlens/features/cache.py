"""On-disk feature cache: vectors keyed by extractor id and content key (image MD5, or a hash of the
text for text extractors), in SQLite so that every batch commits atomically and an interrupted
extraction resumes where it stopped. Vectors are keyed by content, so readers of any generation of
the collection share one cache."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from artlens.storage import boundary

CACHE_SCHEMA_VERSION = 1


_SCHEMA = """
    CREATE TABLE IF NOT EXISTS {db}.extractors (id TEXT PRIMARY KEY, dim INTEGER NOT NULL, info TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS {db}.vectors (
        extractor TEXT NOT NULL, key TEXT NOT NULL, dtype TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (extractor, key)
    ) WITHOUT ROWID;
"""


class FeatureCache:
    """``read_only``: the file is only read (a read-only collection); vectors computed meanwhile are
    kept in memory for this process."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            self.conn = sqlite3.connect(":memory:", check_same_thread=False)
            self.conn.executescript(_SCHEMA.format(db="main"))
            self._dbs = ["main"]
            if self.path.exists():
                uri = self.path.resolve().as_uri()
                try:
                    self.conn.execute("ATTACH DATABASE ? AS disk", (f"{uri}?mode=ro",))
                    self.conn.execute("SELECT COUNT(*) FROM disk.sqlite_master").fetchone()
                except sqlite3.OperationalError:  # no shared-memory file possible: a read-only mount
                    if "disk" in self._attached():
                        self.conn.execute("DETACH DATABASE disk")
                    self.conn.execute("ATTACH DATABASE ? AS disk", (f"{uri}?immutable=1",))
                if int(self.conn.execute("PRAGMA disk.user_version").fetchone()[0]):
                    self._dbs.append("disk")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self._dbs = ["main"]
        if int(self.conn.execute("PRAGMA user_version").fetchone()[0]) == 0:
            self.conn.executescript(_SCHEMA.format(db="main") + f"PRAGMA user_version={CACHE_SCHEMA_VERSION};")

    def _attached(self) -> list[str]:
        return [r[1] for r in self.conn.execute("PRAGMA database_list")]

    def register(self, extractor_id: str, dim: int, info: dict) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO main.extractors(id, dim, info) VALUES (?,?,?)", (extractor_id, dim, json.dumps(info))
        )
        self.conn.commit()

    def extractors(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for db in reversed(self._dbs):  # what this process registered wins
            out.update({r[0]: {"dim": r[1], **json.loads(r[2])}
                        for r in self.conn.execute(f"SELECT id, dim, info FROM {db}.extractors")})
        return out

    def keys(self, extractor_id: str) -> set[str]:
        return {r[0] for db in self._dbs
                for r in self.conn.execute(f"SELECT key FROM {db}.vectors WHERE extractor = ?", (extractor_id,))}

    def count(self, extractor_id: str) -> int:
        if len(self._dbs) == 1:
            return int(self.conn.execute("SELECT COUNT(*) FROM vectors WHERE extractor = ?", (extractor_id,)).fetchone()[0])
        return len(self.keys(extractor_id))

    def put(self, extractor_id: str, keys: Sequence[str], vectors: np.ndarray, dtype: str = "float32") -> None:
        """Store a batch of vectors in one transaction."""
        arr = np.ascontiguousarray(vectors, dtype=dtype)
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO main.vectors(extractor, key, dtype, data) VALUES (?,?,?,?)",
                [(extractor_id, k, dtype, arr[i].tobytes()) for i, k in enumerate(keys)],
            )
        boundary("features-batch")

    def get(self, extractor_id: str, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``keys`` as float32 (n_found, dim) and a boolean mask of which keys were found."""
        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(keys))
        for db in reversed(self._dbs):
            for start in range(0, len(wanted), 900):  # SQLite's host-parameter limit
                chunk = wanted[start : start + 900]
                marks = ",".join("?" * len(chunk))
                for key, dtype, data in self.conn.execute(
                    f"SELECT key, dtype, data FROM {db}.vectors WHERE extractor = ? AND key IN ({marks})",
                    (extractor_id, *chunk),
                ):
                    found[key] = np.frombuffer(data, dtype=dtype)
        mask = np.array([k in found for k in keys], dtype=bool)
        if not found:
            return np.zeros((0, 0), dtype=np.float32), mask
        return np.stack([found[k] for k in keys if k in found]).astype(np.float32), mask

    def copy_into(self, target: "FeatureCache") -> None:
        """Every cached vector of every extractor, registered and stored in ``target`` as here."""
        for extractor_id, info in self.extractors().items():
            keys = sorted(self.keys(extractor_id))
            vectors, found = self.get(extractor_id, keys)
            target.register(extractor_id, int(info["dim"]), {k: v for k, v in info.items() if k != "dim"})
            target.put(extractor_id, [k for k, f in zip(keys, found) if f], vectors)

    def delete(self, extractor_id: str, keys: Iterable[str]) -> None:
        with self.conn:
            self.conn.executemany("DELETE FROM main.vectors WHERE extractor = ? AND key = ?",
                                  [(extractor_id, k) for k in keys])

    def close(self) -> None:
        self.conn.close()
