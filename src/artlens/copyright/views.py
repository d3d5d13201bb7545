"""Edited views of registered works for training the robust descriptor, computed once and cached.

View ``k`` of a work is a seeded edit of its (letterbox-cropped) image, seeded by the registry's seed,
the work's MD5 and ``k``; its pooled taps are stored in the collection's feature cache under the key
``MD5#edit-SEED-k``, so adding works computes only their views and retraining computes nothing.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from artlens.collection import Collection
from artlens.copyright.edits import random_edit, rng_for
from artlens.copyright.taps import COPY_TAPS
from artlens.errors import ImageDecodeError
from artlens.features import create_extractor
from artlens.features.extract import encode_images
from artlens.imaging import crop_letterbox, load_image
from artlens.progress import QUIET, Reporter


def view_keys(md5: str, n_views: int, seed: int) -> list[str]:
    return [view_key(md5, k, seed) for k in range(n_views)]


def view_key(md5: str, k: int, seed: int) -> str:
    """Feature-cache key of view ``k`` of a work."""
    return f"{md5}#edit-{seed}-{k}"


def render_views(path: str, md5: str, n_views: int | list[int], seed: int, max_pixels: int) -> list:
    """Edited views ``0 .. n_views - 1`` (or those numbered in a list) of one work, letterbox-cropped as a
    check would see them."""
    work = crop_letterbox(load_image(path, max_pixels=max_pixels))
    out = []
    for k in (range(n_views) if isinstance(n_views, int) else n_views):
        image, _ = random_edit(work, rng_for(seed, int(md5[:15], 16), k))
        out.append(crop_letterbox(image))
    return out


def compute_views(collection: Collection, md5s: list[str], n_views: int, seed: int, batch_works: int = 8,
                  reporter: Reporter = QUIET, device: str = "cpu") -> int:
    """Cache the pooled taps of ``n_views`` edited views of each work that lacks them; returns how many
    views were computed. Works whose file cannot be decoded any more are skipped. ``device``: where
    the backbone runs (a resolved torch device name)."""
    extractor = create_extractor(COPY_TAPS)
    collection.cache.register(extractor.id, extractor.dim, extractor.describe())
    have = collection.cache.keys(extractor.id)
    paths = {md5: path for _, md5, path in collection.catalog.iter_artworks()}
    missing = {m: [k for k, key in enumerate(view_keys(m, n_views, seed)) if key not in have] for m in md5s}
    todo = [m for m in md5s if missing[m]]  # more views asked for later: only the new ones are computed
    if not todo:
        return 0
    max_pixels = collection.config.max_pixels
    batches = [todo[i : i + batch_works] for i in range(0, len(todo), batch_works)]

    def render(batch):
        rendered = []
        for md5 in batch:
            try:
                rendered.append((md5, render_views(paths[md5], md5, missing[md5], seed, max_pixels)))
            except ImageDecodeError:
                continue
        return rendered

    bar = reporter.bar(total=sum(len(missing[m]) for m in todo), desc="edited views", unit="view")
    done = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(render, batches[0])
        for b in range(len(batches)):
            rendered = pending.result()
            if b + 1 < len(batches):
                pending = pool.submit(render, batches[b + 1])
            if not rendered:
                continue
            images = [image for _, views in rendered for image in views]
            vectors = encode_images(images, [extractor], device)[extractor.name]
            keys = [view_key(md5, k, seed) for md5, _ in rendered for k in missing[md5]]
            collection.cache.put(extractor.id, keys, np.asarray(vectors), extractor.store_dtype)
            done += len(keys)
            bar.update(len(keys))
    bar.close()
    reporter.step(f"  {done} edited views in {time.perf_counter() - started:.0f} s")
    return done
