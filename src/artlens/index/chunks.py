"""The vectors an index is built from, in batches: ``Chunks`` is a callable that yields (artwork ids,
raw vectors) batches each time it is called, so that a build can read them twice (a training
sample, then every batch to add) while holding one batch at a time. A collection reads them from
its feature cache; ``array_chunks`` serves arrays already in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from artlens.errors import ArtifactMismatchError, CollectionError

Chunks = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]  # -> (artwork ids, raw vectors) batches


def array_chunks(ids: np.ndarray, raw: np.ndarray, batch: int) -> Chunks:
    """``Chunks`` over arrays already in memory, ``batch`` rows at a time."""
    ids, batch = np.asarray(ids, dtype=np.int64), max(1, int(batch))

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(ids), batch):
            yield ids[start : start + batch], raw[start : start + batch]

    return chunks


def checked_chunks(chunks: Iterable[tuple[np.ndarray, np.ndarray]], raw_dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The batches as float32 (ids, vectors), each checked to hold ``raw_dim``-d vectors, one per id."""
    for ids, raw in chunks:
        raw = np.atleast_2d(np.asarray(raw, dtype=np.float32))
        if raw.shape[1] != raw_dim or len(ids) != len(raw):
            raise ArtifactMismatchError(f"a batch of {len(ids)} ids and {raw.shape} vectors, expected {raw_dim}-d",
                                        "pass batches of (ids, vectors) of the declared dimension")
        yield ids, raw


def read_sample(chunks: Chunks, n: int, picked: np.ndarray, raw_dim: int) -> np.ndarray:
    """The raw vectors at the sorted positions ``picked`` of the ``n`` that ``chunks()`` yields (one
    pass, one batch in memory at a time besides the sample)."""
    sample = np.empty((len(picked), raw_dim), dtype=np.float32)
    seen = got = 0
    for _, raw in checked_chunks(chunks(), raw_dim):
        lo, hi = np.searchsorted(picked, [seen, seen + len(raw)])
        sample[got : got + hi - lo] = raw[picked[lo:hi] - seen]
        got += hi - lo
        seen += len(raw)
    if seen != n:
        raise CollectionError(f"the vectors to index changed while building: {seen} read, {n} expected",
                              "build the index again")
    return sample
