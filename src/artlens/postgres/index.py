"""An aspect's index in PostgreSQL: its projected vectors as ``vector(d)`` rows with an HNSW cosine
index, its binary codes for ``--fast`` as ``bit(n)`` (Hamming), and its PCA and hashing
transforms, fitted once on a sample and stored (new works are projected with them; ``artlens index
rebuild`` refits). The methods are :class:`artlens.index.AspectIndex`'s, so search, recommendation
and evaluation read it unchanged.

Each build writes a table of its own (``vec_<aspect>_<generation>``) named by the ``indexes`` row,
so a rebuild never blocks the readers of the table it replaces; incremental updates write into the
current table, inside the writer's transaction. Filtered searches run in SQL with pgvector's
iterative index scans (``hnsw.iterative_scan = relaxed_order``), so a rare filter value still
returns k results."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import tempfile
from pathlib import Path

import numpy as np

from artlens.config import IndexConfig
from artlens.errors import ArtifactMismatchError, CollectionError
from artlens.hashing import HammingIndex, load_hasher
from artlens.index import AspectIndex
from artlens.index.aspect_index import IndexManifest
from artlens.postgres.store import Store
from artlens.vectors import l2_normalise

KIND = "pgvector-hnsw"
SAMPLE = 20_000  # rows the PCA and hashing transforms are fitted on
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
_BATCH = 5000


def table_name(aspect: str, generation: int) -> str:
    return f"vec_{re.sub(r'[^a-z0-9_]', '_', aspect.lower())}_{int(generation)}"


def _array_bytes(a: np.ndarray | None) -> bytes | None:
    if a is None:
        return None
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def _array(data) -> np.ndarray | None:
    return None if data is None else np.load(io.BytesIO(bytes(data)), allow_pickle=False)


def _hasher_bytes(hasher) -> bytes | None:
    if hasher is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hasher.npz"
        hasher.save(path)
        return path.read_bytes()


def _hasher(data, bits: int):
    if data is None or not bits:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hasher.npz"
        path.write_bytes(bytes(data))
        return load_hasher(path, bits=bits)


def _numpy(vector) -> np.ndarray:
    """A ``vector`` value as float32 (pgvector's adapter gives Vector objects or arrays)."""
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)


def _bits(packed: np.ndarray):
    from pgvector import Bit

    return Bit(np.unpackbits(np.asarray(packed, dtype=np.uint8)).astype(bool))


class PgAspectIndex(AspectIndex):
    """One aspect's vectors in the collection's schema (``index`` is None: nothing in memory but
    the manifest and the transforms)."""

    def __init__(self, store: Store, table: str, manifest: IndexManifest, mean, components, hasher=None,
                 config: IndexConfig | None = None):
        super().__init__(manifest, None, mean, components, hasher, codes=True if hasher is not None else None)
        self.store = store
        self.table = table
        self.search_config = config or IndexConfig()

    @property
    def conn(self):
        return self.store.conn

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def create(cls, store: Store, aspect: str, extractor: str, extractor_id: str, ids: np.ndarray, raw: np.ndarray,
               pca_dims: int | None, config: IndexConfig, generation: int, seed: int = 0) -> "PgAspectIndex":
        """A new table for the aspect (its transforms fitted on a sample of ``raw``), holding ``ids``:
        written in the caller's transaction, named by the ``indexes`` row at :meth:`record`."""
        ids = np.asarray(ids, dtype=np.int64)
        raw = np.ascontiguousarray(raw, dtype=np.float32)
        sample = np.arange(len(ids))
        if len(ids) > SAMPLE:
            sample = np.sort(np.random.default_rng(seed).choice(len(ids), SAMPLE, replace=False))
        fitted = AspectIndex.build(aspect, extractor, extractor_id, ids[sample], raw[sample], pca_dims,
                                   dataclasses.replace(config, kind="flat"), seed)
        manifest = dataclasses.replace(fitted.manifest, kind=KIND, count=0, generation=int(generation))
        table = table_name(aspect, generation)
        index = cls(store, table, manifest, fitted.mean, fitted.components, fitted.hasher, config)
        index._create_table()
        index.add(ids, raw)
        index._create_hnsw()
        return index

    @classmethod
    def from_vectors(cls, store: Store, source: AspectIndex, generation: int, config: IndexConfig) -> "PgAspectIndex":
        """A copy of another index (its transforms and stored vectors as they are: search results stay
        the same), e.g. of a folder collection's."""
        manifest = dataclasses.replace(source.manifest, kind=KIND, count=0, generation=int(generation))
        index = cls(store, table_name(source.manifest.aspect, generation), manifest, source.mean, source.components,
                    source.hasher, config)
        index._create_table()
        ids, vectors = source.all_vectors()
        index._insert(ids, vectors)
        index._create_hnsw()
        return index

    def _create_table(self) -> None:
        bits = f", code bit({self.manifest.hash_bits})" if self.hasher is not None else ""
        self.conn.execute(f"DROP TABLE IF EXISTS {self.table}")
        self.conn.execute(f"CREATE TABLE {self.table} (artwork_id bigint PRIMARY KEY, "
                          f"embedding vector({self.manifest.dim}) NOT NULL{bits})")

    def _create_hnsw(self) -> None:
        cfg = self.search_config
        self.conn.execute(f"CREATE INDEX {self.table}_hnsw ON {self.table} USING hnsw (embedding vector_cosine_ops) "
                          f"WITH (m = {int(cfg.hnsw_m)}, ef_construction = {int(cfg.hnsw_ef_construction)})")

    def record(self) -> None:
        """Name this table as the aspect's index (in the writer's transaction)."""
        self.manifest.count = len(self)
        self.conn.execute(
            "INSERT INTO indexes(aspect, manifest, vectors, mean, components, hasher) VALUES (%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (aspect) DO UPDATE SET manifest = EXCLUDED.manifest, vectors = EXCLUDED.vectors, "
            "mean = EXCLUDED.mean, components = EXCLUDED.components, hasher = EXCLUDED.hasher",
            (self.manifest.aspect, json.dumps(dataclasses.asdict(self.manifest)), self.table, _array_bytes(self.mean),
             _array_bytes(self.components), _hasher_bytes(self.hasher)))

    def _insert(self, ids: np.ndarray, projected: np.ndarray, upsert: bool = False) -> None:
        codes = self.hasher.encode(projected) if self.hasher is not None else None
        columns = "artwork_id, embedding" + (", code" if codes is not None else "")
        if upsert:
            self.conn.execute(f"DELETE FROM {self.table} WHERE artwork_id = ANY(%s)", ([int(i) for i in ids],))
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY {self.table} ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "vector"] + (["bit"] if codes is not None else []))
                for row, artwork_id in enumerate(ids):
                    values = [int(artwork_id), projected[row]]
                    if codes is not None:
                        values.append(_bits(codes[row]))
                    copy.write_row(values)

    def add(self, ids: np.ndarray, raw: np.ndarray, replace: bool = False) -> None:
        """Project raw vectors with the stored transform and store them (``replace``: rows of these
        ids replaced, e.g. texts that changed)."""
        ids = np.asarray(ids, dtype=np.int64)
        for start in range(0, len(ids), _BATCH):
            self._insert(ids[start : start + _BATCH], self.project(raw[start : start + _BATCH]), upsert=replace)
        self.manifest.count = len(self)

    def remove(self, ids) -> None:
        ids = [int(i) for i in ids]
        if ids:
            self.conn.execute(f"DELETE FROM {self.table} WHERE artwork_id = ANY(%s)", (ids,))
            self.manifest.count = len(self)

    # -- reading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: Store, aspect: str, expected_extractor_id: str | None = None,
             config: IndexConfig | None = None) -> "PgAspectIndex | None":
        row = store.conn.execute("SELECT manifest, vectors, mean, components, hasher FROM indexes WHERE aspect = %s",
                                 (aspect,)).fetchone()
        if row is None:
            return None
        data = row[0] if isinstance(row[0], dict) else json.loads(row[0])
        manifest = IndexManifest(**data)
        if expected_extractor_id and manifest.extractor_id != expected_extractor_id:
            raise ArtifactMismatchError(
                f"{aspect} index was built with {manifest.extractor_id}, expected {expected_extractor_id}",
                f"rebuild it: artlens index rebuild --collection '{store.location}'")
        return cls(store, row[1], manifest, _array(row[2]), _array(row[3]), _hasher(row[4], manifest.hash_bits), config)

    def __len__(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])

    def ids(self) -> np.ndarray:
        rows = self.conn.execute(f"SELECT artwork_id FROM {self.table} ORDER BY artwork_id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def vectors(self, ids) -> np.ndarray:
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64)]
        if not ids:
            return np.zeros((0, self.manifest.dim), dtype=np.float32)
        rows = dict(self.conn.execute(f"SELECT artwork_id, embedding FROM {self.table} WHERE artwork_id = ANY(%s)",
                                      (ids,), binary=True).fetchall())  # binary: vectors without parsing text
        missing = [i for i in ids if i not in rows]
        if missing:
            raise CollectionError(f"artwork(s) {missing[:5]} are not in the {self.manifest.aspect} index",
                                  "run the command again (the collection changed meanwhile)")
        return np.stack([_numpy(rows[i]) for i in ids])

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self.conn.execute(f"SELECT artwork_id, embedding FROM {self.table} ORDER BY artwork_id",
                                 binary=True).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.manifest.dim), dtype=np.float32)
        return np.array([r[0] for r in rows], dtype=np.int64), np.stack([_numpy(r[1]) for r in rows])

    def _set_ef(self, k: int) -> None:
        """The connection's search parameters (set once per value: every index of the collection
        shares its connection)."""
        ef = min(MAX_EF_SEARCH, max(int(self.search_config.hnsw_ef_search), int(k)))
        if ef != self.store.ef_search:
            self.conn.execute(f"SET hnsw.ef_search = {ef}")
            self.conn.execute("SET hnsw.iterative_scan = relaxed_order")
            self.conn.execute(f"SET hnsw.max_scan_tuples = {max(20_000, 20 * ef)}")
            self.store.ef_search = ef

    def search(self, queries: np.ndarray, k: int, allowed_ids=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` cosine scores and ids per query (-1 ids pad short lists): HNSW, with a filter
        through iterative index scans (exact when the filter keeps few rows)."""
        q = l2_normalise(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, int(k))
        self._set_ef(k)
        allowed = None if allowed_ids is None else [int(i) for i in allowed_ids]
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        out = np.full((len(q), k), -1, dtype=np.int64)
        where = "WHERE artwork_id = ANY(%(allowed)s)" if allowed is not None else ""
        sql = (f"WITH hits AS MATERIALIZED (SELECT artwork_id, embedding <=> %(q)s AS d FROM {self.table} {where} "
               f"ORDER BY embedding <=> %(q)s LIMIT %(k)s) SELECT artwork_id, d FROM hits ORDER BY d, artwork_id")
        for row, vector in enumerate(q):
            hits = self.conn.execute(sql, {"q": vector, "allowed": allowed, "k": k}, binary=True).fetchall()
            for j, (artwork_id, distance) in enumerate(hits):
                out[row, j], scores[row, j] = artwork_id, 1.0 - float(distance)
        return scores, out

    def search_fast(self, queries: np.ndarray, k: int, allowed_ids=None,
                    shortlist: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``shortlist`` nearest codes by Hamming distance (``bit(n)``, in SQL), re-ranked by exact
        cosine; without codes, the plain search."""
        if self.hasher is None:
            return self.search(queries, k, allowed_ids)
        q = l2_normalise(np.atleast_2d(queries), dtype=np.float32)
        shortlist = max(int(shortlist or self.search_config.fast_shortlist), k)
        qcodes = self.hasher.encode(q)
        k = max(1, int(k))
        allowed = None if allowed_ids is None else [int(i) for i in allowed_ids]
        where = "WHERE artwork_id = ANY(%(allowed)s)" if allowed is not None else ""
        sql = (f"WITH short AS MATERIALIZED (SELECT artwork_id, embedding FROM {self.table} {where} "
               f"ORDER BY code <~> %(code)s, artwork_id LIMIT %(n)s) "
               f"SELECT artwork_id, embedding <=> %(q)s AS d FROM short ORDER BY d, artwork_id LIMIT %(k)s")
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        out = np.full((len(q), k), -1, dtype=np.int64)
        for row, vector in enumerate(q):
            params = {"code": _bits(qcodes[row]), "q": vector, "allowed": allowed, "n": shortlist, "k": k}
            for j, (artwork_id, distance) in enumerate(self.conn.execute(sql, params).fetchall()):
                out[row, j], scores[row, j] = artwork_id, 1.0 - float(distance)
        return scores, out

    def add_codes(self, bits: int, seed: int = 0) -> bool:
        return self.hasher is not None  # codes are written with the vectors; `index rebuild` makes new ones

    def to_folder_index(self) -> AspectIndex:
        """The same index (transforms, vectors, codes) as a FAISS index in memory, exact (flat), for
        a folder collection."""
        import faiss

        ids, vectors = self.all_vectors()
        manifest = dataclasses.replace(self.manifest, kind="flat", count=0)
        index = AspectIndex(manifest, faiss.IndexIDMap2(faiss.IndexFlatIP(self.manifest.dim)), self.mean,
                            self.components, self.hasher, HammingIndex(self.hasher.bits) if self.hasher else None)
        index.search_config = self.search_config
        if len(ids):
            index.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            if index.codes is not None:
                index.codes.add(self.hasher.encode(vectors), ids)
        index.manifest.count = int(index.index.ntotal)
        return index

    def write(self, folder) -> Path:
        raise CollectionError("a PostgreSQL index is not written to a folder",
                              "copy the collection instead: artlens collection copy SRC DST")
