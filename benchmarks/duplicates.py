"""Near-duplicate review (``artlens duplicates``) on a collection of real paintings with planted edited
copies: precision and recall of the groups at the default threshold, and the time of a review with
features cached.

    python benchmarks/duplicates.py [--works 10000] [--sources 600] [--second 100] [--seed 0]

The collection (built once under ``results/cache/duplicates/``) holds every image of wikiart_styles,
louvre_genre, bob_ross and kohlerryan_artists (8,837), ``--sources`` of them copied once by a seeded
edit of the generator (``copyright.edits``, every family balanced, combos included) and ``--second``
of those copied a second time, padded with procedurally drawn demo pictures up to ``--works``. The
copies are image files like any other; the review is told nothing about them.

Measured at the default threshold (``DuplicatesConfig.threshold``) and over a sweep:
- pair precision: of the pairs the review puts in one group, the share that are a planted copy and its
  source (or two copies of one source); pair recall: of the planted pairs, the share in one group;
- recall per edit family;
- the time of one review of the collection (descriptor, codes, shortlist, re-ranking, groups) with the
  copy-taps features cached, on the threads torch and FAISS are given (``--threads``, default 2).
Writes ``results/duplicates.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import DATA, RESULTS, print_table, write_result  # noqa: E402

from artlens.catalog.ingest import file_md5  # noqa: E402
from artlens.collection import Collection  # noqa: E402
from artlens import settings  # noqa: E402
from artlens.copyright.duplicates import (  # noqa: E402
    DESCRIPTORS,
    DuplicatesConfig,
    copy_taps,
    describe_works,
)
from artlens.copyright.edits import edit_plan, edited, rng_for  # noqa: E402
from artlens.copyright.extractors import register_extractors  # noqa: E402
from artlens.copyright.taps import COPY_TAPS  # noqa: E402
from artlens.imaging import crop_letterbox, load_image  # noqa: E402
from artlens.progress import Reporter  # noqa: E402

CACHE = RESULTS / "cache" / "duplicates"
SETS = ("bob_ross", "kohlerryan_artists", "louvre_genre", "wikiart_styles")


def real_images() -> list[Path]:
    out: list[Path] = []
    for name in SETS:
        folder = DATA / name
        if not (folder / "labels.csv").exists():
            raise SystemExit(f"artwork set {name!r} not found under {DATA}; set ARTLENS_DATA to the folder that holds it")
        with open(folder / "labels.csv", newline="") as fh:
            out += sorted(folder / r["path"] for r in csv.DictReader(fh))
    return out


def plant_copies(sources: list[Path], n_second: int, seed: int, folder: Path) -> list[dict]:
    """Edited copies written as JPEG files (quality 90): one of every source, a second of the first
    ``n_second``; returns the truth (copy file, source file, family)."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = [(i, f, 0) for i, f in edit_plan(len(sources), 1, seed)]
    plan += [(i, f, 1) for i, f in edit_plan(n_second, 1, seed + 1)]
    truth = []
    for n, (i, family, k) in enumerate(plan):
        path = folder / f"copy{n:05d}.jpg"
        if not path.exists():
            image = crop_letterbox(load_image(sources[i]))
            out, _ = edited(image, family, rng_for(seed, i, k))
            out.convert("RGB").save(path, quality=90)
        truth.append({"copy": str(path), "source": str(sources[i]), "family": family})
    return truth


def build(args, reporter: Reporter) -> tuple[Collection, list[dict], dict]:
    """The benchmark collection (made once, features cached) and the planted truth."""
    register_extractors()
    images = real_images()
    rng = np.random.default_rng(args.seed)
    n_copies = args.sources + args.second
    n_real = min(len(images), args.works - n_copies)
    real_used = images[:n_real]  # a smaller run takes the sets in order: Bob Ross, Kohler-Ryan, Louvre, WikiArt
    sources = [real_used[i] for i in sorted(rng.choice(len(real_used), args.sources, replace=False))]
    root = CACHE / f"n{args.works}-s{args.sources}-{args.second}-seed{args.seed}"
    truth = plant_copies(sources, args.second, args.seed, root / "copies")
    n_demo = max(0, args.works - n_real - len(truth))
    collection = Collection.open(root / "collection", create=True)
    if not (root / "built.json").exists():
        started = time.perf_counter()
        links = root / "real"
        links.mkdir(exist_ok=True)
        for path in real_used:  # one folder to ingest: links to the shared images (nothing copied)
            link = links / f"{path.parent.parent.name}__{path.parent.name}__{path.name}"
            if not link.exists():
                link.symlink_to(path)
        collection.ingest(links, features=False, reporter=reporter)
        collection.ingest(root / "copies", features=False, reporter=reporter)
        if n_demo:
            from artlens.demo.generate import generate_demo_collection

            generate_demo_collection(root / "demo", n=n_demo, seed=args.seed, size=256, reporter=reporter)
            collection.ingest(root / "demo" / "images", features=False, reporter=reporter)
        for other in CACHE.glob("*/collection"):  # features another size of the benchmark computed
            if other != root / "collection" and (other / "features.sqlite").exists():
                done = Collection.open(other)
                done.cache.copy_into(collection.cache)
                done.close()
        collection.ensure_features([COPY_TAPS], reporter=reporter, reason="the benchmark")
        (root / "built.json").write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1),
                                                     "real": len(real_used), "copies": len(truth), "demo": n_demo}))
    info = json.loads((root / "built.json").read_text())
    return collection, truth, info


def truth_pairs(collection: Collection, truth: list[dict]) -> tuple[set[tuple[int, int]], dict[int, str]]:
    """Planted pairs (artwork ids, a < b): each copy with its source and with the other copies of it;
    and the edit family of each copy."""
    by_source: dict[int, list[int]] = {}
    family = {}
    for t in truth:
        copy = collection.catalog.by_md5(file_md5(Path(t["copy"])))
        source = collection.catalog.by_md5(file_md5(Path(t["source"])))
        by_source.setdefault(source.id, [source.id]).append(copy.id)
        family[copy.id] = t["family"]
    pairs = {(min(a, b), max(a, b)) for group in by_source.values() for a in group for b in group if a != b}
    return pairs, family


def evaluate(found: set[tuple[int, int]], planted: set[tuple[int, int]]) -> dict:
    hit = len(found & planted)
    return {"pairs_found": len(found), "precision": hit / len(found) if found else 1.0,
            "recall": hit / len(planted) if planted else 1.0}


def grouped_pairs(pairs, threshold: float) -> set[tuple[int, int]]:
    """Pairs of works put in one group at ``threshold`` (transitive closure of the links)."""
    out = set()
    for group in pairs.groups(threshold):
        out |= {(a, b) for a in group.ids for b in group.ids if a < b}
    return out


def review(collection: Collection, truth: list[dict], config: DuplicatesConfig) -> dict:
    """One timed review of the collection with ``config`` (features cached), scored against the truth."""
    from artlens.copyright.duplicates import duplicate_pairs

    started = time.perf_counter()
    pairs_at_floor = duplicate_pairs(collection, config, compute=False)
    groups = pairs_at_floor.groups(config.threshold)
    seconds = time.perf_counter() - started
    planted, family = truth_pairs(collection, truth)
    row_of = {int(i): r for r, i in enumerate(pairs_at_floor.ids)}

    # the exact float search over all pairs, to see what the Hamming shortlist loses
    _, _, taps = copy_taps(collection, compute=False)
    desc = describe_works(taps, config)
    planted_rows = np.array([(row_of[a], row_of[b]) for a, b in sorted(planted)])
    planted_scores = np.einsum("nd,nd->n", desc[planted_rows[:, 0]], desc[planted_rows[:, 1]])
    shortlisted = {(int(pairs_at_floor.ids[a]), int(pairs_at_floor.ids[b])) for a, b in
                   zip(pairs_at_floor.a, pairs_at_floor.b)}
    in_shortlist = np.mean([(min(a, b), max(a, b)) in shortlisted for a, b in sorted(planted)])

    sweep = []
    for threshold in np.round(np.arange(max(config.floor, 0.3), 0.951, 0.025), 3):
        m = evaluate(grouped_pairs(pairs_at_floor, float(threshold)), planted)
        sweep.append({"threshold": float(threshold), **m})
    at_default = evaluate(grouped_pairs(pairs_at_floor, config.threshold), planted)
    calibrated = next((r for r in sweep if r["precision"] >= 0.95), None)
    families = {}
    found = grouped_pairs(pairs_at_floor, config.threshold)
    for (a, b) in planted:
        f = family.get(a) if a in family and b not in family else family.get(b) if b in family and a not in family \
            else "copy+copy"
        entry = families.setdefault(f, [0, 0])
        entry[0] += (a, b) in found
        entry[1] += 1
    return {"descriptor": config.descriptor, "works": len(pairs_at_floor.ids), "default_threshold": config.threshold,
            "at_default": at_default, "calibrated_for_precision_0.95": calibrated, "sweep": sweep,
            "recall_by_family": {f: {"recall": hit / n, "pairs": n} for f, (hit, n) in families.items()},
            "planted_pairs_in_shortlist": float(in_shortlist), "planted_pair_cosine_median": float(np.median(planted_scores)),
            "review_seconds": round(seconds, 2), "groups": len(groups)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--works", type=int, default=10_000)
    ap.add_argument("--sources", type=int, default=600)
    ap.add_argument("--second", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--descriptors", nargs="+", default=[DuplicatesConfig.descriptor], choices=list(DESCRIPTORS),
                    help="descriptors to review with (general: the general copy head, built by "
                         "`artlens registry general-head`); the first is the headline")
    ap.add_argument("--prepare", action="store_true", help="only build the collection and cache its features")
    args = ap.parse_args()
    reporter = Reporter(True)
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    collection, truth, info = build(args, reporter)
    print(f"collection: {info['real']} real images, {info['copies']} planted copies, {info['demo']} demo pictures "
          f"({len(collection.catalog)} works after the catalog merged byte-identical files)")
    if args.prepare:
        return
    results = {}
    for name in args.descriptors:
        config = settings.with_changes(DuplicatesConfig(), {"descriptor": name})
        r = review(collection, truth, config)
        results[name] = r
        print(f"\n== descriptor {name}")
        print_table(r["sweep"], ["threshold", "pairs_found", "precision", "recall"])
        print()
        print_table([{"family": f, "recall": v["recall"], "pairs": v["pairs"]} for f, v in sorted(r["recall_by_family"].items())],
                    ["family", "recall", "pairs"])
        calibrated = r["calibrated_for_precision_0.95"]
        print(f"\nat the default threshold {config.threshold}: precision {r['at_default']['precision']:.4f}, recall "
              f"{r['at_default']['recall']:.4f}, {r['groups']} groups; lowest threshold with precision >= 0.95: "
              f"{calibrated and calibrated['threshold']} (recall {calibrated and calibrated['recall']:.4f})")
        print(f"review of {r['works']} works (features cached): {r['review_seconds']:.1f} s on {args.threads} threads; "
              f"planted pairs in the Hamming shortlist: {r['planted_pairs_in_shortlist']:.4f}; planted pair cosine "
              f"median {r['planted_pair_cosine_median']:.3f}")
    headline = results[args.descriptors[0]]
    write_result("duplicates", {**headline, "collection": info, "threads": args.threads,
                                "load_average": list(os.getloadavg()), "descriptors": results})


if __name__ == "__main__":
    main()
