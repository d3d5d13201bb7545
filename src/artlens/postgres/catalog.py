"""The catalog and the feature cache in PostgreSQL: the same methods as
:class:`artlens.catalog.db.Catalog` and :class:`artlens.features.cache.FeatureCache`, so ingest,
search, facets and training read them unchanged.

Generations need no views here: a writer changes the catalog inside its transaction, so readers
see the artworks of the last commit, which are the artworks its indexes hold."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from artlens.catalog.db import Artwork, Catalog, FileState
from artlens.postgres.store import SCHEMA_VERSION, Store
from artlens.storage import boundary


class PgCatalog(Catalog):
    """Artworks, their files and metadata in the collection's schema."""

    def __init__(self, store: Store, read_only: bool = False):
        self.store = store
        self.conn = store.conn
        self.path = Path(str(store.location))
        self.read_only = read_only
        self.pending_generation = 0
        self.generation = None
        self.changed = False  # whether this writer changed the catalog (its commit then counts)

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

    @contextmanager
    def transaction(self):
        with self.conn.transaction():
            yield self.conn

    def close(self) -> None:
        pass  # the store owns the connection

    def pin(self, generation: int | None) -> None:
        self.generation = generation

    def pending_changes(self, published: int) -> bool:
        return self.changed

    def purge(self, up_to: int) -> int:
        return 0  # removals are deletes, visible at the writer's commit

    def _q(self, sql: str, args=()):
        return self.conn.execute(sql, args)

    # -- files ----------------------------------------------------------------------------------
    def file_states(self, under: str | Path | None = None) -> dict[str, FileState]:
        sql, args = "SELECT path, artwork_id, size_bytes, mtime_ns FROM files", ()
        if under is not None:
            prefix = str(Path(under)).rstrip("/") + "/"
            sql, args = sql + " WHERE left(path, %s) = %s", (len(prefix), prefix)
        return {r[0]: FileState(r[0], int(r[1]), int(r[2]), int(r[3])) for r in self._q(sql, args)}

    def skipped_states(self) -> dict[str, tuple[int | None, int | None]]:
        return {r[0]: (r[1], r[2]) for r in self._q("SELECT path, size_bytes, mtime_ns FROM skipped")}

    def add_file(self, path: str, md5: str, size_bytes: int, mtime_ns: int, width: int, height: int) -> tuple[int, bool]:
        self.changed = True
        row = self._q("SELECT id FROM artworks WHERE md5 = %s", (md5,)).fetchone()
        if row is None:
            artwork_id = int(self._q(
                "INSERT INTO artworks(md5, path, size_bytes, width, height, added_at) VALUES (%s,%s,%s,%s,%s,%s) "
                "RETURNING id", (md5, path, size_bytes, width, height, time.time())).fetchone()[0])
        else:
            artwork_id = int(row[0])
        self._q("INSERT INTO files(path, artwork_id, size_bytes, mtime_ns) VALUES (%s,%s,%s,%s) ON CONFLICT (path) "
                "DO UPDATE SET artwork_id = EXCLUDED.artwork_id, size_bytes = EXCLUDED.size_bytes, "
                "mtime_ns = EXCLUDED.mtime_ns", (path, artwork_id, size_bytes, mtime_ns))
        self._q("DELETE FROM skipped WHERE path = %s", (path,))
        return artwork_id, row is None

    def remove_files(self, paths: Iterable[str]) -> list[int]:
        removed: list[int] = []
        for path in paths:
            self.changed = True
            row = self._q("DELETE FROM files WHERE path = %s RETURNING artwork_id", (path,)).fetchone()
            self._q("DELETE FROM skipped WHERE path = %s", (path,))
            if row is None:
                continue
            artwork_id = int(row[0])
            other = self._q("SELECT path FROM files WHERE artwork_id = %s LIMIT 1", (artwork_id,)).fetchone()
            if other is None:
                self._q("DELETE FROM artworks WHERE id = %s", (artwork_id,))
                removed.append(artwork_id)
            else:
                self._q("UPDATE artworks SET path = %s WHERE id = %s", (other[0], artwork_id))
        return removed

    def drop_orphans(self) -> list[int]:
        ids = [int(r[0]) for r in self._q(
            "DELETE FROM artworks a WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.artwork_id = a.id) RETURNING id")]
        self.changed = self.changed or bool(ids)
        return ids

    def record_skipped(self, path: str, reason: str, size_bytes: int | None, mtime_ns: int | None) -> None:
        self._q("INSERT INTO skipped(path, reason, size_bytes, mtime_ns, at) VALUES (%s,%s,%s,%s,%s) ON CONFLICT (path) "
                "DO UPDATE SET reason = EXCLUDED.reason, size_bytes = EXCLUDED.size_bytes, mtime_ns = EXCLUDED.mtime_ns, "
                "at = EXCLUDED.at", (path, reason, size_bytes, mtime_ns, time.time()))

    def skipped(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._q("SELECT path, reason FROM skipped ORDER BY path")]

    # -- metadata -------------------------------------------------------------------------------
    def set_metadata(self, artwork_id: int, fields: dict[str, str]) -> None:
        rows = [(artwork_id, k, str(v)) for k, v in fields.items() if v not in (None, "")]
        current = dict(self._q("SELECT key, value FROM metadata WHERE artwork_id = %s", (artwork_id,)).fetchall())
        if current == {k: v for _, k, v in rows}:
            return  # unchanged: no new generation for it
        self.changed = True
        self._q("DELETE FROM metadata WHERE artwork_id = %s", (artwork_id,))
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany("INSERT INTO metadata(artwork_id, key, value) VALUES (%s,%s,%s)", rows)

    def metadata_columns(self) -> list[str]:
        return [r[0] for r in self._q("SELECT DISTINCT key FROM metadata ORDER BY key")]

    def column(self, key: str, ids: Sequence[int] | None = None) -> dict[int, str]:
        if ids is None:
            rows = self._q("SELECT artwork_id, value FROM metadata WHERE key = %s", (key,))
        else:
            rows = self._q("SELECT artwork_id, value FROM metadata WHERE key = %s AND artwork_id = ANY(%s)",
                           (key, [int(i) for i in ids]))
        return {int(r[0]): r[1] for r in rows}

    def facet_counts(self, key: str, limit: int = 50) -> list[tuple[str, int]]:
        rows = self._q("SELECT value, COUNT(*) AS n FROM metadata WHERE key = %s GROUP BY value "
                       "ORDER BY n DESC, value LIMIT %s", (key, limit))
        return [(r[0], int(r[1])) for r in rows]

    def filter_ids(self, filters: dict[str, Sequence[str]]) -> list[int]:
        sql, args, clauses = "SELECT id FROM artworks", [], []
        for key, values in filters.items():
            clauses.append("id IN (SELECT artwork_id FROM metadata WHERE key = %s AND value = ANY(%s))")
            args += [key, list(values)]
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        return [int(r[0]) for r in self._q(sql + " ORDER BY id", args)]

    # -- artworks -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._q("SELECT COUNT(*) FROM artworks").fetchone()[0])

    def ids(self) -> list[int]:
        return [int(r[0]) for r in self._q("SELECT id FROM artworks ORDER BY id")]

    def md5s(self) -> dict[int, str]:
        return {int(r[0]): r[1] for r in self._q("SELECT id, md5 FROM artworks")}

    def get(self, artwork_id: int) -> Artwork | None:
        return self.get_many([artwork_id]).get(int(artwork_id))

    def get_many(self, ids: Sequence[int]) -> dict[int, Artwork]:
        wanted = [int(i) for i in ids]
        if not wanted:
            return {}
        meta: dict[int, dict[str, str]] = {}
        for aid, key, value in self._q("SELECT artwork_id, key, value FROM metadata WHERE artwork_id = ANY(%s) "
                                       "ORDER BY artwork_id, key", (wanted,)):
            meta.setdefault(int(aid), {})[key] = value
        rows = self._q("SELECT id, md5, path, size_bytes, width, height FROM artworks WHERE id = ANY(%s)", (wanted,))
        found = {int(r[0]): Artwork(int(r[0]), r[1], r[2], int(r[3]), int(r[4]), int(r[5]), meta.get(int(r[0]), {}))
                 for r in rows}
        return {i: found[i] for i in wanted if i in found}

    def by_md5(self, md5: str) -> Artwork | None:
        row = self._q("SELECT id FROM artworks WHERE md5 = %s", (md5,)).fetchone()
        return self.get(row[0]) if row else None

    def iter_artworks(self) -> Iterator[tuple[int, str, str]]:
        for r in self._q("SELECT id, md5, path FROM artworks ORDER BY id").fetchall():
            yield int(r[0]), r[1], r[2]

    # -- moving a catalog -----------------------------------------------------------------------
    def dump(self) -> dict[str, list[tuple]]:
        return {
            "artworks": [tuple(r) for r in self._q(
                "SELECT id, md5, path, size_bytes, width, height, added_at FROM artworks ORDER BY id")],
            "files": [tuple(r) for r in self._q("SELECT path, artwork_id, size_bytes, mtime_ns FROM files ORDER BY path")],
            "metadata": [tuple(r) for r in self._q("SELECT artwork_id, key, value FROM metadata ORDER BY artwork_id, key")],
            "skipped": [tuple(r) for r in self._q("SELECT path, reason, size_bytes, mtime_ns, at FROM skipped ORDER BY path")],
        }

    def load_dump(self, dump: dict[str, list[tuple]]) -> None:
        """Insert a catalog dumped by :meth:`Catalog.dump` (ids kept) into this empty one."""
        self.changed = True
        with self.conn.cursor() as cur:
            with cur.copy("COPY artworks(id, md5, path, size_bytes, width, height, added_at) FROM STDIN") as copy:
                for row in dump["artworks"]:
                    copy.write_row(row)
            for table, columns in (("files", "path, artwork_id, size_bytes, mtime_ns"), ("metadata", "artwork_id, key, value"),
                                   ("skipped", "path, reason, size_bytes, mtime_ns, at")):
                with cur.copy(f"COPY {table}({columns}) FROM STDIN") as copy:
                    for row in dump[table]:
                        copy.write_row(row)
            cur.execute("SELECT setval(pg_get_serial_sequence('artworks', 'id'), GREATEST(COALESCE(MAX(id), 0), 1), "
                        "MAX(id) IS NOT NULL) FROM artworks")


class PgFeatureCache:
    """Cached vectors by extractor id and content key; every batch commits on its own connection
    (outside a writer's transaction), so an interrupted extraction resumes where it stopped."""

    def __init__(self, store: Store, read_only: bool = False):
        self.store = store
        self.read_only = read_only
        self.path = Path(str(store.location))
        self._memory: dict[str, dict[str, np.ndarray]] = {}  # read-only: what this process computed
        self._registered: dict[str, dict] = {}

    @property
    def conn(self):
        return self.store.features_connection()

    def register(self, extractor_id: str, dim: int, info: dict) -> None:
        if self.read_only:
            self._registered[extractor_id] = {"dim": dim, **info}
            return
        self.conn.execute("INSERT INTO extractors(id, dim, info) VALUES (%s,%s,%s) ON CONFLICT (id) DO UPDATE SET "
                          "dim = EXCLUDED.dim, info = EXCLUDED.info", (extractor_id, dim, json.dumps(info)))

    def extractors(self) -> dict[str, dict]:
        out = {r[0]: {"dim": r[1], **(r[2] if isinstance(r[2], dict) else json.loads(r[2]))}
               for r in self.conn.execute("SELECT id, dim, info FROM extractors")}
        out.update(self._registered)
        return out

    def keys(self, extractor_id: str) -> set[str]:
        keys = {r[0] for r in self.conn.execute("SELECT key FROM features WHERE extractor = %s", (extractor_id,))}
        return keys | set(self._memory.get(extractor_id, {}))

    def count(self, extractor_id: str) -> int:
        if self._memory.get(extractor_id):
            return len(self.keys(extractor_id))
        return int(self.conn.execute("SELECT COUNT(*) FROM features WHERE extractor = %s", (extractor_id,)).fetchone()[0])

    def put(self, extractor_id: str, keys: Sequence[str], vectors: np.ndarray, dtype: str = "float32") -> None:
        arr = np.ascontiguousarray(vectors, dtype=dtype)
        if self.read_only:
            self._memory.setdefault(extractor_id, {}).update({k: arr[i].copy() for i, k in enumerate(keys)})
            return
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany("INSERT INTO features(extractor, key, dtype, data) VALUES (%s,%s,%s,%s) ON CONFLICT "
                            "(extractor, key) DO UPDATE SET dtype = EXCLUDED.dtype, data = EXCLUDED.data",
                            [(extractor_id, k, dtype, arr[i].tobytes()) for i, k in enumerate(keys)])
        boundary("features-batch")

    def get(self, extractor_id: str, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), 5000):
            for key, dtype, data in self.conn.execute(
                    "SELECT key, dtype, data FROM features WHERE extractor = %s AND key = ANY(%s)",
                    (extractor_id, wanted[start : start + 5000])):
                found[key] = np.frombuffer(bytes(data), dtype=dtype)
        found.update({k: v for k, v in self._memory.get(extractor_id, {}).items() if k in set(wanted)})
        mask = np.array([k in found for k in keys], dtype=bool)
        if not found:
            return np.zeros((0, 0), dtype=np.float32), mask
        return np.stack([found[k] for k in keys if k in found]).astype(np.float32), mask

    def copy_into(self, target) -> None:
        for extractor_id, info in self.extractors().items():
            keys = sorted(self.keys(extractor_id))
            vectors, found = self.get(extractor_id, keys)
            target.register(extractor_id, int(info["dim"]), {k: v for k, v in info.items() if k != "dim"})
            target.put(extractor_id, [k for k, f in zip(keys, found) if f], vectors)

    def delete(self, extractor_id: str, keys: Iterable[str]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany("DELETE FROM features WHERE extractor = %s AND key = %s", [(extractor_id, k) for k in keys])

    def close(self) -> None:
        pass  # the store owns the connection
