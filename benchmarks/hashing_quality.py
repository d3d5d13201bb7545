"""Retrieval quality of the hashing heads: mAP@k of Hamming ranking vs the float cosine bound.

    python benchmarks/hashing_quality.py --collection results/collections/cifar10_jpg --label label --seeds 0 1 2
    python benchmarks/hashing_quality.py --features /tmp/cifar10_effnet.npz

``--collection`` hashes the collection's cached vectors of ``--extractor`` for the artworks labelled in
``--label``, in id order: exactly what ``artlens eval hashing`` hashes, so the two agree seed for seed.
An npz holds ``features`` float32 (N, D) and ``labels`` (N,). ``--queries`` stratified queries are
drawn (seeded); every hasher is fitted on the remaining database items (unsupervised: labels are
only used for scoring) and both sides are encoded with it. Prints a table and writes JSON into
``results/``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from artlens.collection import Collection  # noqa: E402
from artlens.hashing import (  # noqa: E402
    create_hasher,
    float_map_at_k,
    hashing_map_at_k,
    list_hashers,
    stratified_queries,
)
from artlens.progress import Reporter  # noqa: E402


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_features(args) -> tuple[np.ndarray, np.ndarray, str]:
    """(features, labels, what they are) from the npz or the collection of ``args``."""
    if args.features:
        with np.load(args.features, allow_pickle=False) as z:
            return z["features"].astype(np.float32), z["labels"], str(args.features)
    coll = Collection.open(args.collection)
    try:
        labels = coll.catalog.labels(args.label)
        ids, feats = coll.raw_vectors(args.extractor, sorted(labels))
    finally:
        coll.close()
    return feats.astype(np.float32), np.array([labels[int(i)] for i in ids]), f"{args.collection} ({args.extractor})"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", help="npz with 'features' (N, D) and 'labels' (N,)")
    source.add_argument("--collection", help="a collection folder: its cached vectors of --extractor")
    ap.add_argument("--label", default="label", help="with --collection: the column that defines relevance")
    ap.add_argument("--extractor", default="effnet-lite0", help="with --collection: whose cached vectors")
    ap.add_argument("--methods", nargs="+", default=["lsh", "itq", "tbh", "tbh-sim"], choices=list_hashers())
    ap.add_argument("--bits", nargs="+", type=int, default=[16, 32, 64])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0, help="query split seed")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0],
                    help="hasher seeds; the table shows the mean over them (and the spread)")
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="METHOD.KEY=VALUE",
        help="hasher config overrides, e.g. tbh-sim.epochs=30 tbh.lr=0.002",
    )
    ap.add_argument("--out", default=str(ROOT / "results" / "hashing_quality.json"))
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)

    overrides: dict[str, dict] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        method, _, name = key.rpartition(".")
        overrides.setdefault(method, {})[name] = _parse_value(value)

    feats, labels, source_name = load_features(args)
    q_idx, db_idx = stratified_queries(labels, args.queries, seed=args.seed)
    qf, dbf, ql, dbl = feats[q_idx], feats[db_idx], labels[q_idx], labels[db_idx]
    print(f"{source_name}: {len(feats)} x {feats.shape[1]}, {len(np.unique(labels))} classes; "
          f"{len(q_idx)} queries vs {len(db_idx)} database items, mAP@{args.k}", flush=True)

    t = time.perf_counter()
    bound = {
        "cosine": float_map_at_k(qf, dbf, ql, dbl, k=args.k),
        "cosine_centered": float_map_at_k(qf, dbf, ql, dbl, k=args.k, center=True),
    }
    best_bound = max(bound.values())
    print(f"float bound: cosine {bound['cosine']:.4f}, centred cosine {bound['cosine_centered']:.4f} "
          f"({time.perf_counter() - t:.1f}s)", flush=True)

    rows = []
    for method in args.methods:
        for bits in args.bits:
            runs = []
            for seed in args.seeds:
                hasher = create_hasher(method, bits, **overrides.get(method, {}))
                t0 = time.perf_counter()
                hasher.fit(dbf, seed=seed, reporter=Reporter(args.progress))
                fit_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                db_codes = hasher.encode(dbf)
                q_codes = hasher.encode(qf)
                enc_s = time.perf_counter() - t0
                m = hashing_map_at_k(q_codes, db_codes, ql, dbl, k=args.k)
                bit_mean = np.unpackbits(db_codes, axis=1).mean(axis=0)
                runs.append({"seed": seed, "map": m, "fit_s": fit_s, "encode_s": enc_s,
                             "bit_balance_worst": float(np.max(np.abs(bit_mean - 0.5)))})
            maps = np.array([r["map"] for r in runs])
            row = {
                "method": method, "bits": bits, "map": float(maps.mean()), "map_std": float(maps.std()),
                "map_min": float(maps.min()), "ratio_to_bound": float(maps.mean() / best_bound),
                "fit_s": float(np.mean([r["fit_s"] for r in runs])), "runs": runs,
                "config": hasher.config()["hyperparameters"],
            }
            rows.append(row)
            spread = f" +- {maps.std():.4f} (min {maps.min():.4f}, {len(maps)} seeds)" if len(maps) > 1 else ""
            print(f"  {method:8s} {bits:3d} bits  mAP@{args.k} {maps.mean():.4f}{spread}  "
                  f"({maps.mean() / best_bound:5.1%} of bound)  fit {row['fit_s']:6.1f}s", flush=True)

    # summary table
    print()
    header = f"{'method':10s}" + "".join(f"{b:>9d}b" for b in args.bits) + f"   (mAP@{args.k}, mean of {len(args.seeds)} seed(s))"
    print(header)
    print("-" * len(header))
    for method in args.methods:
        cells = [next(r["map"] for r in rows if r["method"] == method and r["bits"] == b) for b in args.bits]
        print(f"{method:10s}" + "".join(f"{c:10.4f}" for c in cells))
    print(f"{'float cos':10s}" + f"{bound['cosine']:10.4f}" * len(args.bits))
    print(f"{'float cosc':10s}" + f"{bound['cosine_centered']:10.4f}" * len(args.bits) + "   (centred cosine)")

    result = {
        "features": source_name,
        "n_items": int(len(feats)), "dim": int(feats.shape[1]),
        "n_queries": int(len(q_idx)), "n_database": int(len(db_idx)), "k": args.k, "split_seed": args.seed, "hasher_seeds": args.seeds,
        "float_bound": bound, "results": rows,
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
