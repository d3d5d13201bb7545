"""How long `registry add` takes with the general copy head (nothing trained per registry), per stage.

    artlens registry general-head                     # once per machine (the head is built, not shipped)
    python benchmarks/copyright_registry_speed.py [--works 1000] [--base 10000] [--add 100] [--head general]

1. A new registry of ``--works`` paintings (end to end: catalogue, decode, backbone features, content
   index, descriptor, calibration).
2. A registry of ``--base`` paintings, then ``--add`` more added to it: the time of that addition only.

Paintings: wikiart_styles, louvre_genre, bob_ross and kohlerryan_artists, then CIFAR-10 photos to
reach 10,000 (all distinct real images, copied into temporary folders, so every run starts cold: no
feature is cached). Every stage's time is printed and written: ingest (catalogue, MD5), features
(decode + backbone, content and copy taps in one pass), content index, and the robust detector's own
stages (encode the works with the head, the calibration sample's edited views, calibration, the
distractors' floor). Progress bars on stderr show the time left. Targets (issue 20, 2 cores): 1,000
works <= 3 min, +100 to 10,000 <= 1 min. Writes ``results/copyright_registry_speed.json``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import DATA, print_table, write_result  # noqa: E402

from artlens.copyright.registry import CopyrightRegistry  # noqa: E402
from artlens.progress import Reporter  # noqa: E402

SETS = ("wikiart_styles", "louvre_genre", "bob_ross", "kohlerryan_artists", "cifar10_jpg")


def images(n: int) -> list[Path]:
    out: list[Path] = []
    for name in SETS:
        labels = DATA / name / "labels.csv"
        if not labels.exists():
            continue
        with open(labels, newline="") as fh:
            out += [DATA / name / r["path"] for r in csv.DictReader(fh)]
        if len(out) >= n:
            break
    if len(out) < n:
        raise SystemExit(f"only {len(out)} images under {DATA}; fewer --works/--base")
    return out[:n]


def folder_of(paths: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i, p in enumerate(paths):
        shutil.copy(p, folder / f"{i:05d}{p.suffix}")
    return folder


DETECTOR_STAGES = ("encode_s", "calibration_views_s", "distractor_floor_s")


def timed_add(registry_path: Path, folder: Path, owner: str, head: str) -> dict:
    started = time.perf_counter()
    registry = CopyrightRegistry.open(registry_path, create=True, changes={"robust__head": head})
    summary = registry.add(folder, owner=owner, reporter=Reporter())
    threshold = registry.detector("robust").threshold
    registry.close()
    seconds = time.perf_counter() - started
    robust = summary.get("trained", {}).get("robust", {})
    timings = dict(summary["timings"])
    detector = robust.get("timings") or {k: timings.pop(k) for k in DETECTOR_STAGES if k in timings}
    return {"seconds": round(seconds, 1), "works": summary["works"], "timings": timings,
            "detector_timings": detector, "threshold": threshold, "trained": bool(robust)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--works", type=int, default=1000)
    ap.add_argument("--base", type=int, default=10000, help="registry size before the addition (0: skip part 2)")
    ap.add_argument("--add", type=int, default=100)
    ap.add_argument("--head", default="general", choices=["general", "registry"],
                    help="general: encode and calibrate only (the fast path timed by the targets); registry: "
                         "train a head on the registry's works (12 edited views per work, much slower)")
    args = ap.parse_args(argv)
    rows, payload = [], {"works": args.works, "base": args.base, "add": args.add, "head": args.head,
                         "load_average_at_start": list(os.getloadavg())}
    pool = images(max(args.works, args.base + args.add))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.works:
            new = timed_add(tmp / "reg-new", folder_of(pool[: args.works], tmp / "new"), "Owner", args.head)
            payload["new_registry"] = new
            rows.append({"case": f"new registry of {args.works} works", "seconds": new["seconds"],
                         "target s": 180 if args.works == 1000 else None, **new["timings"], **new["detector_timings"]})
        if args.base:
            base = timed_add(tmp / "reg-big", folder_of(pool[: args.base], tmp / "base"), "Base", args.head)
            more = timed_add(tmp / "reg-big", folder_of(pool[args.base : args.base + args.add], tmp / "more"), "More",
                             args.head)
            payload["base_registry"], payload["addition"] = base, more
            rows.append({"case": f"registry of {args.base} works", "seconds": base["seconds"], **base["timings"],
                         **base["detector_timings"]})
            rows.append({"case": f"+{args.add} works to {args.base}", "seconds": more["seconds"],
                         "target s": 60 if (args.base, args.add) == (10000, 100) else None, **more["timings"],
                         **more["detector_timings"]})
    payload["load_average_at_end"] = list(os.getloadavg())
    columns = ["case", "seconds", "target s", "ingest_s", "features_s", "content_index_s", "detectors_s",
               *DETECTOR_STAGES, "total_s"]
    print_table(rows, columns)
    write_result("copyright_registry_speed", payload)
    return payload


if __name__ == "__main__":
    main()
