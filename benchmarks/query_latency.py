"""Query latency of the per-aspect index at 10k, 100k and 1M items, exact (flat) and approximate (IVF,
HNSW), with the recall@10 of the approximate indexes against the exact one.

    python benchmarks/query_latency.py [--dim 256] [--sizes 10000,100000,1000000] [--queries 500]

Vectors are synthetic but clustered like real features (a Gaussian mixture), at the dimension of the
collection's default indexes (256 after PCA).
"""

from __future__ import annotations

import argparse
import sys
import time

import faiss
import numpy as np
from _common import print_table, write_result

from artlens.config import IndexConfig
from artlens.index import AspectIndex


def clustered(n: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        out[start : start + m] = centres[rng.integers(0, len(centres), m)] + 0.35 * rng.standard_normal((m, dim), dtype=np.float32)
    return out


def latency(index: AspectIndex, queries: np.ndarray, k: int = 10) -> tuple[float, float, np.ndarray]:
    times, found = [], []
    for q in queries:
        t = time.perf_counter()
        _, ids = index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
        found.append(ids[0])
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), np.array(found)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--kinds", default="flat,ivf,hnsw")
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="largest size to build HNSW for (slow to build)")
    args = parser.parse_args(argv)
    # One thread per query, as the server runs: OpenMP threads spin-wait on shared cores.
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, args.dim)).astype(np.float32)
    rows = []
    for n in map(int, args.sizes.split(",")):
        data = clustered(n, args.dim, 1, centres)
        queries = clustered(args.queries, args.dim, 2, centres)
        ids = np.arange(n, dtype=np.int64)
        exact_found = None
        for kind in args.kinds.split(","):
            if kind == "hnsw" and n > args.hnsw_max:
                continue
            t = time.perf_counter()
            index = AspectIndex.build("bench", "synthetic", "synthetic/v1", ids, data, None, IndexConfig(kind=kind))
            build_s = time.perf_counter() - t
            p50, p95, found = latency(index, index.project(queries))
            if kind == "flat":
                exact_found = found
            recall = None
            if exact_found is not None:
                recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact_found)]))
            rows.append({"n": n, "index": kind, "p50_ms": p50, "p95_ms": p95, "recall@10": recall,
                         "build_s": round(build_s, 1)})
            print_table(rows[-1:], list(rows[-1]))
            sys.stdout.flush()
            del index
    print()
    print_table(rows, ["n", "index", "p50_ms", "p95_ms", "recall@10", "build_s"])
    write_result("query_latency", {"dim": args.dim, "queries": args.queries, "rows": rows,
                                   "targets": {"exact_100k_p95_ms": 20, "approx_1m_p95_ms": 10, "approx_recall@10": 0.95}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
