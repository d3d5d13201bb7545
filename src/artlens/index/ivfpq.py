"""An aspect index for collections too large for flat float vectors in memory: FAISS ``IndexIVFPQ``
(an inverted file over product-quantised codes, ``m * nbits / 8`` bytes a vector in memory) gives a
shortlist, which is re-ranked by exact cosine against the stored vectors, kept on disk as float16
and memory-mapped (only the rows a query re-ranks are read).

It is built incrementally: the quantisers are trained on a sample, then the vectors are added in
batches, read from a chunk source, so the build never holds all vectors in memory at once. On disk
its folder holds ``index.faiss`` (quantisers, codes and row numbers), ``vectors.npy`` (float16
rows), ``ids.npy`` (the artwork id of every row, -1 for a removed one), ``transform.npz`` (PCA,
when fitted) and ``manifest.json`` (kind ``ivfpq`` and its parameters, written last).

The search API is :class:`~artlens.index.aspect_index.AspectIndex`'s: search, vectors, ids, add,
remove, save and load behave the same, so search, recommend and filters work unchanged.
"""

from __future__ import annotations

import fcntl
import io
import math
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path

import faiss
import numpy as np

from artlens.config import IndexConfig
from artlens.errors import ArtifactMismatchError, CollectionError
from artlens.index.aspect_index import _SIBLINGS, AspectIndex, IndexManifest, _fit_pca
from artlens.index.chunks import Chunks, array_chunks, checked_chunks, read_sample
from artlens.progress import QUIET, Reporter
from artlens.vectors import l2_normalise

KIND = "ivfpq"
VECTORS = "vectors.npy"
ROW_IDS = "ids.npy"
STORE_DTYPE = np.float16
_COPY_ROWS = 262_144  # rows copied at a time when a store is extended
_PREAD_ROWS = 4096  # up to this many rows are read with pread, more through the memory map
_MIN_POINTS_PER_LIST = 39  # FAISS warns below this many training points per list


def ivfpq_params(config: IndexConfig, n: int, dim: int) -> dict:
    """The IVF-PQ parameters for ``n`` vectors of ``dim`` dimensions: those set in ``config``, the
    rest derived from ``n`` (lists: the power of two nearest sqrt(n) / 3, 1,024 at 10M; sub-quantisers:
    about one per 8 dimensions; training sample: 64 per list, at least 10,000; bits per code: fewer than
    ``pq_nbits`` only when the sample is too small to train 2**nbits centroids)."""
    n = max(int(n), 1)
    nlist = config.pq_nlist or 2 ** max(0, round(math.log2(max(math.sqrt(n) / 3, 1))))
    train = min(n, config.pq_train_size or max(64 * nlist, 10_000))
    nlist = max(1, min(nlist, train // _MIN_POINTS_PER_LIST or 1))
    if config.pq_m:
        if dim % config.pq_m:
            raise CollectionError(f"index.pq_m = {config.pq_m} does not divide the {dim}-d vectors",
                                  f"set pq_m to a divisor of {dim} (e.g. {_divisor_near(dim, dim // 8)}) or leave it unset")
        m = config.pq_m
    else:
        m = _divisor_near(dim, max(1, dim // 8))
    # each of the 2**nbits centroids of a sub-quantiser trained on at least 39 points (FAISS's minimum)
    nbits = max(1, min(int(config.pq_nbits), int(math.log2(max(train / _MIN_POINTS_PER_LIST, 2)))))
    return {"nlist": int(nlist), "m": int(m), "nbits": int(nbits), "train_size": int(train)}


def _divisor_near(dim: int, target: int) -> int:
    """The largest divisor of ``dim`` not above ``target`` (at least 1)."""
    return next(d for d in range(max(1, min(target, dim)), 0, -1) if dim % d == 0)


class _Store:
    """Float16 rows on disk, memory-mapped: a scratch file being written (deleted with its owner),
    or a finished ``vectors.npy`` opened read-only. A query's few rows are read with ``pread`` (into
    the page cache, not into this process's resident memory, and without the read-ahead of page
    faults); bulk reads go through the memory map."""

    def __init__(self, array: np.memmap, path: Path, scratch: Path | None = None):
        self.array = array
        self.path = path
        self.scratch = scratch  # the folder to delete once done with (None: the file belongs to an index folder)
        self.fd = os.open(path, os.O_RDONLY)  # kept open: the file may be renamed (a collection commits it)
        self.row_bytes = array.shape[1] * array.dtype.itemsize
        self.offset = int(array.offset)
        weakref.finalize(self, _close, self.fd, scratch)

    @classmethod
    def create(cls, rows: int, dim: int, config: IndexConfig) -> "_Store":
        base = config.scratch_dir or None
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="artlens-ivfpq-", dir=base))
        path = scratch / VECTORS
        array = np.lib.format.open_memmap(path, mode="w+", dtype=STORE_DTYPE, shape=(rows, dim))
        return cls(array, path, scratch)

    @classmethod
    def open(cls, path: Path, rows: int | None = None) -> "_Store":
        """A finished store, read-only; ``rows``: only its first rows (a later version of the index
        may have appended more to the same file)."""
        array = np.load(path, mmap_mode="r")
        return cls(array if rows is None or rows >= len(array) else array[:rows], path)

    def append(self, kept: int, rows: np.ndarray) -> "_Store | None":
        """This finished store's first ``kept`` rows followed by ``rows``, in place: the rows are
        written after row ``kept`` (dropping bytes that an add cut short left there), then the
        header's row count. Every version of the index that shares the file (hard links) reads only
        its own rows, so they, and the saved version an interrupted add started from, read as before.
        Only the file's newest version grows it: one whose ``kept`` is the header's row count (the
        header only grows, and is rewritten after the rows, under a lock on the file). None when the
        file cannot grow in place (a scratch store, another layout, or rows after ``kept`` that
        another version holds, or that an add cut short after its header): the caller copies."""
        if self.scratch is not None:
            return None
        rows = np.ascontiguousarray(rows, dtype=STORE_DTYPE)
        dim = self.array.shape[1]
        with open(self.path, "r+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released when the file is closed
            version = np.lib.format.read_magic(fh)
            if version not in ((1, 0), (2, 0)):
                return None
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(fh)
            offset = fh.tell()
            header = _npy_header(version, (kept + len(rows), dim))
            if (fortran or np.dtype(dtype) != STORE_DTYPE or len(shape) != 2 or shape[1] != dim or shape[0] != kept
                    or rows.shape[1:] != (dim,) or len(header) != offset or offset != self.offset
                    or os.fstat(fh.fileno()).st_size < offset + kept * self.row_bytes):
                return None
            end = offset + kept * self.row_bytes
            fh.truncate(end)
            fh.seek(end)
            fh.write(memoryview(rows).cast("B"))
            fh.flush()
            os.fsync(fh.fileno())
            fh.seek(0)
            fh.write(header)  # the same length: numpy pads the header for a row count of up to 21 digits
            fh.flush()
            os.fsync(fh.fileno())
        return _Store.open(self.path)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Float32 copies of the given rows (read in ascending order, returned in the order given)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.array.shape[1]), dtype=np.float32)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        if len(rows) > _PREAD_ROWS:
            out[order] = self.array[rows[order]]
            return out
        size, base = self.row_bytes, self.offset
        data = b"".join(os.pread(self.fd, size, base + int(r) * size) for r in rows[order])
        out[order] = np.frombuffer(data, dtype=STORE_DTYPE).reshape(len(rows), -1)
        return out

    def write_to(self, target: Path) -> None:
        """Place the rows at ``target``: a hard link when possible (the file is never changed once
        written), else a copy."""
        if isinstance(self.array, np.memmap):
            self.array.flush()
        try:
            if self.path.exists():
                try:
                    target.hardlink_to(self.path)
                    return
                except OSError:
                    shutil.copyfile(self.path, target)
                    return
        except OSError:
            pass
        out = np.lib.format.open_memmap(target, mode="w+", dtype=STORE_DTYPE, shape=self.array.shape)
        for start in range(0, len(self.array), _COPY_ROWS):
            out[start : start + _COPY_ROWS] = self.array[start : start + _COPY_ROWS]
        out.flush()
        del out


class IVFPQIndex(AspectIndex):
    """An aspect index of kind ``ivfpq``; see the module's description."""

    def __init__(self, manifest: IndexManifest, index: faiss.IndexIVFPQ, mean, components, store: _Store,
                 row_ids: np.ndarray):
        super().__init__(manifest, index, mean, components)
        self.store = store
        self.row_ids = row_ids  # artwork id of every row (-1: removed)
        self._sorted: tuple[np.ndarray | None, np.ndarray] | None = None  # (order, sorted ids) of row_ids

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def build(cls, aspect, extractor, extractor_id, ids, raw, pca_dims, config, seed=0) -> "IVFPQIndex":
        raw = np.asarray(raw, dtype=np.float32)
        raw_dim = raw.shape[1] if raw.ndim == 2 else 0
        return cls.build_chunks(aspect, extractor, extractor_id, array_chunks(ids, raw, config.pq_add_batch), len(ids),
                                raw_dim, pca_dims, config, seed)

    @classmethod
    def build_chunks(cls, aspect: str, extractor: str, extractor_id: str, chunks: Chunks, n: int, raw_dim: int,
                     pca_dims: int | None, config: IndexConfig, seed: int = 0,
                     reporter: Reporter = QUIET) -> "IVFPQIndex":
        """Build from ``chunks()``, an iterable of (artwork ids, raw vectors) batches over ``n``
        vectors in all, which is read twice: once for the training sample, once to add every batch.
        At most one batch, the sample and the codes are in memory at a time."""
        if n < 1:
            raise CollectionError(f"an {KIND} index needs at least one vector", "index some artworks first")
        rng = np.random.default_rng(seed)
        dim = raw_dim if not (pca_dims and n > 1 and raw_dim > pca_dims) else min(pca_dims, n - 1)
        params = ivfpq_params(config, n, dim)
        sample = read_sample(chunks, n, np.sort(rng.choice(n, params["train_size"], replace=False)), raw_dim)
        mean = components = None
        if dim != raw_dim:
            mean, components = _fit_pca(sample, dim, seed)
        manifest = IndexManifest(aspect, extractor, extractor_id, raw_dim, dim, 0, KIND, pca_dims,
                                 n if components is not None else 0, time.time())
        manifest.params = params
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, params["nlist"], params["m"], params["nbits"],
                                 faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.pq.cp.seed = seed
        index.pq.cp.niter = 15  # fewer iterations (of 25) and points (of 256 a centroid) than FAISS's defaults:
        index.pq.cp.max_points_per_centroid = 64  # the re-ranking corrects what the codes miss, and training is slow
        built = cls(manifest, index, mean, components, _Store.create(n, dim, config), np.full(n, -1, dtype=np.int64))
        built.search_config = config
        reporter.step(f"training {KIND} on {len(sample)} vectors: {params['nlist']} lists, "
                      f"{params['m']} x {params['nbits']}-bit codes")
        index.train(built.project(sample))
        del sample
        row = 0
        bar = reporter.bar(total=n, desc=f"indexing {aspect}", unit="vec")
        for ids, raw in checked_chunks(chunks(), raw_dim):
            if row + len(raw) > n:
                raise CollectionError(f"the vectors to index changed while building: more than {n}", "build the index again")
            built._append(row, np.asarray(ids, dtype=np.int64), built.project(raw))
            row += len(raw)
            bar.update(len(raw))
        bar.close()
        if row != n:
            raise CollectionError(f"the vectors to index changed while building: {row} read, {n} expected",
                                  "build the index again")
        built.manifest.count = len(built)
        return built

    def _append(self, row: int, ids: np.ndarray, projected: np.ndarray) -> None:
        rows = np.arange(row, row + len(ids), dtype=np.int64)
        self.store.array[row : row + len(ids)] = projected
        self.index.add_with_ids(projected, rows)
        self.row_ids[row : row + len(ids)] = ids
        self._sorted = None

    def add(self, ids: np.ndarray, raw: np.ndarray) -> None:
        """Add vectors. A written store grows in place: the new rows go after the rows this version
        holds, which the versions before it (sharing the file) never read (``_Store.append``); a
        store not written yet is copied into a new one with the new rows after them."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids):
            projected = self.project(raw)
            old = len(self.row_ids)
            grown = self.store.append(old, projected)
            self.row_ids = np.concatenate([self.row_ids, np.full(len(ids), -1, dtype=np.int64)])
            if grown is not None:
                self.store = grown
                self.index.add_with_ids(projected, np.arange(old, old + len(ids), dtype=np.int64))
                self.row_ids[old:] = ids
                self._sorted = None
            else:
                store = _Store.create(old + len(ids), self.manifest.dim, self.search_config)
                for start in range(0, old, _COPY_ROWS):
                    end = min(start + _COPY_ROWS, old)
                    store.array[start:end] = self.store.array[start:end]
                self.store = store
                self._append(old, ids, projected)
            self.manifest.params["rows"] = len(self.row_ids)
        self.manifest.count = len(self)

    def remove(self, ids) -> None:
        rows = self._rows_of(np.asarray(list(ids), dtype=np.int64))
        if len(rows):
            self.index.remove_ids(faiss.IDSelectorBatch(rows))
            self.row_ids = self.row_ids.copy()  # a loaded array may be shared with readers
            self.row_ids[rows] = -1
            self._sorted = None
        self.manifest.count = len(self)

    def add_codes(self, bits: int, seed: int = 0) -> bool:
        """No binary codes: the IVF-PQ search is the fast search (``search_fast`` is ``search``)."""
        return False

    # -- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return self.row_ids[self.row_ids >= 0]

    def _lookup(self) -> tuple[np.ndarray | None, np.ndarray]:
        if self._sorted is None:
            ids = self.row_ids
            if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):  # rows in id order: no permutation needed
                self._sorted = (None, ids)
            else:
                order = np.argsort(ids, kind="stable")
                self._sorted = (order, ids[order])
        return self._sorted

    def _rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Rows of the given artwork ids (those not in the index left out)."""
        ids = np.asarray(ids, dtype=np.int64)
        order, sorted_ids = self._lookup()
        if not len(ids) or not len(sorted_ids):
            return np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        found = (sorted_ids[pos] == ids) & (ids >= 0)
        pos = pos[found]
        return pos if order is None else order[pos]

    def vectors(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        rows = self._rows_of(ids)
        if len(rows) != len(ids):
            missing = np.setdiff1d(ids, self.row_ids)[:3].tolist()
            raise CollectionError(f"artworks {missing} are not in the {self.manifest.aspect} index",
                                  "rebuild it: artlens ingest DIR --collection PATH --reindex")
        return self.store.rows(rows)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(self.row_ids >= 0)
        return self.row_ids[rows], self.store.rows(rows)

    def search(self, queries: np.ndarray, k: int, allowed_ids=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` cosine scores and artwork ids: the ``pq_rerank`` nearest codes in the
        ``pq_nprobe`` nearest lists, re-ranked by exact cosine on the stored vectors. A filter that
        leaves at most ``pq_exact_below`` artworks is searched exactly."""
        q = l2_normalise(np.atleast_2d(queries), dtype=np.float32)
        cfg = self.search_config
        k = max(1, min(k, len(self)))
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        out = np.full((len(q), k), -1, dtype=np.int64)
        if not len(self):
            return scores, out
        nlist = int(self.index.nlist)
        params = faiss.SearchParametersIVF(nprobe=max(1, min(int(cfg.pq_nprobe), nlist)))
        if allowed_ids is not None:
            rows = self._rows_of(np.unique(np.asarray(allowed_ids, dtype=np.int64)))
            if len(rows) <= max(int(cfg.pq_exact_below), k):
                return self._exact(q, k, rows, scores, out)
            selector = faiss.IDSelectorBatch(rows)
            params.sel = selector
        shortlist = max(int(cfg.pq_rerank), k)
        approx, found = self.index.search(q, shortlist, params=params)
        if allowed_ids is not None and (found[:, k - 1] < 0).any():  # too few in the lists probed: probe all
            params.nprobe = nlist
            approx, found = self.index.search(q, shortlist, params=params)
        for r in range(len(q)):
            keep = found[r] >= 0
            cand = found[r][keep]
            if cfg.pq_rerank:
                sims = self.store.rows(cand) @ q[r]
            else:
                sims = approx[r][keep]
            top = np.argsort(-sims, kind="stable")[:k]
            scores[r, : len(top)] = sims[top]
            out[r, : len(top)] = self.row_ids[cand[top]]
        return scores, out

    def _exact(self, q, k, rows, scores, out):
        if len(rows):
            sims = self.store.rows(rows) @ q.T  # (rows, queries)
            for r in range(len(q)):
                top = np.argsort(-sims[:, r], kind="stable")[:k]
                scores[r, : len(top)] = sims[top, r]
                out[r, : len(top)] = self.row_ids[rows[top]]
        return scores, out

    def search_fast(self, queries, k, allowed_ids=None, shortlist=None):
        return self.search(queries, k, allowed_ids)

    # -- description ----------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Estimated resident memory when serving: codes and row numbers of the inverted lists, the
        quantisers, the row -> artwork id array (and its sorted copy when rows are not in id order),
        PCA; the memory-mapped vectors are read on demand and not counted."""
        p = self.manifest.params
        n, rows, dim = len(self), len(self.row_ids), self.manifest.dim
        codes = n * (math.ceil(p["m"] * p["nbits"] / 8) + 8)
        quantisers = p["nlist"] * dim * 4 + (2 ** p["nbits"]) * dim * 4
        lookup = rows * 8 * (1 if self._lookup()[0] is None else 3)
        pca = 0 if self.components is None else self.components.nbytes + self.mean.nbytes
        return int(codes + quantisers + lookup + pca)

    # -- persistence ----------------------------------------------------------------------------
    def _write_files(self, folder: Path) -> None:
        faiss.write_index(self.index, str(folder / "index.faiss"))
        self.store.write_to(folder / VECTORS)
        np.save(folder / ROW_IDS, self.row_ids)
        self.manifest.params["rows"] = len(self.row_ids)

    def _written(self, folder: Path) -> None:
        if self.store.scratch is not None:  # serve from the written rows; the scratch file goes
            scratch = self.store.scratch
            self.store = _Store.open(folder / VECTORS)
            shutil.rmtree(scratch, ignore_errors=True)

    @classmethod
    def open_folder(cls, folder: Path, manifest: IndexManifest, mean, components) -> "IVFPQIndex":
        index = faiss.read_index(str(folder / "index.faiss"))
        row_ids = np.load(folder / ROW_IDS)
        store = _Store.open(folder / VECTORS, len(row_ids))  # a later version may have appended rows
        rows = manifest.params.get("rows")
        if store.array.shape != (len(row_ids), manifest.dim) or (rows is not None and rows != len(row_ids)):
            raise ArtifactMismatchError(
                f"index {folder} is inconsistent: {store.array.shape[0]} stored vectors, {len(row_ids)} ids",
                "rebuild it: artlens ingest DIR --collection PATH --reindex",
            )
        return cls(manifest, index, mean, components, store, row_ids)


def _npy_header(version: tuple[int, int], shape: tuple[int, int]) -> bytes:
    """The .npy header of a C-ordered float16 array of ``shape`` in format ``version``."""
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(STORE_DTYPE)), "fortran_order": False, "shape": shape}
    (np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0)(buffer, header)
    return buffer.getvalue()


def _close(fd: int, scratch: Path | None) -> None:
    os.close(fd)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)


_SIBLINGS[KIND] = IVFPQIndex
