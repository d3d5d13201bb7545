"""Federated training across institutions (issue 4) on wikiart_styles, with Flower's simulation engine.

    python benchmarks/federated.py                       # every experiment, modest rounds
    python benchmarks/federated.py --only style --rounds 50
    python benchmarks/federated.py --only dirichlet,dp,secagg --rounds 10

Experiments (all scored on the collection's held-out test split, which no institution holds):

- ``style``: one institution per style (7): fedstyle and fedavg (and fedstyle without its virtual
  styles) against the central head (same features, ``artlens train`` defaults, CE and SupCon) and
  local-only training (each institution alone; mean over institutions) as the lower bound;
- ``dirichlet``: Dirichlet(0.3) over 5 institutions: fedavg, fedprox, fedadam, fedstyle;
- ``dp``: fedstyle with institution-level differential privacy at epsilon <= 8 (delta 1e-5);
- ``secagg``: fedstyle with and without SecAgg+: time and bytes per round;
- ``timing``: the fedstyle style-partition run alone (``--rounds 50``: the 15-minute target).

Writes results/federated_<experiment>.json (per-round curves in each run's folder under
results/federated_runs/). Rounds, local epochs and CPUs are in the JSON; wall times are those of this
machine, which may be shared.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from _common import RESULTS, print_table, write_result

from artlens.collection import Collection
from artlens.federated.config import FederatedConfig, ServerSettings
from artlens.federated.head import build_head, input_specs
from artlens.federated.heldout import HeldOut
from artlens.federated.institution import InstitutionSource, load_institution
from artlens.federated.simulation import plan_partition, simulate
from artlens.settings import with_changes
from artlens.train.config import TrainConfig
from artlens.train.loop import train_head
from artlens.train.run import train_collection_head

COLLECTION = RESULTS / "collections" / "wikiart_styles"
RUNS = RESULTS / "federated_runs"
FEATURES = ("content", "style")


def federation(args, **changes) -> FederatedConfig:
    """The federation of an experiment: its rounds, local epochs and seed."""
    config = FederatedConfig(rounds=args.rounds, local_epochs=args.local_epochs, **changes)
    return with_changes(config, {"training__seed": args.seed})


def federated_row(name: str, config: FederatedConfig, partition: str, institutions: int = 0, cpus: int = 2) -> dict:
    start = time.perf_counter()
    result = simulate(COLLECTION, ServerSettings(config, str(RUNS / name)), partition, institutions, attach=False,
                      cpus=cpus)
    summary = result.summary
    rounds = summary["rounds"]
    seconds = time.perf_counter() - start
    return {"model": name, "strategy": config.strategy, "map": summary["map"], "acc": summary["accuracy"],
            "epsilon": summary["epsilon"], "kept_round": summary["kept_round"], "rounds": len(rounds),
            "best_test_map_any_round": max((r.get("test_map") or 0) for r in rounds),
            "seconds": round(seconds, 1), "setup_seconds": summary.get("setup_seconds"),
            "round_seconds": round(float(np.mean([r["seconds"] for r in rounds])), 2),
            "mb_per_round": round(float(np.mean([r["bytes_down"] + r["bytes_up"] for r in rounds])) / 1e6, 2),
            "institutions": len(summary["institutions"]), "curve": [r.get("test_map") for r in rounds],
            "run_dir": str(RUNS / name)}


def central_rows(config: FederatedConfig) -> list[dict]:
    coll = Collection.open(COLLECTION)
    rows = []
    try:
        for loss in ("ce", "supcon"):
            start = time.perf_counter()
            run = train_collection_head(coll, config.label, FEATURES, TrainConfig(loss=loss, seed=config.training.seed))
            rows.append({"model": f"central ({loss})", "strategy": "central", "map": run.test["map"],
                         "acc": run.test.get("top1"), "seconds": round(time.perf_counter() - start, 1),
                         "epochs": len(run.history.epochs)})
    finally:
        coll.close()
    return rows


def local_only_row(config: FederatedConfig, partition: str, institutions: int = 0) -> dict:
    """Each institution trains alone (central recipe on its own artworks); scored on the shared test split."""
    coll = Collection.open(COLLECTION)
    try:
        part = plan_partition(coll, config, partition, institutions)
        classes = sorted(set(coll.catalog.column(config.label).values()))
        specs = input_specs(FEATURES, config.training.head, coll.config.aspects)
    finally:
        coll.close()
    files = part.write_institution_files(RUNS / f"local-{partition.replace(':', '')}" / "partition")
    seed = config.training.seed
    heldout = HeldOut.from_collection(str(COLLECTION), specs, config.label, "test", training=config.training)
    scores, start = [], time.perf_counter()
    for name in part.names:
        data = load_institution(InstitutionSource(name, str(COLLECTION), str(files[name])), specs, config.label,
                                training=config.training)
        train, val = data.coded("train", classes), data.coded("val", classes) or data.coded("train", classes)
        reduce = min(config.training.head.reduce_dims, len(train) - 1)
        local_specs = [dataclasses.replace(s, reduce_dims=reduce if s.reduce_dims else None) for s in specs]
        tc = TrainConfig(seed=seed)
        head = build_head(tc.head_config(local_specs, config.label, classes), seed)
        head.fit_inputs(train.inputs, train.present, seed)
        train_head(head, train, val, tc)
        scores.append(heldout.score(head)["test-map"])
    return {"model": "local only (mean)", "strategy": "local", "map": float(np.mean(scores)),
            "map_min": float(np.min(scores)), "map_max": float(np.max(scores)), "institutions": len(scores),
            "seconds": round(time.perf_counter() - start, 1)}


def run_style(args) -> None:
    base = federation(args)
    rows = central_rows(base) + [local_only_row(base, "style")]
    rows.append(federated_row("style-fedstyle", base.replace(strategy="fedstyle"), "style", cpus=args.cpus))
    rows.append(federated_row("style-fedavg", base.replace(strategy="fedavg"), "style", cpus=args.cpus))
    if not args.quick:
        rows.append(federated_row("style-fedstyle-no-virtual", base.replace(strategy="fedstyle", virtual_styles=False),
                                  "style", cpus=args.cpus))
    central = next(r["map"] for r in rows if r["model"] == "central (ce)")
    for r in rows:
        r["vs_central_ce"] = round(r["map"] - central, 4)
    report("federated_style", rows, args, {"partition": "style (7 institutions, one style each)"})


def run_dirichlet(args) -> None:
    base = federation(args)
    rows = [local_only_row(base, "dirichlet:0.3", 5)]
    for strategy in ("fedavg", "fedprox", "fedadam", "fedstyle"):
        rows.append(federated_row(f"dirichlet-{strategy}", base.replace(strategy=strategy), "dirichlet:0.3", 5, args.cpus))
    report("federated_dirichlet", rows, args, {"partition": "dirichlet alpha 0.3 over 5 institutions"})


def run_dp(args) -> None:
    base = federation(args, strategy="fedstyle")
    rows = [federated_row("dp-none", base, "style", cpus=args.cpus)]
    for eps in args.epsilons:
        for clip in args.dp_clips:
            row = federated_row(f"dp-eps{eps:g}-clip{clip:g}", base.replace(dp_epsilon=eps, dp_clip=clip), "style",
                                cpus=args.cpus)
            rows.append({**row, "clip": clip})
    for r in rows:
        r["map_cost"] = round(rows[0]["map"] - r["map"], 4)
    report("federated_dp", rows, args, {"partition": "style (7 institutions)", "delta": 1e-5,
                                        "level": "institution (client-level central DP, clients clip)",
                                        "scope": "training rounds; the one-off set-up statistics are exact sums"})


def run_secagg(args) -> None:
    base = federation(args, strategy="fedstyle")
    rows = [federated_row("secagg-off", base, "style", cpus=args.cpus),
            federated_row("secagg-on", base.replace(secagg=True), "style", cpus=args.cpus)]
    off, on = rows
    for r in rows:
        r["round_seconds_overhead"] = round(r["round_seconds"] - off["round_seconds"], 2)
    on["overhead_percent"] = round(100 * (on["round_seconds"] / off["round_seconds"] - 1), 1)
    report("federated_secagg", rows, args, {"partition": "style (7 institutions)",
                                            "note": "under SecAgg+ the institutions do not evaluate each round"})


def run_timing(args) -> None:
    """The issue's timing target: the style-partition fedstyle simulation at its paper settings (50 rounds)."""
    config = federation(args, strategy="fedstyle")
    row = federated_row(f"style-fedstyle-{args.rounds}", config, "style", cpus=args.cpus)
    row["minutes"] = round(row["seconds"] / 60, 2)
    report("federated_timing", [row], args, {"partition": "style (7 institutions)", "target_minutes": 15})


def report(name: str, rows: list[dict], args, extra: dict) -> None:
    print(f"\n{name}")
    print_table(rows, ["model", "map", "acc", "kept_round", "rounds", "seconds", "round_seconds", "mb_per_round",
                       "epsilon"])
    write_result(name, {"dataset": "wikiart_styles", "label": "style", "features": list(FEATURES),
                        "rounds": args.rounds, "local_epochs": args.local_epochs, "cpus": args.cpus, **extra,
                        "rows": rows})


EXPERIMENTS = {"style": run_style, "dirichlet": run_dirichlet, "dp": run_dp, "secagg": run_secagg, "timing": run_timing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="style,dirichlet,dp,secagg", help="comma-separated: " + ", ".join(EXPERIMENTS))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--local-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--epsilons", type=lambda s: [float(v) for v in s.split(",")], default=[8.0])
    parser.add_argument("--dp-clips", type=lambda s: [float(v) for v in s.split(",")], default=[1.0, 0.1])
    parser.add_argument("--quick", action="store_true", help="skip the ablation runs")
    args = parser.parse_args()
    if not (COLLECTION / "collection.toml").exists():
        raise SystemExit(f"{COLLECTION} not found: build it with benchmarks/retrieval.py wikiart_styles first")
    for name in args.only.split(","):
        EXPERIMENTS[name.strip()](args)


if __name__ == "__main__":
    main()
