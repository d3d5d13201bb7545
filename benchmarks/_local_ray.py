"""What the Ray extraction benchmark and its tests (tests/test_distributed.py) share: one local Ray
node on this machine, and the vectors by which a Ray ingest is compared with a local one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from artlens.collection import Collection
from artlens.features import create_extractor


@contextmanager
def local_ray(cpus: int) -> Iterator[float]:
    """A Ray node of ``cpus`` CPUs on 127.0.0.1 (`--ray auto` then runs on it, one extraction actor a
    CPU), shut down on exit; yields its start-up seconds (a cluster is normally up already)."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="ERROR",
             log_to_driver=False)
    try:
        yield time.perf_counter() - start
    finally:
        ray.shutdown()


def image_vectors(coll: Collection) -> dict[str, np.ndarray]:
    """The cached vectors of every image extractor of ``coll`` for its artworks, in MD5 order; an
    artwork without one is an AssertionError (an ingest that left work undone)."""
    md5s = sorted(md5 for _, md5, _ in coll.catalog.iter_artworks())
    out = {}
    for name in coll.config.extractor_names():
        extractor = create_extractor(name)
        if extractor.modality == "image":
            vectors, found = coll.cache.get(extractor.id, md5s)
            if not found.all():
                raise AssertionError(f"{name}: {int((~found).sum())} of {len(md5s)} artworks have no vector")
            out[name] = vectors
    return out
