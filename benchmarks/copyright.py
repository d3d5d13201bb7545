"""Edited-copy detection: the KOLAA CVAE keys, the robust descriptor, raw EfficientNet-Lite0 pooled
features and a 64-bit pHash, on registries of real paintings.

    python benchmarks/copyright.py                      # louvre and bob_ross, default settings
    python benchmarks/copyright.py --sets bob_ross --cvae-epochs 10

Registries: ``louvre`` (louvre_genre train + val, 1,150 works) and ``bob_ross`` (403 works), each built
with ``CopyrightRegistry.add`` exactly as ``artlens registry add`` does (robust head and CVAE trained
on the registry, threshold calibrated on held-out edits). Queries: seeded edits of every registered
work (13 families incl. combinations of two, see ``artlens.copyright.edits``) plus 1,000 distractor
images that are not registered, each queried unedited and edited once (see ``copyright_data.py``).
The query edits use another seed than the registry's training views.

Metrics per method: µAP over top-1 predictions, recall at 90 % / 99 % precision, top-1 accuracy on
true copies, and at each method's own operating point (robust: calibrated threshold; CVAE: the
paper's verdict) recall, false positives on the unedited and on the edited distractors and recall per
edit family.
``robust-transfer`` applies the head trained on the *other* registry, to show how the descriptor
does on works it never saw; ``robust-fast`` is the robust detector's binary-shortlist mode. Prints a
table and writes ``results/copyright_louvre.json`` / ``results/copyright_bob_ross.json`` (and with
``--report`` the evaluation report folders ``results/copyright_SET_report/``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import RESULTS, print_table, write_result  # noqa: E402
from copyright_data import (  # noqa: E402
    CACHE,
    perceptual_hash,
    query_features,
    query_set,
    registry_set,
    sscd_features,
)

from artlens import settings  # noqa: E402
from artlens.copyright.config import CopyrightConfig  # noqa: E402
from artlens.copyright.evaluate import (  # noqa: E402
    distractor_counts,
    evaluate_detectors,
    score_method,
)
from artlens.copyright.registry import CopyrightRegistry  # noqa: E402
from artlens.progress import Reporter  # noqa: E402
from artlens.reports.copyright import operating_recall, write_copyright_report  # noqa: E402

PER_WORK = {"louvre": 2, "bob_ross": 4}


def build_registry(name: str, config: CopyrightConfig, retrain: tuple[str, ...] = ()) -> CopyrightRegistry:
    folder, _, _ = registry_set(name)
    path = CACHE / f"registry-{name}"
    registry = CopyrightRegistry.open(path, create=True, config=config)
    if len(registry) == 0:
        registry.add(folder, owner=f"{name} (benchmark)", licence="all rights reserved", train=False,
                     reporter=Reporter())
    for detector in config.detectors:
        if detector not in registry.trained() or detector in retrain:
            started = time.perf_counter()
            print(f"training the {detector} detector of {path} ...", flush=True)
            registry.train((detector,), reporter=Reporter())
            print(f"  trained in {time.perf_counter() - started:.0f} s", flush=True)
    return registry


def registry_ids(registry: CopyrightRegistry, works: list[str]) -> np.ndarray:
    """Registry id of each registered file, by position."""
    files = registry.collection.catalog.file_states()
    return np.array([files[str(Path(w).resolve())].artwork_id for w in works], np.int64)


def top1_cosine(queries: np.ndarray, index_ids: np.ndarray, index_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ index_vectors.T
    best = sims.argmax(1)
    return sims[np.arange(len(sims)), best], index_ids[best]


def registry_phash(registry: CopyrightRegistry) -> tuple[np.ndarray, np.ndarray]:
    from artlens.imaging import crop_letterbox, load_image

    ids, paths = [], []
    for artwork_id, _, path in registry.collection.catalog.iter_artworks():
        ids.append(artwork_id)
        paths.append(path)
    return np.array(ids, np.int64), perceptual_hash([crop_letterbox(load_image(p)) for p in paths])


def evaluate_set(name: str, config: CopyrightConfig, seed: int, other_heads: dict) -> dict:
    registry = build_registry(name, config)
    _, works, _ = registry_set(name)
    queries = query_set(name, PER_WORK[name], seed)
    feats = query_features(name, queries, seed)
    features = {"taps": feats["taps"].astype(np.float32), "thumbs": feats["thumbs"]}
    work_ids = registry_ids(registry, works)
    truth = np.array([work_ids[q.work_id] if q.is_copy else -1 for q in queries], np.int64)
    methods = evaluate_detectors(registry, queries, features, truth, fast=True)
    families = [q.family for q in queries]

    def record(method, scores, predicted, threshold=None):
        methods[method] = score_method(scores, predicted, truth, families, threshold)

    ids, registered_taps = registry.collection.raw_vectors("copy-taps")
    for other, detector in other_heads.items():
        s, p = top1_cosine(detector.describe(features["taps"]), ids, detector.describe(registered_taps))
        record(f"robust-transfer (head of {other})", s, p, threshold=detector.threshold)

    sscd = sscd_features(name, queries, seed)
    if sscd is not None:  # optional comparison (non-commercial weights)
        s, p = top1_cosine(sscd["queries"], work_ids, sscd["works"])
        record("sscd (comparison only)", s, p)

    ids, hashes = registry_phash(registry)
    dist = np.bitwise_count(feats["phash"][:, None, :] ^ hashes[None, :, :]).sum(2)
    best = dist.argmin(1)
    record("phash-64", 1.0 - dist[np.arange(len(dist)), best] / 64.0, ids[best])
    return {"registry": str(registry.root), "works": len(registry), "copies": int((truth >= 0).sum()),
            **distractor_counts(queries), "per_work": PER_WORK[name], "seed": seed, "methods": methods}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["louvre", "bob_ross"], choices=["louvre", "bob_ross"])
    ap.add_argument("--seed", type=int, default=2024, help="seed of the query edits")
    ap.add_argument("--cvae-epochs", type=int, default=8,
                    help="CVAE epochs (8: ~25-40 min per registry on 2 shared cores; the registry default is 30)")
    ap.add_argument("--views", type=int, default=None, help="edited views per work for the robust head")
    ap.add_argument("--head", default="registry", choices=["registry", "general"],
                    help="robust head: trained on each registry (the figures in docs/RESULTS.md) or the shipped "
                         "general one (see benchmarks/copyright_general.py)")
    ap.add_argument("--retrain", default="", help="detectors to retrain although trained, e.g. robust")
    ap.add_argument("--report", action="store_true", help="also write results/copyright_SET_report/ (md, json, PNGs)")
    args = ap.parse_args(argv)

    config = settings.with_changes(CopyrightConfig(), {"cvae__epochs": args.cvae_epochs, "robust__views": args.views,
                                                       "detectors": ("robust", "cvae"), "robust__head": args.head})
    results, heads = {}, {}
    for name in args.sets:
        retrain = tuple(d for d in args.retrain.split(",") if d)
        heads[name] = build_registry(name, config, retrain).detector("robust")
    for name in args.sets:
        others = {o: h for o, h in heads.items() if o != name}
        results[name] = evaluate_set(name, config, args.seed, others)
        rows = []
        for method, m in results[name]["methods"].items():
            rows.append({"method": method, "µAP": m["micro_ap"], "R@P90": m["recall@p90"], "R@P99": m["recall@p99"],
                         "top1": m["top1_on_copies"], "recall@op": m.get("recall"),
                         "FP@op unedited": m.get("false_positives_on_unedited_distractors"),
                         "FP@op edited": m.get("false_positives_on_edited_distractors"),
                         "threshold": m.get("threshold")})
        r = results[name]
        print(f"\n{name}: {r['works']} works, {r['copies']} edited copies, {r['distractors']} distractors "
              f"(queried unedited: {r['unedited_distractors']}, edited: {r['edited_distractors']})")
        print_table(rows, ["method", "µAP", "R@P90", "R@P99", "top1", "recall@op", "FP@op unedited", "FP@op edited",
                           "threshold"])
        fam = sorted(results[name]["methods"]["robust"]["recall_per_group"])
        per = [{"family": f, **{meth: operating_recall(m).get(f) for meth, m in results[name]["methods"].items()}}
               for f in fam]
        print("\nrecall per edit family at each method's operating point (baselines: at their 99 % precision threshold)")
        print_table(per, ["family", *results[name]["methods"]])
        write_result(f"copyright_{name}", {"config": settings.to_dict(config), **results[name]})
        if args.report:
            write_copyright_report(results[name], RESULTS / f"copyright_{name}_report")
    return results


if __name__ == "__main__":
    main()
