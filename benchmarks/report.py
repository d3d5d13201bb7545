"""The evaluation report on a benchmark collection, timed: the issue's target is the full report for
wikiart_styles (7,000 images, every stage that exists) in under 20 minutes on 2 cores from cached features.

    python benchmarks/report.py wikiart_styles --label style
    python benchmarks/report.py kohlerryan_artists --label artist --skip federated

Runs ``artlens eval report`` on results/collections/DATASET (built by benchmarks/retrieval.py) into
results/report_DATASET/ (report.md, report.json, PNGs), prints the stage times and writes
results/report_timing_DATASET.json with the wall time, the target and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _common import RESULTS, print_table, write_result

from artlens.collection import Collection
from artlens.progress import Reporter
from artlens.reports.papers import STAGES, ReportConfig, run_report

TARGET_MINUTES = 20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--label", required=True)
    parser.add_argument("--skip", default="", help=f"stages to leave out: {', '.join(STAGES)}")
    parser.add_argument("--rounds", type=int, default=ReportConfig.rounds)
    parser.add_argument("--epochs", type=int, default=ReportConfig.epochs)
    parser.add_argument("--collection", type=Path, help="collection folder (default: results/collections/DATASET; "
                                                        "give a copy if features would have to be computed)")
    args = parser.parse_args(argv)

    root = args.collection or RESULTS / "collections" / args.dataset
    if not (root / "collection.toml").exists():
        raise SystemExit(f"{root} not found: build it with benchmarks/retrieval.py {args.dataset} --label {args.label}")
    config = ReportConfig(label=args.label, skip=frozenset(s for s in args.skip.split(",") if s), rounds=args.rounds,
                          epochs=args.epochs)
    load_before = os.getloadavg()
    start = time.perf_counter()
    coll = Collection.open(root)
    try:
        report = run_report(coll, config, RESULTS / f"report_{args.dataset}", reporter=Reporter())
    finally:
        coll.close()
    minutes = (time.perf_counter() - start) / 60
    rows = [{"stage": name, **s} for name, s in report.stages.items()]
    print()
    print_table(rows, ["stage", "status", "seconds", "reason"])
    print(f"\nwhole report: {minutes:.1f} min (target {TARGET_MINUTES} min)")
    write_result(f"report_timing_{args.dataset}", {
        "dataset": args.dataset, "label": args.label, "minutes": round(minutes, 2), "target_minutes": TARGET_MINUTES,
        "met": minutes < TARGET_MINUTES, "stages": report.stages, "config": config.as_dict(),
        "load_average": {"start": list(load_before), "end": list(os.getloadavg())}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
