"""Finding artists from published style profiles (issue 9): leave-one-artwork-out artist retrieval.

    python benchmarks/artists.py kohlerryan_artists           # 7 artists; image-only and image + text heads
    python benchmarks/artists.py wikiart_styles               # 7 styles standing in for artists

Queries are the test-split artworks of each head (works it never saw); every artist's profile is
built from all their other works. Methods (see ``artlens.artists.evaluate``): profiles (a few
prototypes), profiles-mean (one), profiles-dp-epsE (one noisy prototype, mean of 5 draws),
pretrained-profiles (the collection's default aspect mix), nearest-artwork (best single work) and
nearest-artwork-vote10 (10 nearest works vote) in the head's space and over pretrained features.

kohlerryan_artists: heads are trained here, in memory (nothing is written to the collection), one
per seed, each seed its own stratified split (27 test artworks), on [content, style] (image only)
and [content, style, text] (image + text, queried with the query's image and text, its image alone,
and its description alone); figures are means over the seeds. wikiart_styles: the collection's
central head (its stored split) and the federated heads under results/federated_runs/style-* (the stratified split seeded 0, whose test part
was never dealt to an institution).

Uses the cached collections under results/collections/; writes results/artists_DATASET.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from _common import RESULTS, print_table, write_result

from artlens.artists.evaluate import evaluate_artists, ranking
from artlens.artists.portfolio import artist_labels, learned_space
from artlens.artists.profiles import ProfileConfig, build_profiles, merge_profiles
from artlens.artists.search import score_profiles
from artlens.collection import Collection
from artlens.models import load_head
from artlens.train.loop import TrainConfig
from artlens.train.run import train_collection_head
from artlens.train.split import split_ids

EPSILONS = (1.0, 2.0, 4.0, 8.0, 16.0)
METRICS = ("top1", "top3", "mrr")


def averaged(results: list[dict]) -> dict:
    """Mean (and std of top-1) of each method's metrics over several runs."""
    out = {}
    for name in results[0]["methods"]:
        runs = [r["methods"][name] for r in results]
        out[name] = {k: float(np.mean([m[k] for m in runs])) for k in METRICS}
        out[name]["top1_std_over_runs"] = float(np.std([m["top1"] for m in runs]))
        out[name]["space"] = runs[0].get("space", "")
    return out


def summary_rows(setting: str, methods: dict, n_queries: int) -> list[dict]:
    return [{"setting": setting, "method": name, "top-1": m["top1"], "top-3": m["top3"], "MRR": m["mrr"],
             "queries": n_queries} for name, m in methods.items()]


def targets(methods: dict) -> dict:
    """Profiles within 5 points top-1 of the nearest-artwork upper bound (the better of 1-NN and
    voting); DP at epsilon 8 within 5 points of the same profiles without noise (one prototype)."""
    bound = max(methods["nearest-artwork"]["top1"], methods["nearest-artwork-vote10"]["top1"])
    gap = bound - methods["profiles"]["top1"]
    dp_cost = methods["profiles-mean"]["top1"] - methods["profiles-dp-eps8"]["top1"]
    dp_cost_vs_profiles = methods["profiles"]["top1"] - methods["profiles-dp-eps8"]["top1"]
    return {"upper_bound_top1": bound, "profiles_gap_points": 100 * gap, "profiles_within_5_points": gap <= 0.05,
            "dp_eps8_cost_points": 100 * dp_cost, "dp_eps8_cost_vs_profiles_points": 100 * dp_cost_vs_profiles,
            "dp_eps8_within_5_points": max(dp_cost, dp_cost_vs_profiles) <= 0.05}


def merge_check(coll, column: str, head, institutions: int = 3, epsilon: float = 8.0, draws: int = 5,
                seed: int = 0) -> dict:
    """Published files from several institutions, merged, against one file of the same works: every
    artist's works outside the test split are dealt at random to ``institutions`` institutions, each
    publishes its profiles (artists with fewer than 2 works there are left out of its file), the files
    are merged by counts; the test-split works query both (held out of every profile). DP figures are
    means over ``draws`` releases."""
    labels = artist_labels(coll, column)
    space = learned_space(coll, head, labels)
    test = np.isin(space.ids, split_ids(coll, column, "test", head if head.split else None, seed))
    artists = np.asarray(space.artists)
    dealt = np.random.default_rng(seed).integers(institutions, size=len(artists))
    out: dict[str, list[dict]] = {}
    for name, config in (("one file", ProfileConfig()), (f"one file, DP eps {epsilon:g}", ProfileConfig(epsilon=epsilon))):
        rest = ~test
        for _ in range(draws if config.epsilon else 1):  # DP: fresh noise each draw, averaged
            one = build_profiles(space.vectors[rest], artists[rest].tolist(), head.id, config)
            parts = []
            for i in range(institutions):
                mine = rest & (dealt == i)
                names, counts = np.unique(artists[mine], return_counts=True)
                keep = mine & np.isin(artists, names[counts >= 2])
                parts.append(build_profiles(space.vectors[keep], artists[keep].tolist(), head.id, config))
            merged = merge_profiles(parts)
            for label, profiles in ((name, one), (name.replace("one file", f"merged from {institutions}"), merged)):
                order = profiles.names()
                scores = np.stack([score_profiles(space.vectors[r], profiles)[1] for r in np.flatnonzero(test)])
                truth = np.array([order.index(a) for a in artists[test]])
                out.setdefault(label, []).append(ranking(scores, truth))
    return {label: {k: float(np.mean([r[k] for r in runs])) for k in METRICS} for label, runs in out.items()}


def kohlerryan(seeds: list[int], epsilons) -> dict:
    coll = Collection.open(RESULTS / "collections" / "kohlerryan_artists")
    settings: dict[str, list[dict]] = {"image-only": [], "image+text": [], "image+text, image queries": [],
                                       "image+text, text queries": []}
    seconds = {"train": 0.0, "eval": 0.0}
    merges: dict[str, list[dict]] = {}
    for seed in seeds:
        config = dataclasses.replace(TrainConfig(), seed=seed)
        for name, features in (("image-only", ["content", "style"]), ("image+text", ["content", "style", "text"])):
            start = time.perf_counter()
            head = train_collection_head(coll, "artist", features, config).head
            seconds["train"] += time.perf_counter() - start
            start = time.perf_counter()
            settings[name].append(evaluate_artists(coll, "artist", head, "test", epsilons, seed=seed))
            merges.setdefault(name, []).append(merge_check(coll, "artist", head, seed=seed))
            if name == "image+text":
                settings["image+text, image queries"].append(
                    evaluate_artists(coll, "artist", head, "test", epsilons, baselines=False, queries="image", seed=seed))
                settings["image+text, text queries"].append(
                    evaluate_artists(coll, "artist", head, "test", epsilons, baselines=False, queries="text", seed=seed))
            seconds["eval"] += time.perf_counter() - start
            print(f"seed {seed} {name}: profiles top-1 {settings[name][-1]['methods']['profiles']['top1']:.3f}", flush=True)
    out = {"seeds": seeds, "queries_per_seed": settings["image-only"][0]["n_queries"],
           "artists": settings["image-only"][0]["n_artists"], "seconds": seconds, "settings": {}}
    for name, runs in settings.items():
        methods = averaged(runs)
        out["settings"][name] = {"methods": methods, "targets": targets(methods), "heads": [r["head"] for r in runs]}
    out["merge"] = {name: averaged([{"methods": m} for m in runs]) for name, runs in merges.items()}
    return out


def wikiart(epsilons) -> dict:
    coll = Collection.open(RESULTS / "collections" / "wikiart_styles")
    heads = {"central (supcon, collection head)": coll.head()}
    for folder in sorted((RESULTS / "federated_runs").glob("style-*")):
        if (folder / "head.pt").exists():
            heads[f"federated {folder.name}"] = load_head(folder / "head.pt")
    out = {"settings": {}}
    for name, head in heads.items():
        start = time.perf_counter()
        result = evaluate_artists(coll, "style", head, "test", epsilons, baselines=name.startswith("central"))
        result["seconds"] = time.perf_counter() - start
        result["targets"] = targets(result["methods"])
        result["merge"] = merge_check(coll, "style", head)
        out["settings"][name] = result
        print(f"{name}: profiles top-1 {result['methods']['profiles']['top1']:.3f} "
              f"({result['seconds']:.1f} s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=["kohlerryan_artists", "wikiart_styles"])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="kohlerryan_artists: one head and split per seed")
    args = parser.parse_args()
    epsilons = EPSILONS
    if args.dataset == "kohlerryan_artists":
        result = kohlerryan([int(s) for s in args.seeds.split(",")], epsilons)
        n = result["queries_per_seed"] * len(result["seeds"])
    else:
        result = wikiart(epsilons)
        n = next(iter(result["settings"].values()))["n_queries"]
    rows = []
    for setting, body in result["settings"].items():
        rows += summary_rows(setting, body["methods"], n)
    print_table(rows, ["setting", "method", "top-1", "top-3", "MRR", "queries"])
    print()
    print_table([{"setting": s, **{k: v for k, v in b["targets"].items()}} for s, b in result["settings"].items()],
                ["setting", "upper_bound_top1", "profiles_gap_points", "profiles_within_5_points",
                 "dp_eps8_cost_points", "dp_eps8_cost_vs_profiles_points", "dp_eps8_within_5_points"])
    merges = result.get("merge") or {s: b["merge"] for s, b in result["settings"].items() if "merge" in b}
    print("\nprofiles from several institutions, merged (test-split queries, held out of every profile)")
    print_table([{"setting": s, "profiles": p, "top-1": m["top1"], "top-3": m["top3"], "MRR": m["mrr"]}
                 for s, body in merges.items() for p, m in body.items()], ["setting", "profiles", "top-1", "top-3", "MRR"])
    write_result(f"artists_{args.dataset}", {"dataset": args.dataset, "epsilons": list(epsilons), **result})


if __name__ == "__main__":
    main()
