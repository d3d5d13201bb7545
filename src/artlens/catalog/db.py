"""The SQLite catalog: one row per distinct artwork (by MD5), the files that hold it, its metadata,
and the files that were skipped. Schema changes go through numbered migrations."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from artlens.errors import CollectionError

SCHEMA_VERSION = 1

# Migration i brings a catalog from version i to i + 1.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE artworks (
        id INTEGER PRIMARY KEY,
        md5 TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        added_at REAL NOT NULL
    );
    CREATE TABLE files (
        path TEXT PRIMARY KEY,
        artwork_id INTEGER NOT NULL REFERENCES artworks(id) ON DELETE CASCADE,
        size_bytes INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL
    );
    CREATE INDEX files_artwork ON files(artwork_id);
    CREATE TABLE metadata (
        artwork_id INTEGER NOT NULL REFERENCES artworks(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (artwork_id, key)
    );
    CREATE INDEX metadata_key_value ON metadata(key, value);
    CREATE TABLE skipped (
        path TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        size_bytes INTEGER,
        mtime_ns INTEGER,
        at REAL NOT NULL
    );
    """,
]


@dataclass(frozen=True)
class Artwork:
    id: int
    md5: str
    path: str
    size_bytes: int
    width: int
    height: int
    metadata: dict[str, str]


@dataclass(frozen=True)
class FileState:
    path: str
    artwork_id: int
    size_bytes: int
    mtime_ns: int


class Catalog:
    """Artworks, their files and metadata in one SQLite file (WAL mode, foreign keys on)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise CollectionError(
                f"no catalog at {self.path}",
                "run `artlens ingest DIR --collection PATH` to create the collection first",
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # -- schema ---------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise CollectionError(
                f"catalog {self.path} has schema version {version}, newer than this artlens ({SCHEMA_VERSION})",
                "upgrade artlens (pip install -U artlens)",
            )
        for step in range(version, SCHEMA_VERSION):
            with self.transaction():
                self.conn.executescript("BEGIN;" + _MIGRATIONS[step] + f"PRAGMA user_version={step + 1};")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Everything inside commits together or not at all."""
        try:
            yield self.conn
            if self.conn.in_transaction:
                self.conn.commit()
        except BaseException:
            if self.conn.in_transaction:
                self.conn.rollback()
            raise

    def close(self) -> None:
        self.conn.close()

    # -- files ----------------------------------------------------------------------------------
    def file_states(self, under: str | Path | None = None) -> dict[str, FileState]:
        sql, args = "SELECT path, artwork_id, size_bytes, mtime_ns FROM files", ()
        if under is not None:
            prefix = str(Path(under)).rstrip("/") + "/"
            sql, args = sql + " WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
        return {r[0]: FileState(*r) for r in self.conn.execute(sql, args)}

    def skipped_states(self) -> dict[str, tuple[int | None, int | None]]:
        return {r[0]: (r[1], r[2]) for r in self.conn.execute("SELECT path, size_bytes, mtime_ns FROM skipped")}

    def add_file(self, path: str, md5: str, size_bytes: int, mtime_ns: int, width: int, height: int) -> tuple[int, bool]:
        """Record a file; returns (artwork id, whether the artwork is new). Same content = same artwork."""
        row = self.conn.execute("SELECT id FROM artworks WHERE md5 = ?", (md5,)).fetchone()
        is_new = row is None
        if is_new:
            cur = self.conn.execute(
                "INSERT INTO artworks(md5, path, size_bytes, width, height, added_at) VALUES (?,?,?,?,?,?)",
                (md5, path, size_bytes, width, height, time.time()),
            )
            artwork_id = int(cur.lastrowid)
        else:
            artwork_id = int(row[0])
        self.conn.execute(
            "INSERT OR REPLACE INTO files(path, artwork_id, size_bytes, mtime_ns) VALUES (?,?,?,?)",
            (path, artwork_id, size_bytes, mtime_ns),
        )
        self.conn.execute("DELETE FROM skipped WHERE path = ?", (path,))
        return artwork_id, is_new

    def remove_files(self, paths: Iterable[str]) -> list[int]:
        """Forget files; artworks left without any file are deleted. Returns the deleted artwork ids."""
        removed: list[int] = []
        for path in paths:
            row = self.conn.execute("SELECT artwork_id FROM files WHERE path = ?", (path,)).fetchone()
            self.conn.execute("DELETE FROM files WHERE path = ?", (path,))
            self.conn.execute("DELETE FROM skipped WHERE path = ?", (path,))
            if row is None:
                continue
            artwork_id = int(row[0])
            other = self.conn.execute("SELECT path FROM files WHERE artwork_id = ? LIMIT 1", (artwork_id,)).fetchone()
            if other is None:
                self.conn.execute("DELETE FROM artworks WHERE id = ?", (artwork_id,))
                removed.append(artwork_id)
            else:
                self.conn.execute("UPDATE artworks SET path = ? WHERE id = ?", (other[0], artwork_id))
        return removed

    def drop_orphans(self) -> list[int]:
        """Delete artworks no file points to any more (a changed file got new content)."""
        ids = [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM artworks WHERE id NOT IN (SELECT artwork_id FROM files)")]
        self.conn.executemany("DELETE FROM artworks WHERE id = ?", [(i,) for i in ids])
        return ids

    def record_skipped(self, path: str, reason: str, size_bytes: int | None, mtime_ns: int | None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO skipped(path, reason, size_bytes, mtime_ns, at) VALUES (?,?,?,?,?)",
            (path, reason, size_bytes, mtime_ns, time.time()),
        )

    def skipped(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.conn.execute("SELECT path, reason FROM skipped ORDER BY path")]

    # -- metadata -------------------------------------------------------------------------------
    def set_metadata(self, artwork_id: int, fields: dict[str, str]) -> None:
        self.conn.execute("DELETE FROM metadata WHERE artwork_id = ?", (artwork_id,))
        self.conn.executemany(
            "INSERT INTO metadata(artwork_id, key, value) VALUES (?,?,?)",
            [(artwork_id, k, str(v)) for k, v in fields.items() if v not in (None, "")],
        )

    def metadata_columns(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT key FROM metadata ORDER BY key")]

    def column(self, key: str, ids: Sequence[int] | None = None) -> dict[int, str]:
        """One metadata column as {artwork id: value} (artworks without a value are absent)."""
        rows = self.conn.execute("SELECT artwork_id, value FROM metadata WHERE key = ?", (key,))
        values = {int(r[0]): r[1] for r in rows}
        if ids is not None:
            wanted = set(int(i) for i in ids)
            values = {i: v for i, v in values.items() if i in wanted}
        return values

    def labels(self, column: str) -> dict[int, str]:
        """A label column (classes for training, relevance for evaluation) as {artwork id: value}; an
        error that says what to do when it is missing or has a single class."""
        columns = self.metadata_columns()
        if column not in columns:
            raise CollectionError(f"label column {column!r} not found in this collection",
                                  f"columns available: {', '.join(columns) or 'none (ingest with --labels CSV)'}")
        labels = self.column(column)
        if len(set(labels.values())) < 2:
            raise CollectionError(f"label column {column!r} has fewer than two classes",
                                  "choose a column with several values")
        return labels

    def facet_counts(self, key: str, limit: int = 50) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT value, COUNT(*) AS n FROM metadata WHERE key = ? GROUP BY value ORDER BY n DESC, value LIMIT ?",
            (key, limit),
        )
        return [(r[0], int(r[1])) for r in rows]

    def filter_ids(self, filters: dict[str, Sequence[str]]) -> list[int]:
        """Ids of artworks whose metadata matches every filter (any of the values per key)."""
        sql = "SELECT id FROM artworks"
        args: list[str] = []
        clauses = []
        for key, values in filters.items():
            marks = ",".join("?" * len(values))
            clauses.append(f"id IN (SELECT artwork_id FROM metadata WHERE key = ? AND value IN ({marks}))")
            args += [key, *values]
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return [int(r[0]) for r in self.conn.execute(sql + " ORDER BY id", args)]

    # -- artworks -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM artworks").fetchone()[0])

    def ids(self) -> list[int]:
        return [int(r[0]) for r in self.conn.execute("SELECT id FROM artworks ORDER BY id")]

    def md5s(self) -> dict[int, str]:
        return {int(r[0]): r[1] for r in self.conn.execute("SELECT id, md5 FROM artworks")}

    def get(self, artwork_id: int) -> Artwork | None:
        row = self.conn.execute("SELECT * FROM artworks WHERE id = ?", (int(artwork_id),)).fetchone()
        if row is None:
            return None
        meta = {r[0]: r[1] for r in self.conn.execute("SELECT key, value FROM metadata WHERE artwork_id = ?", (row["id"],))}
        return Artwork(row["id"], row["md5"], row["path"], row["size_bytes"], row["width"], row["height"], meta)

    def get_many(self, ids: Sequence[int]) -> dict[int, Artwork]:
        return {i: a for i in ids if (a := self.get(i)) is not None}

    def by_md5(self, md5: str) -> Artwork | None:
        row = self.conn.execute("SELECT id FROM artworks WHERE md5 = ?", (md5,)).fetchone()
        return self.get(row[0]) if row else None

    def iter_artworks(self) -> Iterator[tuple[int, str, str]]:
        """(id, md5, path) of every artwork, by id."""
        for r in self.conn.execute("SELECT id, md5, path FROM artworks ORDER BY id"):
            yield int(r[0]), r[1], r[2]
