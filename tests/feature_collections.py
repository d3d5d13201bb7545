"""Test fixture: a tiny collection of cached feature vectors with class structure and no images, for
smoke tests of the federated path (as open_clip's CPU training test: the whole path in seconds).

Each class has a random centre per extractor; an artwork's vector is its class centre plus noise,
stored in the feature cache under the real extractor ids, so heads, partitions and the federation
run exactly as on a real collection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artlens.collection import Collection
from artlens.features import create_extractor


def make_feature_collection(root: str | Path, classes: Sequence[str] = ("baroque", "cubism", "impressionism", "ukiyo-e"),
                            per_class: int | Sequence[int] = 20, extractors: Sequence[str] = ("colour-hist", "gram-block4"),
                            label: str = "style", noise: float = 1.0, seed: int = 0, extra: dict | None = None):
    """Create (or extend) a collection at ``root``; returns it open. ``extra``: more metadata columns
    as {column: function(index, class) -> value}."""
    rng = np.random.default_rng(seed)
    collection = Collection.open(root, create=True)
    counts = [per_class] * len(classes) if isinstance(per_class, int) else list(per_class)
    keys, rows = [], []
    with collection.catalog.transaction():
        for c, (name, count) in enumerate(zip(classes, counts)):
            for i in range(count):
                md5 = hashlib.md5(f"{seed}-{name}-{i}".encode()).hexdigest()
                artwork_id, _ = collection.catalog.add_file(f"/synthetic/{name}/{i}.png", md5, 1000 + i, 0, 64, 64)
                fields = {label: name, **{col: fn(len(keys), name) for col, fn in (extra or {}).items()}}
                collection.catalog.set_metadata(artwork_id, fields)
                keys.append(md5)
                rows.append(c)
    rows = np.asarray(rows)
    for name in extractors:
        extractor = create_extractor(name)
        centres = rng.standard_normal((len(classes), extractor.dim))
        vectors = centres[rows] + noise * rng.standard_normal((len(rows), extractor.dim))
        collection.cache.register(extractor.id, extractor.dim, {"synthetic": True})
        collection.cache.put(extractor.id, keys, np.abs(vectors).astype(np.float32))
    return collection
