"""Batched feature extraction: decode once, run each backbone once per batch, feed every extractor,
and cache what was computed. Used for collections (resumable, with a progress bar) and for queries."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from artlens.errors import ImageDecodeError
from artlens.features import ImageExtractor, TextExtractor, create_extractor
from artlens.features.backbone import get_backbone
from artlens.features.cache import FeatureCache
from artlens.imaging import DEFAULT_MAX_PIXELS, crop_letterbox, load_image
from artlens.progress import QUIET, Reporter


def artwork_text(metadata: Mapping[str, str], columns: Sequence[str]) -> str | None:
    """The text a text extractor reads for an artwork: its text columns joined, or None."""
    parts = [metadata[c].strip() for c in columns if metadata.get(c, "").strip()]
    return ". ".join(parts) if parts else None


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def encode_images(images: Sequence[Image.Image], extractors: Sequence[ImageExtractor]) -> dict[str, np.ndarray]:
    """Vectors of each extractor for a batch of decoded (already cropped) RGB images."""
    out: dict[str, np.ndarray] = {}
    by_backbone: dict[str | None, list[ImageExtractor]] = {}
    for ex in extractors:
        by_backbone.setdefault(ex.backbone, []).append(ex)
    for backbone_name, group in by_backbone.items():
        taps = {}
        if backbone_name is not None:
            layers = sorted({t for ex in group for t in ex.taps})
            taps = get_backbone(backbone_name).taps(images, layers)
        for ex in group:
            out[ex.name] = ex.from_taps(taps, images)
    return out


def prepare_image(source, max_pixels: int, crop: bool = True) -> Image.Image:
    image = load_image(source, max_pixels=max_pixels)
    return crop_letterbox(image) if crop else image


@dataclass
class ExtractionReport:
    computed: dict[str, int] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0


def extract_images(
    items: Sequence[tuple[str, str]],
    extractor_names: Sequence[str],
    cache: FeatureCache,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    crop: bool = True,
    reporter: Reporter = QUIET,
    report: ExtractionReport | None = None,
) -> ExtractionReport:
    """Compute and cache image features for ``items`` = [(md5, path)], only what is missing."""
    report = report or ExtractionReport()
    extractors = [e for e in (create_extractor(n) for n in extractor_names) if isinstance(e, ImageExtractor)]
    if not extractors:
        return report
    missing_by = {ex.name: set() for ex in extractors}
    for ex in extractors:
        cache.register(ex.id, ex.dim, ex.describe())
        have = cache.keys(ex.id)
        missing_by[ex.name] = {md5 for md5, _ in items if md5 not in have}
    todo = [(md5, path) for md5, path in dict(items).items() if any(md5 in m for m in missing_by.values())]
    start = time.perf_counter()
    bar = reporter.bar(total=len(todo), desc="features", unit="img")

    def decode(item):
        md5, path = item
        try:
            return md5, prepare_image(path, max_pixels, crop), None
        except ImageDecodeError as exc:
            return md5, None, f"{path}: {exc.message.removeprefix(f'{path}: ')}"

    with ThreadPoolExecutor(max_workers=2) as pool:
        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        decoded_next = pool.map(decode, batches[0]) if batches else None
        for b, batch in enumerate(batches):
            decoded = list(decoded_next)
            if b + 1 < len(batches):  # decode the next batch while this one runs through the model
                decoded_next = pool.map(decode, batches[b + 1])
            good = [(md5, im) for md5, im, err in decoded if im is not None]
            report.failed += [(md5, err) for md5, im, err in decoded if err is not None]
            if good:
                need = [ex for ex in extractors if any(md5 in missing_by[ex.name] for md5, _ in good)]
                vectors = encode_images([im for _, im in good], need)
                for ex in need:
                    rows = [i for i, (md5, _) in enumerate(good) if md5 in missing_by[ex.name]]
                    cache.put(ex.id, [good[i][0] for i in rows], vectors[ex.name][rows], ex.store_dtype)
                    report.computed[ex.name] = report.computed.get(ex.name, 0) + len(rows)
            bar.update(len(batch))
    bar.close()
    report.seconds += time.perf_counter() - start
    return report


def extract_texts(
    texts: Sequence[str],
    extractor_names: Sequence[str],
    cache: FeatureCache,
    batch_size: int = 64,
    reporter: Reporter = QUIET,
    report: ExtractionReport | None = None,
) -> ExtractionReport:
    """Compute and cache text features for distinct ``texts`` not cached yet (keyed by text hash)."""
    report = report or ExtractionReport()
    unique = {text_key(t): t for t in texts}
    for ex in (create_extractor(n) for n in extractor_names):
        if not isinstance(ex, TextExtractor):
            continue
        cache.register(ex.id, ex.dim, ex.describe())
        have = cache.keys(ex.id)
        todo = [(k, t) for k, t in unique.items() if k not in have]
        for i in reporter.bar(range(0, len(todo), batch_size), desc=f"text ({ex.name})"):
            chunk = todo[i : i + batch_size]
            cache.put(ex.id, [k for k, _ in chunk], ex.encode_texts([t for _, t in chunk]))
            report.computed[ex.name] = report.computed.get(ex.name, 0) + len(chunk)
    return report
