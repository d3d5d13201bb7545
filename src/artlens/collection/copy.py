"""Copy a collection between backends (folder <-> PostgreSQL) and check that it searches the same."""


from __future__ import annotations

from pathlib import Path

import numpy as np

from artlens.collection.folder import (
    HEAD,
    SETTINGS,
    Collection,
)
from artlens.collection.postgres import PostgresCollection
from artlens.errors import CollectionError
from artlens.index import AspectIndex
from artlens.postgres import (
    PgAspectIndex,
)
from artlens.progress import QUIET, Reporter


def copy_collection(source: str | Path, target: str | Path, reporter: Reporter = QUIET, queries: int = 200,
                    k: int = 10) -> dict:
    """Copy a collection (a folder or a ``postgresql://`` schema) into a new or empty one of either
    kind: catalog (ids kept), feature cache, settings, head and every index as it is (transforms and
    stored vectors, so nothing is refitted); then check that searches give the same results: per
    aspect, the top-``k`` of up to ``queries`` artworks' own vectors in the source and in the copy
    (their mean overlap; ``same`` when every aspect's is at least 0.95). Committed as one generation
    of the target."""
    src = Collection.open(source)
    dst = Collection.open(target, create=True, config=src.config)
    try:
        if len(dst.catalog):
            raise CollectionError(f"{dst.location} already holds {len(dst.catalog)} artworks",
                                  "copy into a new or empty collection (another folder, or another ?schema=)")
        aspects = src.indexed_aspects()
        with dst.writing(reporter=reporter, publish=True):
            reporter.step(f"copying the catalog of {src.location} ({len(src.catalog)} artworks)")
            dst.catalog.load_dump(src.catalog.dump())
            reporter.step("copying the feature cache")
            src.cache.copy_into(dst.cache)
            dst.config = src.config
            dst._stage(SETTINGS, dst.config.save, "settings")
            if src._artifact_present(HEAD):
                dst._stage(HEAD, src.head().save, "file")
                dst._head = src.head()
            for aspect in aspects:
                reporter.step(f"copying the {aspect} index")
                index = src.index(aspect)
                if isinstance(index, PgAspectIndex) and not isinstance(dst, PostgresCollection):
                    index = index.to_folder_index()
                dst._stage_index(aspect, index)
        check = {aspect: _same_results(src.index(aspect), dst.index(aspect), queries, k) for aspect in aspects}
        return {"source": src.location, "target": dst.location, "artworks": len(dst.catalog),
                "generation": dst.generation, "aspects": check,
                "same": all(c["overlap"] >= 0.95 for c in check.values())}
    finally:
        src.close()
        dst.close()


def _same_results(a: AspectIndex, b: AspectIndex, queries: int, k: int, seed: int = 0) -> dict:
    """Mean top-``k`` overlap of two indexes over up to ``queries`` of their artworks' own vectors;
    a hit of ``b`` tied with ``a``'s k-th score counts as the same (equal scores have no order)."""
    ids = a.ids()
    if not len(ids):
        return {"count": 0, "queries": 0, "overlap": 1.0}
    chosen = np.sort(np.random.default_rng(seed).choice(ids, min(queries, len(ids)), replace=False))
    vectors = a.vectors(chosen)
    scores_a, top_a = a.search(vectors, k)
    scores_b, top_b = b.search(vectors, k)
    overlaps = []
    for ia, sa, ib, sb in zip(top_a, scores_a, top_b, scores_b):
        ia, ib, sb = ia[ia >= 0], sb[ib >= 0], ib[ib >= 0]
        if not len(ia):
            overlaps.append(1.0 if not len(ib) else 0.0)
            continue
        kth = float(sa[len(ia) - 1])
        same = sum(1 for i, s in zip(ib.tolist(), sb.tolist()) if i in set(ia.tolist()) or s >= kth - 1e-5)
        overlaps.append(min(same, len(ia)) / len(ia))
    return {"count": len(b), "queries": len(chosen), "overlap": round(float(np.mean(overlaps)), 4)}
