"""Crash campaign: kill -9 an artlens writer at every write boundary and check what it leaves.

Scenarios (each starts from the clean result of the one before): a first ingest, an incremental
ingest that adds, changes and removes works (and changes a label), a first training run (head +
learned index), and a second one that replaces them. For each, the program lists the write
boundaries a clean run passes (``ARTLENS_CRASH_AT=list``: catalog and feature batches, every staged
artifact, the commit, each rename, the purge, the cleanup), then for every boundary (or a sample):

1. copies the scenario's starting collection and runs the command with ``ARTLENS_CRASH_AT=NAME#N``,
   so that the process kills itself with SIGKILL there, as a power cut would;
2. checks that the collection opens (``artlens stats --json``) and is exactly the state before the
   command or the state after a clean run: the same catalog, indexed aspects, head, and top-10 of
   every artwork by the default mix and by each aspect alone;
3. runs the command again and checks that the result equals the clean run's, with no temporary
   file or folder left behind.

The collections use the colour histogram only (two aspects over it, one with PCA, and a head on
it), so that a run is a few seconds; ``--default-extractors`` uses the default neural extractors.

    python benchmarks/crash_campaign.py               # every boundary of every scenario
    python benchmarks/crash_campaign.py --sample 3    # 3 boundaries per scenario, spread over the run

Prints a table per scenario and writes results/crash_campaign.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, print_table, write_result
from PIL import Image, ImageDraw

from artlens.collection import Collection
from artlens.config import AspectConfig, CollectionConfig
from artlens.errors import ArtlensError
from artlens.search import SearchEngine

KINDS = ("stripes", "dots", "rings")
CHEAP = CollectionConfig(
    aspects={"colour": AspectConfig("colour-hist"), "style": AspectConfig("colour-hist", pca_dims=8)},
    weights={"colour": 0.5, "style": 0.5}, text_columns=("title",))
_TEMPORARY = re.compile(r"^\.+[^/]*\.(?:new|tmp)-")


def draw(kind: str, seed: int, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
    pen = ImageDraw.Draw(img)
    colour = tuple(int(v) for v in rng.integers(0, 255, 3))
    if kind == "stripes":
        for x in range(0, size, 6):
            pen.rectangle([x, 0, x + 2, size], fill=colour)
    elif kind == "dots":
        for _ in range(60):
            x, y = rng.integers(0, size, 2)
            pen.ellipse([x, y, x + 4, y + 4], fill=colour)
    else:
        for r in range(size, 0, -8):
            pen.ellipse([size / 2 - r / 2, size / 2 - r / 2, size / 2 + r / 2, size / 2 + r / 2], outline=colour, width=2)
    return img


def write_folder(folder: Path, works: dict[str, tuple[str, int]]) -> None:
    """``works``: file name -> (kind, seed). Writes the images and labels.csv (title, style)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (kind, seed) in works.items():
        draw(kind, seed).save(folder / name)
    with open(folder / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "title", "style"])
        for name, (kind, seed) in sorted(works.items()):
            writer.writerow([name, f"{kind} {seed}", kind])


def artlens(args: list[str], fault: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("ARTLENS_CRASH_AT", None)
    if fault:
        env["ARTLENS_CRASH_AT"] = fault
    return subprocess.run([sys.executable, "-m", "artlens", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def fingerprint(root: Path) -> dict:
    """What a reader sees: catalog, aspects, head, and the top-10 of every artwork (as MD5s)."""
    coll = Collection.open(root)
    try:
        engine = SearchEngine(coll)
        md5 = coll.catalog.md5s()
        arts = coll.catalog.get_many(sorted(md5))
        aspects = engine.aspects
        top: dict[str, list] = {}
        for i in sorted(md5):
            for aspect in [None, *aspects]:
                try:
                    result = engine.search(artwork_id=i, k=10, aspect=aspect)
                    top[f"{md5[i]}/{aspect or 'mix'}"] = [(md5.get(h.id), sorted(h.aspects)) for h in result.hits]
                except ArtlensError as exc:
                    top[f"{md5[i]}/{aspect or 'mix'}"] = f"error: {exc.message}"
        head = coll.head()
        return {"catalog": sorted((a.md5, json.dumps(a.metadata, sort_keys=True)) for a in arts.values()),
                "aspects": aspects, "head": head.id if head is not None else None, "top10": top}
    finally:
        coll.close()


def temporaries(root: Path) -> list[str]:
    """Staged or temporary entries left in the collection (kept replaced versions are allowed)."""
    found = []
    for folder in (root, root / "index", root / "heads"):
        if folder.is_dir():
            found += [str(p.relative_to(root)) for p in folder.iterdir() if _TEMPORARY.match(p.name)]
    return found


def boundaries(start: Path, command: list[str], work: Path) -> list[str]:
    trial = work / "enumerate"
    shutil.rmtree(trial, ignore_errors=True)
    shutil.copytree(start, trial)
    run = artlens([*command, "-c", str(trial)], fault="list")
    if run.returncode != 0:
        raise SystemExit(f"the clean run of {' '.join(command)} failed:\n{run.stderr[-2000:]}")
    shutil.rmtree(trial)
    return [line.split(" ", 1)[1] for line in run.stderr.splitlines() if line.startswith("artlens-boundary ")]


def trial(start: Path, command: list[str], point: str, before: dict, after: dict, work: Path) -> dict:
    folder = work / "trial"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(start, folder)
    t0 = time.perf_counter()
    crashed = artlens([*command, "-c", str(folder)], fault=point)
    row = {"boundary": point, "killed": crashed.returncode == -9, "opens": False, "state": "", "rerun": False,
           "clean": False, "failure": ""}
    if not row["killed"]:
        row["failure"] = f"not killed (exit {crashed.returncode}): {crashed.stderr.strip()[-300:]}"
        return row
    stats = artlens(["stats", "-c", str(folder), "--json"])
    row["opens"] = stats.returncode == 0
    if not row["opens"]:
        row["failure"] = f"stats failed: {stats.stderr.strip()[-300:]}"
        return row
    seen = fingerprint(folder)
    row["state"] = "before" if seen == before else "after" if seen == after else "MIXED"
    if row["state"] == "MIXED":
        row["failure"] = "the collection is neither the state before nor the state after: " + _difference(seen, before)
        return row
    rerun = artlens([*command, "-c", str(folder)])
    row["rerun"] = rerun.returncode == 0
    if not row["rerun"]:
        row["failure"] = f"rerun failed: {rerun.stderr.strip()[-300:]}"
        return row
    left = temporaries(folder)
    row["clean"] = fingerprint(folder) == after and not left
    if not row["clean"]:
        row["failure"] = f"after the rerun: temporaries {left}" if left else \
            "after the rerun the collection differs from a clean run: " + _difference(fingerprint(folder), after)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def _difference(a: dict, b: dict) -> str:
    keys = [k for k in a if a[k] != b.get(k)]
    if "top10" in keys:
        first = next(k for k in a["top10"] if a["top10"][k] != b["top10"].get(k))
        return f"{keys}; e.g. {first}: {a['top10'][first]} vs {b['top10'].get(first)}"
    return str(keys)


def scenarios(work: Path, config: CollectionConfig):
    """(name, starting collection, command) in order; each start is the clean result of the one before."""
    pictures = work / "pictures"
    works = {f"{kind}_{i}.png": (kind, 10 * k + i) for k, kind in enumerate(KINDS) for i in range(5)}
    write_folder(pictures, works)
    empty = work / "start-first-ingest"
    Collection.open(empty, create=True, config=config).close()
    ingest = ["ingest", str(pictures), "--labels", str(pictures / "labels.csv"), "-q"]
    yield "first ingest", empty, ingest

    # the folder changes: 4 new works, one changed, one removed, one label changed
    works.update({f"new_{i}.png": (KINDS[i % 3], 100 + i) for i in range(4)})
    works["dots_1.png"] = ("rings", 77)
    del works["stripes_0.png"]
    (pictures / "stripes_0.png").unlink()
    write_folder(pictures, works)
    yield "incremental ingest", None, ingest
    train = ["train", "-l", "style", "--features", "colour", "--epochs", "4", "--test-fraction", "0", "-q"]
    yield "first training", None, train
    yield "training again (head replaced)", None, [*train, "--seed", "1"]


def run(work: Path, sample: int | None = None, default_extractors: bool = False, only: list[str] | None = None,
        points: list[str] | None = None, say=print) -> dict:
    """The campaign in ``work``: every scenario (or those named in ``only``), killed at every boundary
    (``sample``: that many, spread over the run; ``points``: those named). Returns {"scenarios":
    [...], "failures": n, "kill_points": n}."""
    work.mkdir(parents=True, exist_ok=True)
    config = CollectionConfig() if default_extractors else CHEAP
    out: list[dict] = []
    previous_clean: Path | None = None
    for n, (name, start, command) in enumerate(scenarios(work, config)):
        start = start or previous_clean
        clean = work / f"clean-{n}"
        shutil.rmtree(clean, ignore_errors=True)
        shutil.copytree(start, clean)
        done = artlens([*command, "-c", str(clean)])
        if done.returncode != 0:
            raise SystemExit(f"{name}: the clean run failed:\n{done.stderr[-2000:]}")
        if only and name not in only:
            previous_clean = clean
            continue
        before, after = fingerprint(start), fingerprint(clean)
        passed = boundaries(start, command, work)
        chosen = passed if not sample or sample >= len(passed) else \
            [passed[int(i)] for i in np.linspace(0, len(passed) - 1, sample).round()]
        if points:
            chosen = [p for p in passed if p in points]
        say(f"\n{name}: {' '.join(command)}: {len(passed)} write boundaries, killing at {len(chosen)}")
        rows = []
        for point in chosen:
            rows.append(trial(start, command, point, before, after, work))
            say(f"  {point}: {rows[-1]['state'] or '-'} {'ok' if not rows[-1]['failure'] else 'FAILED: ' + rows[-1]['failure']}")
        print_table(rows, ["boundary", "killed", "opens", "state", "rerun", "clean", "failure"])
        out.append({"scenario": name, "command": command, "boundaries": passed, "trials": rows,
                    "failures": sum(bool(r["failure"]) for r in rows)})
        previous_clean = clean
    return {"scenarios": out, "kill_points": sum(len(s["trials"]) for s in out),
            "failures": sum(s["failures"] for s in out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=None, help="kill at this many boundaries per scenario (default: all)")
    parser.add_argument("--default-extractors", action="store_true", help="the default neural extractors, not the colour histogram")
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="artlens-crash-"))
    t0 = time.perf_counter()
    try:
        result = run(work, args.sample, args.default_extractors)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    summary = [{"scenario": s["scenario"], "boundaries": len(s["boundaries"]), "killed at": len(s["trials"]),
                "before": sum(r["state"] == "before" for r in s["trials"]),
                "after": sum(r["state"] == "after" for r in s["trials"]), "failures": s["failures"]}
               for s in result["scenarios"]]
    print()
    print_table(summary, ["scenario", "boundaries", "killed at", "before", "after", "failures"])
    print(f"\n{result['kill_points']} kill points, {result['failures']} failures, {time.perf_counter() - t0:.0f} s")
    write_result("crash_campaign", {"sample": args.sample, "default_extractors": args.default_extractors,
                                    "summary": summary, **result, "seconds": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
