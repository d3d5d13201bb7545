"""Unregistered paintings by the same hand: a small registry of Bob Ross paintings checked against the
other Bob Ross paintings, unedited.

    python benchmarks/copyright_same_hand.py [--works 60] [--draws 3] [--folds-from 100]

Each draw registers ``--works`` Bob Ross paintings (a seeded sample of the 403), trains the robust
head and calibrates its threshold exactly as ``artlens registry add`` does, then checks every other Bob
Ross painting as it is (the hardest negatives: same painter, same subjects, same palette) and the
benchmark's edited copies of the registered works (``copyright_data.py``, 4 per work). Two
calibrations: one split (the 10 % of works held out once, the first version) and the current one
(splits repeated until about ``calibration_works`` works were held out, scores pooled). Uses the
cached features of ``results/cache/copyright/registry-bob_ross`` (run ``copyright.py`` once first);
writes ``results/copyright_same_hand.json``.
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

from _common import print_table, write_result  # noqa: E402
from copyright_data import CACHE, query_features, query_set, registry_set  # noqa: E402

from artlens.copyright.registry import CopyrightRegistry  # noqa: E402
from artlens.copyright.robust import train_calibrated_head  # noqa: E402
from artlens.copyright.taps import COPY_TAPS  # noqa: E402
from artlens.copyright.views import view_keys  # noqa: E402
from artlens.metrics.copy_detection import recall_at_precision  # noqa: E402


def cached_bob_ross(seed: int):
    """Per Bob Ross painting (in the sorted file order of the benchmark): original taps, training views,
    further edits; and the benchmark's edited copies (taps, source position)."""
    registry = CopyrightRegistry.open(CACHE / "registry-bob_ross")
    cfg = registry.config.robust
    _, works, _ = registry_set("bob_ross")
    files = registry.collection.catalog.file_states()
    md5_of = registry.collection.catalog.md5s()
    md5s = [md5_of[files[str(Path(w).resolve())].artwork_id] for w in works]
    taps = registry._cached(COPY_TAPS, md5s)
    edits = registry._cached(COPY_TAPS, [k for m in md5s for k in view_keys(m, cfg.views + 1, cfg.seed)])
    edits = edits.reshape(len(md5s), cfg.views + 1, -1)
    views = np.concatenate([taps[:, None, :], edits[:, : cfg.views]], axis=1).astype(np.float16)
    queries = query_set("bob_ross", 4, seed)
    feats = query_features("bob_ross", queries, seed)
    copies = np.array([q.is_copy for q in queries])
    source = np.array([q.work_id if q.is_copy else -1 for q in queries])
    query_taps = feats["taps"][copies].astype(np.float32)
    return registry.config.robust, taps, views, edits[:, cfg.views :], query_taps, source[copies]


def run_draw(cfg, taps, views, extra, query_taps, query_source, n_works: int, draw: int) -> dict:
    perm = np.random.default_rng(1000 + draw).permutation(len(taps))
    registered, others = np.sort(perm[:n_works]), np.sort(perm[n_works:])
    started = time.perf_counter()
    head, calibration = train_calibrated_head(views[registered], extra[registered], cfg)
    seconds = time.perf_counter() - started
    index = head.encode(taps[registered])
    other_best = (head.encode(taps[others]) @ index.T).max(1)
    mine = np.isin(query_source, registered)
    sims = head.encode(query_taps[mine]) @ index.T
    copy_best, copy_work = sims.max(1), registered[sims.argmax(1)]
    correct = copy_work == query_source[mine]
    t = calibration.threshold
    scores = np.concatenate([copy_best, other_best])
    hits = np.concatenate([correct, np.zeros(len(other_best), bool)])
    r99, _ = recall_at_precision(scores, hits, int(mine.sum()), 0.99)
    return {"draw": draw, "works": n_works, "folds": calibration.folds, "heldout_works": calibration.heldout_works,
            "threshold": t, "unregistered_same_hand": len(others),
            "false_positives_same_hand_unedited": int((other_best >= t).sum()),
            "highest_same_hand_score": float(other_best.max()), "edited_copies": int(mine.sum()),
            "recall_at_threshold": float((correct & (copy_best >= t)).mean()), "recall@p99": r99,
            "train_seconds": round(seconds, 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--works", type=int, nargs="+", default=[60], help="registered Bob Ross paintings per draw")
    ap.add_argument("--draws", type=int, default=3, help="seeded samples of registered works")
    ap.add_argument("--folds-from", type=int, default=None,
                    help="calibration_works of the current calibration (default: the config's)")
    ap.add_argument("--seed", type=int, default=2024, help="seed of the benchmark's query edits")
    args = ap.parse_args(argv)
    cfg, taps, views, extra, query_taps, query_source = cached_bob_ross(args.seed)
    current = cfg if args.folds_from is None else cfg.__class__(**{**cfg.__dict__, "calibration_works": args.folds_from})
    one_split = cfg.__class__(**{**cfg.__dict__, "calibration_works": 0})
    rows = []
    for n_works in args.works:
        for draw in range(args.draws):
            for name, config in (("one split", one_split), ("folds", current)):
                row = {"calibration": name, **run_draw(config, taps, views, extra, query_taps, query_source,
                                                       n_works, draw)}
                rows.append(row)
                print(f"{n_works} works, draw {draw}, {name}: threshold {row['threshold']:.3f}, "
                      f"FP {row['false_positives_same_hand_unedited']}/{row['unregistered_same_hand']}, "
                      f"recall@op {row['recall_at_threshold']:.3f} ({row['train_seconds']} s)", flush=True)
    print_table(rows, ["works", "draw", "calibration", "folds", "threshold", "false_positives_same_hand_unedited",
                       "unregistered_same_hand", "highest_same_hand_score", "recall_at_threshold", "recall@p99"])
    result = {"config": {**cfg.__dict__}, "rows": rows}
    write_result("copyright_same_hand", result)
    return result


if __name__ == "__main__":
    main()
