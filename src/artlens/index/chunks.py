"""The vectors an index is built from, in batches: ``Chunks`` is a callable that yields (artwork ids,
raw vectors) batches each time it is called, so that a build can read them twice (a training
sample, then every batch to add) while holding one batch at a time. A source that can read given
rows directly (a collection's feature cache, ``Collection.vector_chunks``) also has ``take(rows)``,
which yields the (ids, vectors) batches of those rows, so that the sample costs no pass over all of
them; ``array_chunks`` serves arrays already in memory."""

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
    """The raw vectors at the sorted positions ``picked`` of the ``n`` that ``chunks()`` yields (read
    with ``chunks.take`` where the source has it, else in one pass; one batch in memory at a time
    besides the sample)."""
    sample = np.empty((len(picked), raw_dim), dtype=np.float32)
    take = getattr(chunks, "take", None)
    if take is not None:
        got = 0
        for _, raw in checked_chunks(take(picked), raw_dim):
            sample[got : got + len(raw)] = raw
            got += len(raw)
        if got != len(picked):
            raise CollectionError(f"the vectors to index changed while building: {got} of {len(picked)} sampled "
                                  "rows read", "build the index again")
        return sample
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
