"""Ingest on Ray (`artlens ingest --ray`) against a local ingest of the same folder: images per
second end to end (catalog + decode + default image extractors + indexes) and for the extraction
step alone, and a check that both give the same catalog and the same vectors.

One local Ray node with ``--workers`` CPUs (one extraction actor each), started once before the
rounds (its start-up is reported apart: a cluster is normally up already). The rounds alternate
local and Ray ingests into fresh collections, and the table gives medians, because a shared machine's
load changes from one minute to the next.

    python benchmarks/ray_extraction.py [--dataset wikiart_styles] [--n 400] [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import dataset, print_table, write_result
from _local_ray import image_vectors, local_ray

from artlens.collection import Collection


def _ingest(root: Path, folder: Path, ray: str | None) -> tuple[dict, Collection]:
    coll = Collection.open(root, create=True)
    t = time.perf_counter()
    summary = coll.ingest(folder, ray=ray, device="cpu")
    summary["wall_s"] = time.perf_counter() - t
    return summary, coll


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="wikiart_styles")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray node (one actor each)")
    args = parser.parse_args(argv)
    images = sorted(dataset(args.dataset).glob("images/**/*.jpg"))[: args.n]
    rows, checks = [], []
    with local_ray(args.workers) as ray_start_s:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "images"
            folder.mkdir()
            for i, path in enumerate(images):
                (folder / f"{i:06d}.jpg").symlink_to(path)
            for r in range(args.rounds):
                done = {}
                for how in ("local", "ray") if r % 2 == 0 else ("ray", "local"):
                    summary, coll = _ingest(Path(tmp) / f"{how}{r}", folder, "auto" if how == "ray" else None)
                    n = len(coll.catalog)
                    rows.append({"round": r, "run": how, "images": n, "ingest_s": round(summary["wall_s"], 2),
                                 "ingest_img_s": n / summary["wall_s"],
                                 "extract_img_s": n / max(summary["features"]["seconds"], 1e-9),
                                 "load_avg": os.getloadavg()[0]})
                    print_table(rows[-1:], list(rows[-1]))
                    done[how] = (sorted(coll.catalog.iter_artworks()), coll.catalog.skipped(), image_vectors(coll))
                    coll.close()
                (cat_a, skip_a, vec_a), (cat_b, skip_b, vec_b) = done["local"], done["ray"]
                checks.append({
                    "round": r, "same_catalog": cat_a == cat_b and skip_a == skip_b,
                    "max_abs_diff": {k: float(np.abs(vec_a[k] - vec_b[k]).max()) for k in vec_a},
                })

    def median(run: str, key: str) -> float:
        return statistics.median(row[key] for row in rows if row["run"] == run)

    summary_rows = []
    for key in ("ingest_img_s", "extract_img_s"):
        local, on_ray = median("local", key), median("ray", key)
        summary_rows.append({"measure": key, "local_median": local, "ray_median": on_ray, "ray_vs_local": on_ray / local})
    print()
    print_table(summary_rows, list(summary_rows[0]))
    same = all(c["same_catalog"] for c in checks)
    worst = max(v for c in checks for v in c["max_abs_diff"].values())
    print(f"\nRay start-up {ray_start_s:.1f} s (not in the figures); same catalog: {same}; "
          f"largest vector difference: {worst:.2e}; target: Ray within 15 % of local (ratio >= 0.85)")
    write_result("ray_extraction", {
        "dataset": args.dataset, "n": args.n, "rounds": args.rounds, "workers": args.workers,
        "ray_start_s": ray_start_s, "rows": rows, "summary": summary_rows, "checks": checks,
        "same_catalog": same, "max_abs_diff": worst, "target_ratio": 0.85,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
