"""`artlens search --fast`: a binary shortlist (PCA-ITQ codes, Hamming ranking) re-ranked by exact
cosine, against the exact search.

    python benchmarks/fast_search.py [--collection results/collections/wikiart_styles] [--label style]
                                     [--queries 1000] [--size 1000000] [--bits 64,128,256]

Two parts:

* quality on a real collection: "more like this" queries with the default mix of aspects; overlap of
  the fast top-10 with the exact top-10, and the mAP@100 (relevant = same label) of both;
* speed at scale: one 256-d aspect of ``--size`` synthetic clustered vectors; per-query latency
  p50/p95 of the exact flat scan, of the fast search, and of IVF, with recall@10 against the exact scan.

The quality part indexes the default aspects in ``<collection>-defaults`` beside the collection\n(sharing its catalog and feature cache); codes of other lengths are made in memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from _common import REPO, print_table, write_result
from query_latency import clustered

from artlens.collection import Collection
from artlens.config import IndexConfig
from artlens.index import AspectIndex
from artlens.metrics import average_precision
from artlens.search import SearchEngine


def percentiles(times: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}


def default_aspects(source: Path) -> Collection:
    """A collection beside ``source`` sharing its catalog and feature cache (links), with the default
    aspects indexed: the benchmark collections hold features for many extractors but other indexes."""
    root = source.parent / f"{source.name}-defaults"
    root.mkdir(exist_ok=True)
    for name in ("catalog.sqlite", "features.sqlite"):
        if not (root / name).exists():
            (root / name).symlink_to((source / name).resolve())
    coll = Collection.open(root, create=True)
    missing = [a for a in coll.config.aspects if a not in coll.indexed_aspects()]
    cached = {spec.extractor for spec in coll.config.aspects.values()}
    if missing:
        print(f"indexing {', '.join(missing)} of {root} from cached features ({', '.join(sorted(cached))})")
        coll.update_indexes(aspects=missing)
    return coll


def quality(collection_path, label: str, n_queries: int, bits_list: list[int], shortlists: list[int], seed: int) -> list[dict]:
    coll = default_aspects(Path(collection_path))
    engine = SearchEngine(coll)
    weights = engine.resolve_weights({a: None for a in engine.aspects}, None, None)
    labels = coll.catalog.column(label)
    ids = np.array(sorted(labels), dtype=np.int64)
    queries = np.random.default_rng(seed).choice(ids, min(n_queries, len(ids)), replace=False)
    vectors = {int(q): engine.artwork_vectors([int(q)]) for q in queries}

    def run(fast: bool, k: int):
        times, tops = [], []
        for q in queries:
            t = time.perf_counter()
            ranked = engine.rank(vectors[int(q)], weights, k, exclude={int(q)}, fast=fast)
            times.append((time.perf_counter() - t) * 1000)
            tops.append([r[0] for r in ranked])
        aps = [average_precision(np.array([labels.get(i) == labels[int(q)] for i in top]),
                                 n_relevant=min(k, sum(1 for v in labels.values() if v == labels[int(q)]) - 1))
               for q, top in zip(queries, tops)]
        return tops, float(np.mean(aps)), percentiles(times)

    # top-10 (each aspect contributes its 201 best candidates) and top-100 (1,001 candidates)
    exact10, _, exact_t = run(False, 10)
    exact100, exact_map, _ = run(False, 100)
    columns = ["method", "bits", "shortlist", "overlap@10", "overlap@100", "map@100", "p50_ms", "p95_ms"]
    rows = [{"method": "exact", "bits": None, "shortlist": None, "overlap@10": 1.0, "overlap@100": 1.0,
             "map@100": exact_map, **exact_t}]
    print_table(rows, columns)
    for bits in bits_list:
        for aspect in weights:
            coll.index(aspect).add_codes(bits)
        for shortlist in shortlists:
            for aspect in weights:
                coll.index(aspect).search_config = dataclasses.replace(coll.config.index, fast_shortlist=shortlist)
            tops10, _, t = run(True, 10)
            tops100, m, _ = run(True, 100)
            rows.append({"method": "fast", "bits": coll.index(next(iter(weights))).codes.bits, "shortlist": shortlist,
                         "overlap@10": float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(tops10, exact10)])),
                         "overlap@100": float(np.mean([len(set(a) & set(b)) / 100 for a, b in zip(tops100, exact100)])),
                         "map@100": m, **t})
            print_table(rows[-1:], columns)
    return rows


def speed(size: int, dim: int, n_queries: int, bits: int, shortlist: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    raw = clustered(size, dim, seed, centres)
    ids = np.arange(size, dtype=np.int64)
    queries = clustered(n_queries, dim, seed + 1, centres)
    t = time.perf_counter()
    flat = AspectIndex.build("x", "synthetic", "synthetic/v1", ids, raw, None,
                             IndexConfig(kind="flat", hash_bits=bits, fast_shortlist=shortlist))
    build_s = time.perf_counter() - t
    ivf = AspectIndex.build("x", "synthetic", "synthetic/v1", ids, raw, None, IndexConfig(kind="ivf", hash_bits=0))
    del raw
    q = flat.project(queries)
    rows, exact = [], []
    for name, fn in (("exact flat scan", lambda v: flat.search(v, 10)),
                     (f"fast ({bits}-bit codes, shortlist {shortlist})", lambda v: flat.search_fast(v, 10)),
                     ("IVF (nprobe 32)", lambda v: ivf.search(v, 10))):
        times, found = [], []
        for v in q:
            t = time.perf_counter()
            _, hit = fn(v[None, :])
            times.append((time.perf_counter() - t) * 1000)
            found.append(hit[0])
        if not exact:
            exact = found
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)]))
        rows.append({"method": name, "n": size, **percentiles(times), "recall@10": recall})
        print_table(rows[-1:], list(rows[0]))
    rows[1]["build_s_with_codes"] = build_s
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collection", default=str(REPO / "results" / "collections" / "wikiart_styles"))
    parser.add_argument("--label", default="style")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--bits", default="64,128,256")
    parser.add_argument("--shortlists", default="200,1000")
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--speed-queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import faiss
    import torch

    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    bits = [int(b) for b in args.bits.split(",")]
    shortlists = [int(s) for s in args.shortlists.split(",")]
    print(f"== quality: {args.collection}, label {args.label}, {args.queries} queries, default mix")
    q_rows = quality(args.collection, args.label, args.queries, bits, shortlists, args.seed)
    print(f"\n== speed: {args.size:,} synthetic {args.dim}-d vectors, one thread")
    s_rows = speed(args.size, args.dim, args.speed_queries, 128, 1000, args.seed)
    write_result("fast_search", {"collection": str(args.collection), "label": args.label, "queries": args.queries,
                                 "quality": q_rows, "speed": s_rows})


if __name__ == "__main__":
    main()
