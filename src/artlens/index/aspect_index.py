"""One aspect's index: an optional PCA fitted on the collection, L2 normalisation, and a FAISS
inner-product index keyed by artwork id: exact flat, IVF or HNSW, or for collections too large for
float vectors in memory IVF-PQ (:mod:`artlens.index.ivfpq`, a sibling class that the manifest's kind
chooses on load). ``IndexConfig.kind = "auto"`` picks flat, then ivf above ``approx_threshold``
vectors, then ivfpq above ``pq_threshold``.

ivf and ivfpq indexes are built from chunks (``build_chunks``: a callable that yields (ids, raw
vectors) batches, read once for a training sample and once to add them), so a build holds one
batch of raw vectors at a time, never the whole collection's.

On disk a folder holds ``index.faiss``, ``transform.npz``, ``hasher.npz`` / ``codes.npz`` and
``manifest.json`` (written last); a new version is written as a complete new folder (fsynced), which
a collection commits with its other artifacts (:mod:`artlens.storage`), so a reader never sees half
an index.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from artlens.config import IndexConfig
from artlens.errors import ArtifactMismatchError, CollectionError
from artlens.files import write_arrays, write_text
from artlens.hashing import HammingIndex, ITQHasher, hamming_distances, load_hasher
from artlens.index.chunks import Chunks, array_chunks, checked_chunks, read_sample
from artlens.storage import durable_rename, seal_folder
from artlens.vectors import l2_normalise

INDEX_SCHEMA_VERSION = 1
IVF_TRAIN_SIZE = 64 * 1024  # vectors an ivf index's lists, PCA and binary codes are fitted on (at most)


@dataclass
class IndexManifest:
    aspect: str
    extractor: str
    extractor_id: str
    raw_dim: int
    dim: int
    count: int
    kind: str
    pca_dims: int | None
    pca_fitted_on: int
    built_at: float
    schema_version: int = INDEX_SCHEMA_VERSION
    hash_bits: int = 0  # length of the binary codes kept for fast search (0: none)
    generation: int = 0  # the collection generation that wrote it (see artlens.storage)
    params: dict = field(default_factory=dict)  # the kind's parameters (ivfpq: nlist, m, nbits, train_size, rows)


def choose_kind(config: IndexConfig, n: int) -> str:
    """The index kind for ``n`` vectors: ``config.kind``, or for "auto" flat, then ivf from
    ``approx_threshold`` vectors, then ivfpq from ``pq_threshold``."""
    if config.kind != "auto":
        if config.kind not in KINDS:
            raise CollectionError(f"unknown index kind {config.kind!r}", f"use {', '.join(KINDS)} or auto")
        return config.kind
    if n >= config.pq_threshold:
        return "ivfpq"
    return "ivf" if n >= config.approx_threshold else "flat"


KINDS = ("flat", "ivf", "hnsw", "ivfpq")
_SIBLINGS: dict[str, type] = {}  # kinds served by a subclass (registered by its module): kind -> class


class AspectIndex:
    search_config: IndexConfig = IndexConfig()

    def __init__(self, manifest: IndexManifest, index: faiss.Index, mean: np.ndarray | None, components: np.ndarray | None,
                 hasher=None, codes=None):
        self.bytes_on_disk: int | None = None  # size of its folder, once written or loaded
        self.manifest = manifest
        self.index = index
        self.mean = mean
        self.components = components
        self.hasher = hasher  # ITQ hasher of the stored vectors (fast search), or None
        self.codes = codes  # HammingIndex of their packed codes, keyed by artwork id

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        aspect: str,
        extractor: str,
        extractor_id: str,
        ids: np.ndarray,
        raw: np.ndarray,
        pca_dims: int | None,
        config: IndexConfig,
        seed: int = 0,
    ) -> "AspectIndex":
        raw = np.ascontiguousarray(raw, dtype=np.float32)
        n, raw_dim = raw.shape if raw.ndim == 2 else (0, 0)
        kind = choose_kind(config, n)
        if kind in _SIBLINGS and not n:
            kind = "flat"
        if kind in _SIBLINGS:
            return _SIBLINGS[kind].build(aspect, extractor, extractor_id, ids, raw, pca_dims, config, seed)
        if kind == "ivf":  # the chunked build over batches of the array, so both give the same index
            return cls.build_chunks(aspect, extractor, extractor_id, array_chunks(ids, raw, config.pq_add_batch), n,
                                    raw_dim, pca_dims, config, seed)
        built = cls._empty(aspect, extractor, extractor_id, kind, raw, n, raw_dim, pca_dims, config, seed)
        if n >= 2 and config.hash_bits:
            built._fit_codes(built.project(raw), seed)
        if n:
            built.add(ids, raw)
        return built

    @classmethod
    def _empty(cls, aspect: str, extractor: str, extractor_id: str, kind: str, fit_on: np.ndarray, n: int,
               raw_dim: int, pca_dims: int | None, config: IndexConfig, seed: int) -> "AspectIndex":
        """An index of ``kind`` for ``n`` vectors with nothing in it yet, its PCA (when the aspect has
        one) fitted on ``fit_on``: the raw vectors, or a sample of them."""
        mean = components = None
        dim = raw_dim
        if pca_dims and n > 1 and raw_dim > pca_dims:
            mean, components = _fit_pca(fit_on, min(pca_dims, n - 1), seed)
            dim = components.shape[0]
        manifest = IndexManifest(aspect, extractor, extractor_id, raw_dim, dim, 0, kind, pca_dims,
                                 n if components is not None else 0, time.time())
        built = cls(manifest, faiss.IndexIDMap2(_base_index(kind, dim, config, n)), mean, components)
        built.search_config = config
        return built

    @classmethod
    def build_chunks(cls, aspect: str, extractor: str, extractor_id: str, chunks: Chunks, n: int, raw_dim: int,
                     pca_dims: int | None, config: IndexConfig, seed: int = 0) -> "AspectIndex":
        """Build from ``chunks()`` (see ``Chunks``) over ``n`` vectors of ``raw_dim`` dimensions. ivf
        and ivfpq read them twice, for a training sample (PCA, lists, codes) and to add each batch, and
        hold one batch at a time; flat and hnsw hold every vector anyway and are built in one piece."""
        kind = choose_kind(config, n)
        if kind in _SIBLINGS and n:
            return _SIBLINGS[kind].build_chunks(aspect, extractor, extractor_id, chunks, n, raw_dim, pca_dims,
                                                config, seed)
        if kind != "ivf" or n < 1:
            batches = [(np.asarray(i, dtype=np.int64), r) for i, r in checked_chunks(chunks(), raw_dim)]
            ids = np.concatenate([b[0] for b in batches]) if batches else np.zeros(0, np.int64)
            raw = np.concatenate([b[1] for b in batches]) if batches else np.zeros((0, raw_dim), np.float32)
            return cls.build(aspect, extractor, extractor_id, ids, raw, pca_dims, config, seed)
        rng = np.random.default_rng(seed)
        sample = read_sample(chunks, n, np.sort(rng.choice(n, min(n, IVF_TRAIN_SIZE), replace=False)), raw_dim)
        built = cls._empty(aspect, extractor, extractor_id, kind, sample, n, raw_dim, pca_dims, config, seed)
        projected = built.project(sample)
        del sample
        built.index.train(projected)
        faiss.extract_index_ivf(built.index).make_direct_map()  # stored vectors stay readable (re-ranking)
        if n >= 2 and config.hash_bits:
            built._fit_codes(projected, seed)
        del projected
        added = 0
        for ids, raw in checked_chunks(chunks(), raw_dim):
            built.add(ids, raw)
            added += len(ids)
        if added != n:
            raise CollectionError(f"the vectors to index changed while building: {added} read, {n} expected",
                                  "build the index again")
        return built

    def _fit_codes(self, projected: np.ndarray, seed: int) -> None:
        """The binary codes of fast search, fitted on (a sample of) projected vectors; none are added yet."""
        self.hasher = _fit_hasher(projected, self.search_config.hash_bits, self.manifest.extractor_id, seed)
        if self.hasher is not None:
            self.codes = HammingIndex(self.hasher.bits)
            self.manifest.hash_bits = self.hasher.bits

    def project(self, raw: np.ndarray) -> np.ndarray:
        """Raw extractor vectors -> the normalised vectors this index stores."""
        x = np.atleast_2d(np.asarray(raw, dtype=np.float32))
        if x.shape[1] != self.manifest.raw_dim:
            raise ArtifactMismatchError(
                f"{self.manifest.aspect} index expects {self.manifest.raw_dim}-d vectors from "
                f"{self.manifest.extractor_id}, got {x.shape[1]}-d",
                "rebuild the index: artlens ingest DIR --collection PATH",
            )
        if self.components is not None:
            x = (x - self.mean) @ self.components.T
        return l2_normalise(x, dtype=np.float32)

    def add(self, ids: np.ndarray, raw: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids):
            projected = self.project(raw)
            self.index.add_with_ids(projected, ids)
            if self.codes is not None:
                self.codes.add(self.hasher.encode(projected), ids)
        self.manifest.count = int(self.index.ntotal)

    def remove(self, ids) -> None:
        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids):
            return
        if self.manifest.kind != "flat":
            raise CollectionError(
                f"a {self.manifest.kind} index cannot drop artworks in place",
                "rebuild it: artlens ingest DIR --collection PATH --reindex",
            )
        self.index.remove_ids(faiss.IDSelectorBatch(ids))
        if self.codes is not None:
            self.codes.remove(ids)
        self.manifest.count = int(self.index.ntotal)

    # -- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def vectors(self, ids) -> np.ndarray:
        """Stored (projected, normalised) vectors of the given artwork ids."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.manifest.dim), dtype=np.float32)
        return self.index.reconstruct_batch(ids)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids = self.ids()
        return ids, self.vectors(ids)

    def search(self, queries: np.ndarray, k: int, allowed_ids=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` cosine scores and artwork ids for projected query vectors (-1 ids pad short lists)."""
        q = l2_normalise(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, len(self)))
        selector = None if allowed_ids is None else faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64))
        kind, cfg = self.manifest.kind, self.search_config
        if kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=cfg.hnsw_ef_search)
        elif kind == "ivf":
            params = faiss.SearchParametersIVF(nprobe=cfg.ivf_nprobe)
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        return self.index.search(q, k, params=params)

    def search_fast(self, queries: np.ndarray, k: int, allowed_ids=None,
                    shortlist: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`search`, through a binary shortlist: the ``shortlist`` nearest codes by Hamming
        distance, re-ranked by exact cosine on the stored vectors. Without codes, the plain search."""
        if self.codes is None:
            return self.search(queries, k, allowed_ids)
        q = l2_normalise(np.atleast_2d(queries), dtype=np.float32)
        shortlist = max(int(shortlist or self.search_config.fast_shortlist), k)
        qcodes = self.hasher.encode(q)
        k = max(1, min(k, len(self)))
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        out = np.full((len(q), k), -1, dtype=np.int64)
        # the shortlists of every query at once: Hamming top-N over all codes, or over the allowed ones
        if allowed_ids is None:
            _, ranked = self.codes.search(qcodes, shortlist)
            shortlists = [row[row >= 0] for row in ranked]
        else:
            allowed = np.intersect1d(np.asarray(allowed_ids, dtype=np.int64), self.codes.ids)
            if len(allowed) <= shortlist:
                shortlists = [allowed] * len(q)
            else:
                dist = hamming_distances(qcodes, self.codes.codes_of(allowed))
                shortlists = [allowed[np.argpartition(d, shortlist - 1)[:shortlist]] for d in dist]
        for row, cand in enumerate(shortlists):
            if not len(cand):
                continue
            sims = self.vectors(cand) @ q[row]
            top = np.lexsort((cand, -sims))[:k]
            scores[row, : len(top)] = sims[top]
            out[row, : len(top)] = cand[top]
        return scores, out

    # -- persistence ----------------------------------------------------------------------------
    def write(self, folder: str | Path) -> Path:
        """Write the index as a complete new folder (which must not exist): every file written,
        0644 and fsynced before this returns. A collection stages its indexes so and commits them."""
        folder = Path(folder)
        folder.mkdir(parents=True)
        self._write_files(folder)
        if self.components is not None:
            write_arrays(folder / "transform.npz", mean=self.mean, components=self.components)
        if self.codes is not None:
            self.hasher.save(folder / "hasher.npz")
            self.codes.save(folder / "codes.npz")
        write_text(json.dumps(asdict(self.manifest), indent=2), folder / "manifest.json")  # last: marks it complete
        seal_folder(folder)
        self.bytes_on_disk = _folder_bytes(folder)
        self._written(folder)
        return folder

    def _write_files(self, folder: Path) -> None:
        faiss.write_index(self.index, str(folder / "index.faiss"))

    def _written(self, folder: Path) -> None:
        """After a complete write into ``folder`` (subclasses may switch to reading from it)."""

    # -- description ----------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Estimated memory the index holds when serving: its FAISS index (vectors and id map), the
        binary codes of fast search, and PCA."""
        n, dim, kind = len(self), self.manifest.dim, self.manifest.kind
        per_vector = dim * 4 + 8 + 48  # float vector, id, id map entry
        if kind == "ivf":
            per_vector += 16  # inverted list id and direct map
        elif kind == "hnsw":
            per_vector += 2 * self.search_config.hnsw_m * 4 * 1.1  # level-0 links and upper levels
        codes = 0 if self.codes is None else n * (self.manifest.hash_bits // 8 + 8)
        pca = 0 if self.components is None else self.components.nbytes + self.mean.nbytes
        return int(n * per_vector + codes + pca)

    def describe(self) -> dict:
        """What the index is and costs: kind, vectors, dim, bytes_on_disk (None until written or
        loaded), memory_bytes (estimated), and the kind's parameters."""
        return {"kind": self.manifest.kind, "vectors": len(self), "dim": self.manifest.dim,
                "bytes_on_disk": self.bytes_on_disk, "memory_bytes": self.memory_bytes(),
                "params": dict(self.manifest.params)}

    def save(self, folder: str | Path) -> None:
        """Replace the index folder ``folder`` on its own: a complete new folder is written beside it
        and renamed in (the collection commits several indexes at once through its generations
        instead). Temporaries of an earlier save cut short are removed first."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        for stale in folder.parent.glob(f".{folder.name}.*"):
            if stale.name.startswith((f".{folder.name}.tmp-", f".{folder.name}.old-")):
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        tmp.rmdir()
        try:
            self.write(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = tmp.with_name(tmp.name.replace(".tmp-", ".old-"))
        if folder.exists():
            durable_rename(folder, old)
        durable_rename(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: str | Path, expected_extractor_id: str | None = None,
             config: IndexConfig | None = None) -> "AspectIndex":
        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            raise CollectionError(f"no index at {folder}", "run `artlens ingest DIR --collection PATH` to build it")
        data = json.loads(manifest_path.read_text())
        if data.get("schema_version") != INDEX_SCHEMA_VERSION:
            raise ArtifactMismatchError(
                f"index {folder} has schema version {data.get('schema_version')}, this artlens reads {INDEX_SCHEMA_VERSION}",
                "rebuild it: artlens ingest DIR --collection PATH --reindex",
            )
        manifest = IndexManifest(**data)
        if expected_extractor_id and manifest.extractor_id != expected_extractor_id:
            raise ArtifactMismatchError(
                f"{manifest.aspect} index was built with {manifest.extractor_id}, expected {expected_extractor_id}",
                "rebuild it: artlens ingest DIR --collection PATH --reindex",
            )
        mean = components = None
        if (folder / "transform.npz").exists():
            with np.load(folder / "transform.npz") as t:
                mean, components = t["mean"], t["components"]
        if manifest.kind in _SIBLINGS:
            loaded = _SIBLINGS[manifest.kind].open_folder(folder, manifest, mean, components)
            loaded.search_config = config or IndexConfig()
            loaded.bytes_on_disk = _folder_bytes(folder)
            return loaded
        index = faiss.read_index(str(folder / "index.faiss"))
        if manifest.kind == "ivf":
            ivf = faiss.extract_index_ivf(index)
            if ivf.direct_map.type == faiss.DirectMap.NoMap:  # written before vectors were kept readable
                ivf.make_direct_map()
        hasher = codes = None
        if manifest.hash_bits and (folder / "codes.npz").exists():
            hasher = load_hasher(folder / "hasher.npz", bits=manifest.hash_bits)
            codes = HammingIndex.load(folder / "codes.npz")
        loaded = cls(manifest, index, mean, components, hasher, codes)
        loaded.search_config = config or IndexConfig()
        loaded.bytes_on_disk = _folder_bytes(folder)
        return loaded

    def add_codes(self, bits: int, seed: int = 0) -> bool:
        """Fit the hasher of fast search on the stored vectors and encode them (an index built without
        codes, or with another length). Returns whether codes exist afterwards. The new hasher and
        codes replace the old ones together, once complete (readers never see half of them)."""
        if min(int(bits), self.manifest.dim, len(self)) // 8 < 1:  # no code possible: don't read the vectors
            return self.codes is not None
        ids, vectors = self.all_vectors()
        hasher = _fit_hasher(vectors, bits, self.manifest.extractor_id, seed)
        codes = None
        if hasher is not None:
            codes = HammingIndex(hasher.bits)
            for start in range(0, len(ids), 65536):
                codes.add(hasher.encode(vectors[start : start + 65536]), ids[start : start + 65536])
        self.hasher, self.codes = hasher, codes
        self.manifest.hash_bits = hasher.bits if hasher is not None else 0
        return codes is not None


def _base_index(kind: str, dim: int, config: IndexConfig, n: int) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "ivf":
        nlist = config.ivf_nlist or int(np.clip(4 * np.sqrt(max(n, 1)), 16, 4096))
        return faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
        return index
    raise CollectionError(f"unknown index kind {kind!r}", f"use {', '.join(KINDS)} or auto")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def _fit_hasher(vectors: np.ndarray, bits: int, feature_id: str, seed: int, max_samples: int = 65_536):
    """PCA-ITQ codes of at most ``bits`` bits (no more than the vector dimension, a multiple of 8)."""
    bits = min(int(bits), vectors.shape[1], len(vectors)) // 8 * 8
    if bits < 8:
        return None
    rng = np.random.default_rng(seed)
    sample = vectors if len(vectors) <= max_samples else vectors[rng.choice(len(vectors), max_samples, replace=False)]
    return ITQHasher(bits, feature_id=feature_id).fit(sample, seed=seed)


def _fit_pca(raw: np.ndarray, dims: int, seed: int, max_samples: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    sample = raw if len(raw) <= max_samples else raw[rng.choice(len(raw), max_samples, replace=False)]
    pca = PCA(n_components=dims, svd_solver="randomized" if dims < min(sample.shape) // 2 else "full", random_state=seed)
    pca.fit(sample)
    return pca.mean_.astype(np.float32), pca.components_.astype(np.float32)
