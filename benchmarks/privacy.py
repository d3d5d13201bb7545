"""Privacy against utility (issue 18): held-out mAP / top-1 and membership-inference AUC of heads
and artist profiles without DP, with record-level DP-SGD and with institution-level DP.

    python benchmarks/privacy.py                                   # every experiment
    python benchmarks/privacy.py --only central --epsilons 1,4,8
    python benchmarks/privacy.py --only federated --rounds 5
    python benchmarks/privacy.py --only profiles

Experiments:

- ``central``: a head on wikiart_styles (content + style, ce loss) without DP and with record-level
  DP at each epsilon (delta 1e-5, the recipe of ``--dp-records``: ``train.privacy.DP_RECIPE``); each
  audited (threshold + LiRA with ``--shadows`` shadow heads);
- ``federated``: fedstyle over the style partition (7 institutions): no DP, record-level DP at each
  epsilon (the recipe of ``federate --dp-records``: ``federated.privacy.private_federation``),
  institution-level DP at ``--institution-epsilon``; each head audited the same way (shadows:
  central heads with the federation's local settings);
- ``profiles``: kohlerryan_artists profiles in the space of the central no-DP style head: exact
  prototypes and DP profiles at each epsilon; attribution of held-back works and the attacks;
- ``timing``: one full audit (default shadows) of the central head: the 15-minute target.

Utility is the held-out mAP of the head alone (``map``, what the target is about) and, beside it,
``map_mix``: the ranking a user gets when the learned aspect is mixed with the collection's
pretrained aspects (``--weights learned=W`` over the default mix; the pretrained aspects cost no
privacy), with the pretrained mix alone as a reference row.

Writes results/privacy_<experiment>.json; docs/RESULTS.md's privacy section is generated from them
(benchmarks/results_md.py). The machine may be shared: seconds are this machine's at the time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import RESULTS, print_table, write_result

from artlens.artists.portfolio import artist_labels, learned_space
from artlens.artists.profiles import ProfileConfig, build_profiles
from artlens.collection import Collection
from artlens.config import CollectionConfig, IndexConfig
from artlens.features import create_extractor
from artlens.index import AspectIndex
from artlens.metrics import evaluate_vectors
from artlens.models import load_head
from artlens.privacy import AuditConfig, audit_privacy
from artlens.privacy.heads import audited_features
from artlens.progress import Reporter
from artlens.reports.privacy import summary_row, write_privacy_report
from artlens.settings import with_changes
from artlens.train.config import TrainConfig
from artlens.train.privacy import DP_RECIPE, private_training
from artlens.train.run import train_collection_head

STYLES = RESULTS / "collections" / "wikiart_styles"
ARTISTS = RESULTS / "collections" / "kohlerryan_artists"
RUNS = RESULTS / "privacy_runs"
FEATURES = ("content", "style")
COLUMNS = ["setting", "map", "map_mix", "top1", "auc_threshold", "auc_lira", "tpr@1%fpr", "tpr@0.1%fpr", "epsilon", "seconds"]


_PRETRAINED: dict = {}


def pretrained_vectors(coll, ids: np.ndarray) -> dict[str, np.ndarray]:
    """The collection's default pretrained aspects (as its index stores them: PCA fitted on every
    artwork) of ``ids``, by aspect; indexes built once per collection."""
    config = CollectionConfig()
    out = {}
    for aspect, weight in config.weights.items():
        spec = config.aspects[aspect]
        if weight <= 0:
            continue
        key = (str(coll.root), aspect)
        if key not in _PRETRAINED:
            got, raw = coll.raw_vectors(spec.extractor)
            _PRETRAINED[key] = AspectIndex.build(aspect, spec.extractor, create_extractor(spec.extractor).id, got, raw,
                                                 spec.pca_dims, IndexConfig(kind="flat"))
        out[aspect] = _PRETRAINED[key].vectors(ids)
    return out


def ranking_maps(coll, head, weight: float) -> dict:
    """Held-out mAP of the ranking users get: the learned aspect at ``weight`` mixed with the default
    pretrained mix (``map_mix``), and of that pretrained mix alone (``map_pretrained``)."""
    data, split = audited_features(coll, head)
    test = data.subset(np.flatnonzero(split == "test"))
    vectors = pretrained_vectors(coll, test.ids.astype(np.int64))
    mix = {a: w for a, w in CollectionConfig().weights.items() if a in vectors}
    labels = test.labels[:, 0].tolist()
    vectors["learned"] = head.embed(test.inputs, test.present)
    total = sum(mix.values())
    mixed = {"learned": weight, **{a: (1 - weight) * w / total for a, w in mix.items()}}
    return {"map_mix": evaluate_vectors(vectors, mixed, labels)["map"],
            "map_pretrained": evaluate_vectors(vectors, mix, labels)["map"]}


def audited_row(setting: str, coll, head, args, extra: dict | None = None, **kwargs) -> dict:
    start = time.perf_counter()
    audit = audit_privacy(coll, head, config=AuditConfig(shadows=args.shadows, shadow_epochs=args.shadow_epochs),
                          reporter=Reporter(), **kwargs)
    write_privacy_report(audit, RUNS / setting.replace(" ", "-").replace(",", ""))
    row = {**summary_row(setting, audit), "audit_seconds": round(time.perf_counter() - start, 1), **(extra or {})}
    if "profiles" not in kwargs:
        row.update(ranking_maps(coll, head, args.learned_weight))
    row["members"], row["nonmembers"] = audit["members"], audit["nonmembers"]
    print_table([row], COLUMNS)
    return row


def central_head(coll, eps: float, args):
    config = TrainConfig(loss="ce", seed=args.seed)
    if eps:
        config = private_training(config, eps)  # the recipe of `artlens train --dp-records`
    start = time.perf_counter()
    run = train_collection_head(coll, "style", FEATURES, config)
    run.head.save(RUNS / f"central-eps{eps:g}.pt")
    return run.head, round(time.perf_counter() - start, 1)


def run_central(args) -> None:
    coll = Collection.open(STYLES)
    rows = []
    try:
        for eps in [0.0, *args.epsilons]:
            head, seconds = central_head(coll, eps, args)
            rows.append(audited_row("central, no DP" if not eps else f"central, record-level DP eps {eps:g}", coll,
                                    head, args, {"seconds": seconds}))
    finally:
        coll.close()
    costs(rows)
    report("privacy_central", rows, args, {"dataset": "wikiart_styles", "loss": "ce", "delta": 1e-5,
                                           "dp_recipe": DP_RECIPE, "learned_weight": args.learned_weight})


def costs(rows: list[dict]) -> None:
    """Each row's cost in points of held-out mAP against the first (no DP), for the head alone and
    for the mixed ranking; then the pretrained mix alone as a reference row."""
    for r in rows:
        r["map_cost"] = round(rows[0]["map"] - r["map"], 4)
        if r.get("map_mix") is not None:
            r["map_mix_cost"] = round(rows[0]["map_mix"] - r["map_mix"], 4)
    if rows and rows[0].get("map_pretrained") is not None:
        rows.append({"setting": "pretrained aspects alone (no learned aspect, no training)",
                     "map_mix": rows[0]["map_pretrained"]})


FEDERATED_SETTINGS = ("none", "records", "institution")


def run_federated(args) -> None:
    """The federated rows of ``--federated`` (none: no DP, records: record-level DP at each epsilon,
    institution: institution-level DP); rows of an earlier run for the settings not rerun are kept."""
    from artlens.federated.config import FederatedConfig, ServerSettings
    from artlens.federated.privacy import DP_FEDERATION, private_federation
    from artlens.federated.simulation import simulate

    base = with_changes(FederatedConfig(rounds=args.rounds, local_epochs=args.local_epochs),
                        {"training__seed": args.seed})
    wanted = [w.strip() for w in args.federated.split(",") if w.strip()]
    unknown = sorted(set(wanted) - set(FEDERATED_SETTINGS))
    if unknown:
        raise SystemExit(f"unknown --federated settings {unknown}: choose from {', '.join(FEDERATED_SETTINGS)}")
    dp_local = {"local_epochs": args.dp_local_epochs} if args.dp_local_epochs else {}
    settings = []
    if "none" in wanted:
        settings.append(("federated fedstyle, no DP", base))
    if "records" in wanted:  # the recipe of `artlens federate --dp-records`
        settings += [(f"federated, record-level DP eps {eps:g}", private_federation(base, eps, dp_local or None))
                     for eps in args.epsilons]
    if "institution" in wanted:
        settings.append((f"federated fedstyle, institution-level DP eps {args.institution_epsilon:g}",
                         base.replace(dp_epsilon=args.institution_epsilon)))
    rows = []
    for name, config in settings:
        start = time.perf_counter()
        result = simulate(STYLES, ServerSettings(config, str(RUNS / name.replace(" ", "-").replace(",", ""))), "style",
                          attach=False, cpus=args.cpus)
        seconds = round(time.perf_counter() - start, 1)
        coll = Collection.open(STYLES)
        try:
            rows.append(audited_row(name, coll, load_head(f"{result.run_dir}/head.pt"), args,
                                    {"seconds": seconds, "kept_round": result.summary["kept_round"],
                                     "federated_map": result.summary["map"], "strategy": config.strategy,
                                     "rounds": config.rounds, "local_epochs": config.local_epochs,
                                     "record_epsilon": result.summary.get("record_epsilon")}))
        finally:
            coll.close()
    rows = merged_rows("privacy_federated", rows)
    costs(rows)
    report("privacy_federated", rows, args, {"dataset": "wikiart_styles", "partition": "style (7 institutions)",
                                             "rounds": args.rounds, "local_epochs": args.local_epochs, "delta": 1e-5,
                                             "dp_recipe": {**DP_RECIPE, **DP_FEDERATION, **dp_local},
                                             "learned_weight": args.learned_weight})


def merged_rows(name: str, rows: list[dict]) -> list[dict]:
    """``rows`` with the rows of an earlier results/NAME.json whose settings were not rerun, no-DP first."""
    path = RESULTS / f"{name}.json"
    fresh = {r["setting"] for r in rows}
    kept = []
    if path.exists():
        kept = [r for r in json.loads(path.read_text()).get("rows", [])
                if r.get("setting") not in fresh and "map" in r and "auc_lira" in r]
    out = kept + rows
    return sorted(out, key=lambda r: (0 if "no DP" in r["setting"] else 1 if "record" in r["setting"] else 2,
                                      r.get("epsilon") or 0))


def run_profiles(args) -> None:
    head_file = RUNS / "central-eps0.pt"
    if not head_file.exists():
        raise SystemExit(f"{head_file} not found: run --only central first (the profiles live in its space)")
    head = load_head(head_file)
    coll = Collection.open(ARTISTS)
    rows = []
    try:
        space = learned_space(coll, head, artist_labels(coll, "artist"))
        for eps in [None, *args.epsilons]:
            published = build_profiles(space.vectors, space.artists, head.id, ProfileConfig(epsilon=eps))
            name = "profiles, exact prototypes" if eps is None else f"profiles, DP eps {eps:g}"
            rows.append(audited_row(name, coll, head, args, profiles=published, artist_column="artist"))
    finally:
        coll.close()
    report("privacy_profiles", rows, args, {"dataset": "kohlerryan_artists", "head": head.id,
                                            "utility": "attribution of held-back works: top-1, map = MRR"})


def run_timing(args) -> None:
    coll = Collection.open(STYLES)
    try:
        head = load_head(RUNS / "central-eps0.pt")
        start = time.perf_counter()
        audit = audit_privacy(coll, head, config=AuditConfig(), reporter=Reporter())
        minutes = round((time.perf_counter() - start) / 60, 2)
    finally:
        coll.close()
    row = {**summary_row("central, no DP (default audit)", audit), "minutes": minutes, "shadows": audit["shadows"]}
    report("privacy_timing", [row], args, {"dataset": "wikiart_styles", "target_minutes": 15,
                                           "shadows": audit["shadows"]})


def report(name: str, rows: list[dict], args, extra: dict) -> None:
    print(f"\n{name}")
    print_table(rows, COLUMNS)
    write_result(name, {"shadows": args.shadows, "shadow_epochs": args.shadow_epochs, "seed": args.seed, **extra,
                        "rows": rows})


EXPERIMENTS = {"central": run_central, "federated": run_federated, "profiles": run_profiles, "timing": run_timing}


def main() -> None:
    from artlens.federated.config import FederatedConfig

    federated = FederatedConfig()  # its defaults are the benchmark's (rounds, local epochs)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="central,profiles,federated,timing", help=", ".join(EXPERIMENTS))
    parser.add_argument("--epsilons", type=lambda s: [float(v) for v in s.split(",") if v], default=[1.0, 4.0, 8.0])
    parser.add_argument("--federated", default=",".join(FEDERATED_SETTINGS),
                        help="federated settings to run: none, records, institution (others' rows of an earlier run kept)")
    parser.add_argument("--institution-epsilon", type=float, default=8.0)
    parser.add_argument("--shadows", type=int, default=4)
    parser.add_argument("--shadow-epochs", type=int, default=0)
    parser.add_argument("--learned-weight", type=float, default=0.5,
                        help="weight of the learned aspect in the mixed ranking (map_mix), over the pretrained mix")
    parser.add_argument("--rounds", type=int, default=federated.rounds)
    parser.add_argument("--local-epochs", type=int, default=federated.local_epochs, help="without record-level DP")
    parser.add_argument("--dp-local-epochs", type=int, default=0, help="record-level DP runs (0: the DP recipe's)")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (STYLES / "collection.toml").exists():
        raise SystemExit(f"{STYLES} not found: build it with benchmarks/retrieval.py wikiart_styles first")
    RUNS.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(","):
        EXPERIMENTS[name.strip()](args)


if __name__ == "__main__":
    main()
