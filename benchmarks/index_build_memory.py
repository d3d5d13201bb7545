"""Peak memory of building an aspect's index from a collection's feature cache: the batched build of
`Collection.update_indexes` (the cache read `pq_add_batch` vectors at a time; an ivfpq or ivf index
trained on a sample, then added batch by batch) against reading every vector in one piece first
(`raw_vectors`, then `AspectIndex.build`, as update_indexes did before).

A synthetic collection of --n artworks with --dim-d vectors in its feature cache (under the id of the
colour-hist extractor, 512-d, so the collection's own aspect reads them) is made once under --work;
each build then runs in a fresh child process, which reports its peak resident memory (VmHWM) and
its baseline after opening the collection.

    python benchmarks/index_build_memory.py --n 200000 [--kind ivfpq] [--batch 65536,16384]

Memory figures hold on a loaded machine; the seconds do not (rerun on a quiet one).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import print_table, write_result

EXTRACTOR = "colour-hist"
ASPECT = "colour"


def _memory() -> dict:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def make_collection(root: Path, n: int, kind: str, seed: int = 0) -> None:
    """Catalog n synthetic artworks and cache a clustered vector for each (in batches)."""
    from artlens.collection import Collection
    from artlens.config import AspectConfig, CollectionConfig, IndexConfig
    from artlens.features import create_extractor

    config = CollectionConfig(aspects={ASPECT: AspectConfig(EXTRACTOR)}, weights={ASPECT: 1.0},
                              index=IndexConfig(kind=kind))
    coll = Collection.open(root, create=True, config=config)
    extractor = create_extractor(EXTRACTOR)
    coll.cache.register(extractor.id, extractor.dim, {"synthetic": True})
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 1000), extractor.dim)).astype(np.float32)
    t = time.perf_counter()
    for start in range(0, n, 20_000):
        keys = [hashlib.md5(f"{seed}-{i}".encode()).hexdigest() for i in range(start, min(start + 20_000, n))]
        with coll.catalog.transaction():
            for i, md5 in zip(range(start, start + len(keys)), keys):
                coll.catalog.add_file(f"/synthetic/{i}.png", md5, 1000, 0, 64, 64)
        vectors = centres[rng.integers(0, len(centres), len(keys))] + rng.standard_normal((len(keys), extractor.dim))
        coll.cache.put(extractor.id, keys, np.abs(vectors).astype(np.float32))
        print(f"  {start + len(keys)} artworks catalogued and cached ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    coll.close()


def build(root: Path, mode: str, batch: int) -> dict:
    """One build in this (fresh) process: ``batched`` through update_indexes, ``whole`` the vectors
    read in one piece first."""
    import dataclasses

    from artlens.collection import Collection
    from artlens.features import create_extractor
    from artlens.index import AspectIndex

    coll = Collection.open(root)
    coll.config = dataclasses.replace(coll.config, index=dataclasses.replace(coll.config.index, pq_add_batch=batch))
    coll.catalog.md5s()  # what both modes hold anyway (the catalog's keys), before the baseline
    baseline = _memory()["VmRSS"]
    t = time.perf_counter()
    if mode == "batched":
        count = coll.update_indexes(rebuild=True)[ASPECT]
        kind = coll.index(ASPECT).manifest.kind
    else:
        ids, raw = coll.raw_vectors(EXTRACTOR)
        index = AspectIndex.build(ASPECT, EXTRACTOR, create_extractor(EXTRACTOR).id, ids, raw, None, coll.config.index)
        count, kind = len(index), index.manifest.kind
    seconds = time.perf_counter() - t
    peak = _memory()["VmHWM"]
    coll.close()
    return {"mode": mode, "kind": kind, "vectors": count, "batch": batch, "baseline_rss": baseline, "peak_rss": peak,
            "peak_above_baseline": peak - baseline, "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300_000)
    ap.add_argument("--kind", choices=["ivfpq", "ivf"], default="ivfpq")
    ap.add_argument("--batch", default="65536,16384",
                    help="IndexConfig.pq_add_batch of the batched builds, comma-separated (the first is the default)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/artlens-index-build-memory"))
    ap.add_argument("--stage", choices=["batched", "whole"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    root = args.work / f"{args.kind}-n{args.n}"
    batches = [int(b) for b in str(args.batch).split(",") if b.strip()]
    if args.stage:
        print(json.dumps(build(root, args.stage, batches[0])))
        return 0
    if not (root / "collection.toml").exists():
        make_collection(root, args.n, args.kind)
    rows = []
    for mode, batch in [("batched", b) for b in batches] + [("whole", batches[0])]:
        cmd = [sys.executable, __file__, "--stage", mode, "--n", str(args.n), "--kind", args.kind,
               "--batch", str(batch), "--work", str(args.work)]
        done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    dim = 512
    raw_bytes = args.n * dim * 4
    table = [{"build": r["mode"], "batch": r["batch"] if r["mode"] == "batched" else "", "kind": r["kind"], "vectors": r["vectors"], "peak_GiB": r["peak_rss"] / 2**30,
              "above_open_GiB": r["peak_above_baseline"] / 2**30, "raw_vectors_GiB": raw_bytes / 2**30,
              "seconds (under load)": r["seconds"]} for r in rows]
    print_table(table, list(table[0]))
    whole = rows[-1]
    for batched in rows[:-1]:
        print(f"\nbatched build ({batched['batch']:,} a batch): {batched['peak_above_baseline'] / 2**20:.0f} MiB above "
              f"the opened collection, against {whole['peak_above_baseline'] / 2**20:.0f} MiB reading the "
              f"{raw_bytes / 2**20:.0f} MiB of vectors in one piece")
    write_result("index_build_memory", {"n": args.n, "dim": dim, "kind": args.kind, "batches": batches,
                                        "raw_vector_bytes": raw_bytes, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
