"""The SQLite catalog: one row per distinct artwork (by MD5), the files that hold it, its metadata,
and the files that were skipped. Schema changes go through numbered migrations.

Every artwork records the collection generation that added it and the one that removed it (rows
are deleted only once no reader can still see them), so that a reader pinned to a generation
(:meth:`Catalog.pin`) sees exactly the artworks that generation's indexes hold, while a writer
catalogs the next one. Reads go through temporary views named like the tables; writes name the
``main`` tables."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from artlens.errors import CollectionError

SCHEMA_VERSION = 2

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
    """
    ALTER TABLE artworks ADD COLUMN added_gen INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE artworks ADD COLUMN removed_gen INTEGER;
    """,
]

_VIEWS = """
    CREATE TEMP VIEW artworks AS SELECT * FROM main.artworks a WHERE {visible};
    CREATE TEMP VIEW files AS SELECT f.* FROM main.files f JOIN main.artworks a ON a.id = f.artwork_id WHERE {visible};
    CREATE TEMP VIEW metadata AS SELECT m.* FROM main.metadata m JOIN main.artworks a ON a.id = m.artwork_id WHERE {visible};
"""


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

    def __init__(self, path: str | Path, create: bool = True, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self.pending_generation = 0  # the generation that artworks added or removed now belong to
        self.generation: int | None = None  # the generation reads are pinned to (None: the writer's view)
        if not self.path.exists() and (not create or read_only):
            raise CollectionError(
                f"no catalog at {self.path}",
                "run `artlens ingest DIR --collection PATH` to create the collection first",
            )
        if read_only:
            self.conn = _connect_read_only(self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before a generation names it
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys=ON")
        if read_only:
            self._check_version()
        else:
            self._migrate()
        self.pin(None)

    # -- schema ---------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self) -> int:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise CollectionError(
                f"catalog {self.path} has schema version {version}, newer than this artlens ({SCHEMA_VERSION})",
                "upgrade artlens (pip install -U artlens)",
            )
        return version

    def _migrate(self) -> None:
        version = self._check_version()
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

    # -- generations ----------------------------------------------------------------------------
    def pin(self, generation: int | None) -> None:
        """Read the artworks of ``generation`` (added by it or before, not removed by then), or with
        None every artwork not removed (the writer's view, which the next generation will show)."""
        self.generation = generation
        if self.schema_version < 2:  # a read-only catalog from before generations: all of it
            return
        for name in ("artworks", "files", "metadata"):
            self.conn.execute(f"DROP VIEW IF EXISTS temp.{name}")
        visible = "a.removed_gen IS NULL" if generation is None else \
            f"a.added_gen <= {int(generation)} AND (a.removed_gen IS NULL OR a.removed_gen > {int(generation)})"
        self.conn.executescript(_VIEWS.format(visible=visible))

    def pending_changes(self, published: int) -> bool:
        """Whether artworks were added or removed since generation ``published`` showed the catalog."""
        if self.schema_version < 2:
            return True
        return self.conn.execute("SELECT 1 FROM main.artworks WHERE added_gen > ? OR removed_gen > ? LIMIT 1",
                                 (published, published)).fetchone() is not None

    def purge(self, up_to: int) -> int:
        """Delete the artworks removed by generation ``up_to`` or before: no reader of it or of a
        later generation sees them."""
        with self.transaction():
            cur = self.conn.execute("DELETE FROM main.artworks WHERE removed_gen IS NOT NULL AND removed_gen <= ?",
                                    (int(up_to),))
        return cur.rowcount

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
        row = self.conn.execute("SELECT id, removed_gen FROM main.artworks WHERE md5 = ?", (md5,)).fetchone()
        is_new = row is None or row[1] is not None
        if row is None:
            cur = self.conn.execute(
                "INSERT INTO main.artworks(md5, path, size_bytes, width, height, added_at, added_gen) VALUES (?,?,?,?,?,?,?)",
                (md5, path, size_bytes, width, height, time.time(), self.pending_generation),
            )
            artwork_id = int(cur.lastrowid)
        else:
            artwork_id = int(row[0])
            if row[1] is not None:  # removed, not yet purged: back again (new to readers unless still theirs)
                added = "added_gen" if row[1] >= self.pending_generation else str(self.pending_generation)
                self.conn.execute(f"UPDATE main.artworks SET removed_gen = NULL, added_gen = {added}, path = ? "
                                  "WHERE id = ?", (path, artwork_id))
        self.conn.execute(
            "INSERT OR REPLACE INTO main.files(path, artwork_id, size_bytes, mtime_ns) VALUES (?,?,?,?)",
            (path, artwork_id, size_bytes, mtime_ns),
        )
        self.conn.execute("DELETE FROM main.skipped WHERE path = ?", (path,))
        return artwork_id, is_new

    def remove_files(self, paths: Iterable[str]) -> list[int]:
        """Forget files; artworks left without any file are removed (from the pending generation on).
        Returns the removed artwork ids."""
        removed: list[int] = []
        for path in paths:
            row = self.conn.execute("SELECT artwork_id FROM main.files WHERE path = ?", (path,)).fetchone()
            self.conn.execute("DELETE FROM main.files WHERE path = ?", (path,))
            self.conn.execute("DELETE FROM main.skipped WHERE path = ?", (path,))
            if row is None:
                continue
            artwork_id = int(row[0])
            other = self.conn.execute("SELECT path FROM main.files WHERE artwork_id = ? LIMIT 1", (artwork_id,)).fetchone()
            if other is None:
                self._remove_artworks([artwork_id])
                removed.append(artwork_id)
            else:
                self.conn.execute("UPDATE main.artworks SET path = ? WHERE id = ?", (other[0], artwork_id))
        return removed

    def _remove_artworks(self, ids: list[int]) -> None:
        if self.schema_version < 2:
            self.conn.executemany("DELETE FROM main.artworks WHERE id = ?", [(i,) for i in ids])
            return
        self.conn.executemany("UPDATE main.artworks SET removed_gen = ? WHERE id = ? AND removed_gen IS NULL",
                              [(self.pending_generation, i) for i in ids])

    def drop_orphans(self) -> list[int]:
        """Delete artworks no file points to any more (a changed file got new content)."""
        ids = [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM main.artworks WHERE removed_gen IS NULL AND id NOT IN (SELECT artwork_id FROM main.files)")]
        self._remove_artworks(ids)
        return ids

    def record_skipped(self, path: str, reason: str, size_bytes: int | None, mtime_ns: int | None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO main.skipped(path, reason, size_bytes, mtime_ns, at) VALUES (?,?,?,?,?)",
            (path, reason, size_bytes, mtime_ns, time.time()),
        )

    def skipped(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self.conn.execute("SELECT path, reason FROM skipped ORDER BY path")]

    # -- metadata -------------------------------------------------------------------------------
    def set_metadata(self, artwork_id: int, fields: dict[str, str]) -> None:
        self.conn.execute("DELETE FROM main.metadata WHERE artwork_id = ?", (artwork_id,))
        self.conn.executemany(
            "INSERT INTO main.metadata(artwork_id, key, value) VALUES (?,?,?)",
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

    # -- moving a catalog -----------------------------------------------------------------------
    def dump(self) -> dict[str, list[tuple]]:
        """Every visible row (artworks, files, metadata, skipped files), ids kept: what
        :meth:`load_dump` of another catalog (this backend's or PostgreSQL's) takes."""
        q = self.conn.execute
        return {
            "artworks": [tuple(r) for r in q("SELECT id, md5, path, size_bytes, width, height, added_at FROM artworks ORDER BY id")],
            "files": [tuple(r) for r in q("SELECT path, artwork_id, size_bytes, mtime_ns FROM files ORDER BY path")],
            "metadata": [tuple(r) for r in q("SELECT artwork_id, key, value FROM metadata ORDER BY artwork_id, key")],
            "skipped": [tuple(r) for r in q("SELECT path, reason, size_bytes, mtime_ns, at FROM skipped ORDER BY path")],
        }

    def load_dump(self, dump: dict[str, list[tuple]]) -> None:
        """Insert a dumped catalog (ids kept) into this empty one, as artworks of the pending generation."""
        with self.transaction():
            self.conn.executemany(
                "INSERT INTO main.artworks(id, md5, path, size_bytes, width, height, added_at, added_gen) "
                "VALUES (?,?,?,?,?,?,?,?)", [(*row, self.pending_generation) for row in dump["artworks"]])
            self.conn.executemany("INSERT INTO main.files(path, artwork_id, size_bytes, mtime_ns) VALUES (?,?,?,?)",
                                  dump["files"])
            self.conn.executemany("INSERT INTO main.metadata(artwork_id, key, value) VALUES (?,?,?)", dump["metadata"])
            self.conn.executemany("INSERT INTO main.skipped(path, reason, size_bytes, mtime_ns, at) VALUES (?,?,?,?,?)",
                                  dump["skipped"])


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes: ``mode=ro``, or ``immutable=1`` where SQLite cannot even make
    the shared-memory file a WAL reader needs (a read-only mount)."""
    uri = path.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
