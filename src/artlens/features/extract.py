"""Batched feature extraction: decode once, run each backbone once per batch, feed every extractor,
and cache what was computed. Used for collections (resumable, with a progress bar) and for queries."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.utils.data
from PIL import Image

from artlens.devices import extraction_batch_size, on_gpu
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


def encode_images(images: Sequence[Image.Image], extractors: Sequence[ImageExtractor],
                  device: str = "cpu") -> dict[str, np.ndarray]:
    """Vectors of each extractor for a batch of decoded (already cropped) RGB images; the backbones
    run on ``device`` (a resolved torch device name)."""
    out: dict[str, np.ndarray] = {}
    by_backbone: dict[str | None, list[ImageExtractor]] = {}
    for ex in extractors:
        by_backbone.setdefault(ex.backbone, []).append(ex)
    for backbone_name, group in by_backbone.items():
        taps = {}
        if backbone_name is not None:
            layers = sorted({t for ex in group for t in ex.taps})
            taps = get_backbone(backbone_name, device).taps(images, layers)
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


@dataclass(frozen=True)
class ImageJob:
    """How images are turned into vectors: the same wherever a batch runs (here or on a Ray worker)."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    crop: bool = True
    device: str = "cpu"  # a resolved torch device name


# A batch of work: [(md5, path)] and the extractors whose vectors some of its images lack.
WorkBatch = tuple[list[tuple[str, str]], list[str]]


@dataclass
class EncodedBatch:
    """What one batch gave: the vectors of the images that decoded (rows in ``keys`` order) and
    (md5, reason) for those that did not."""

    size: int
    keys: list[str]
    vectors: dict[str, np.ndarray]
    failed: list[tuple[str, str]]


Decoded = tuple[str, Image.Image | None, str | None]  # (md5, image or None, why not)


def decode_item(item: tuple[str, str], job: ImageJob) -> Decoded:
    md5, path = item
    try:
        return md5, prepare_image(path, job.max_pixels, job.crop), None
    except ImageDecodeError as exc:
        return md5, None, f"{path}: {exc.message.removeprefix(f'{path}: ')}"


def encode_decoded(decoded: Sequence[Decoded], extractor_names: Sequence[str], job: ImageJob) -> EncodedBatch:
    """The vectors of ``extractor_names`` for a decoded batch."""
    good = [(md5, im) for md5, im, _ in decoded if im is not None]
    failed = [(md5, err) for md5, im, err in decoded if err is not None]
    vectors = {}
    if good and extractor_names:
        vectors = encode_images([im for _, im in good], [create_extractor(n) for n in extractor_names], job.device)
    return EncodedBatch(len(decoded), [md5 for md5, _ in good], vectors, failed)


def encode_batch(batch: WorkBatch, job: ImageJob) -> EncodedBatch:
    """Decode and encode one batch of work in this process (what a Ray worker runs)."""
    items, names = batch
    return encode_decoded([decode_item(item, job) for item in items], names, job)


class _DecodedBatches(torch.utils.data.Dataset):
    """Batch ``i`` of the work, decoded (in a DataLoader worker process)."""

    def __init__(self, work: Sequence[WorkBatch], job: ImageJob):
        self.work, self.job = work, job

    def __len__(self) -> int:
        return len(self.work)

    def __getitem__(self, i: int) -> list[Decoded]:
        return [decode_item(item, self.job) for item in self.work[i][0]]


def _unbatched(batch):
    return batch


def run_local(work: Sequence[WorkBatch], job: ImageJob, workers: int = 0) -> Iterator[EncodedBatch]:
    """Encode the work in this process, in order. ``workers`` = 0: two threads decode the next batch
    while the model runs on this one (the CPU's way); more: that many DataLoader processes decode
    ahead, which keeps a GPU busy."""
    if workers > 0:
        loader = torch.utils.data.DataLoader(_DecodedBatches(work, job), batch_size=None, num_workers=workers,
                                             collate_fn=_unbatched, prefetch_factor=2, persistent_workers=False)
        for (_, names), decoded in zip(work, loader):
            yield encode_decoded(decoded, names, job)
        return
    with ThreadPoolExecutor(max_workers=2) as pool:
        decoded_next = pool.map(lambda item: decode_item(item, job), work[0][0]) if work else None
        for b, (_, names) in enumerate(work):
            decoded = list(decoded_next)
            if b + 1 < len(work):  # decode the next batch while this one runs through the model
                decoded_next = pool.map(lambda item: decode_item(item, job), work[b + 1][0])
            yield encode_decoded(decoded, names, job)


# Runs the work somewhere (here, or on a cluster) and yields each batch's outcome as it is done,
# in any order.
BatchRunner = Callable[[Sequence[WorkBatch], ImageJob], Iterable[EncodedBatch]]


def decode_workers(device: str) -> int:
    """DataLoader processes that decode ahead of the model: none on the CPU (they would take its
    cores), up to 8 on a GPU."""
    return min(8, max(1, (os.cpu_count() or 2) - 1)) if on_gpu(device) else 0


def extract_images(
    items: Sequence[tuple[str, str]],
    extractor_names: Sequence[str],
    cache: FeatureCache,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    crop: bool = True,
    reporter: Reporter = QUIET,
    report: ExtractionReport | None = None,
    device: str = "cpu",
    runner: BatchRunner | None = None,
    workers: int | None = None,
) -> ExtractionReport:
    """Compute and cache image features for ``items`` = [(md5, path)], only what is missing.

    Each batch's vectors commit to the cache as the batch comes back, so an interrupted run keeps
    what was done and a rerun computes the rest. ``device``: a resolved torch device name (the
    batch grows on a GPU); ``runner``: where batches run (default: this process; see
    ``artlens.features.distributed`` for a Ray cluster); ``workers``: decoding processes of a local
    run (default: none on the CPU, several on a GPU)."""
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
    size = extraction_batch_size(device, batch_size)
    work: list[WorkBatch] = []
    for i in range(0, len(todo), size):
        chunk = todo[i : i + size]
        work.append((chunk, [ex.name for ex in extractors if any(md5 in missing_by[ex.name] for md5, _ in chunk)]))
    job = ImageJob(max_pixels, crop, device)
    if runner is None:
        n_workers = decode_workers(device) if workers is None else workers
        def runner(w, j):
            return run_local(w, j, n_workers)
    by_name = {ex.name: ex for ex in extractors}
    start = time.perf_counter()
    bar = reporter.bar(total=len(todo), desc="features", unit="img")
    for done in runner(work, job):
        report.failed += done.failed
        for name, vectors in done.vectors.items():
            ex = by_name[name]
            rows = [i for i, md5 in enumerate(done.keys) if md5 in missing_by[name]]
            if rows:
                cache.put(ex.id, [done.keys[i] for i in rows], vectors[rows], ex.store_dtype)
                report.computed[name] = report.computed.get(name, 0) + len(rows)
        bar.update(done.size)
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
    device: str = "cpu",
) -> ExtractionReport:
    """Compute and cache text features for distinct ``texts`` not cached yet (keyed by text hash),
    the encoders running on ``device`` (a resolved torch device name)."""
    report = report or ExtractionReport()
    unique = {text_key(t): t for t in texts}
    for ex in (create_extractor(n) for n in extractor_names):
        if not isinstance(ex, TextExtractor):
            continue
        ex.use_device(device)
        cache.register(ex.id, ex.dim, ex.describe())
        have = cache.keys(ex.id)
        todo = [(k, t) for k, t in unique.items() if k not in have]
        for i in reporter.bar(range(0, len(todo), batch_size), desc=f"text ({ex.name})"):
            chunk = todo[i : i + batch_size]
            cache.put(ex.id, [k for k, _ in chunk], ex.encode_texts([t for _, t in chunk]))
            report.computed[ex.name] = report.computed.get(ex.name, 0) + len(chunk)
    return report
