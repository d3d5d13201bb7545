"""The copyright check: is this image a registered work (even edited), and what free works could be
used instead?

Stages, first hit wins: ``exact`` (the file's bytes are a registered file), then the chosen detector:
``descriptor`` (robust cosine >= its calibrated threshold) or the paper's ``hamming`` / ``cosine``
stages. Every result also lists the ``alternatives`` most similar in content from the free collection, and
names the registered work nearest to the image (``work_id``, ``work_path``, ``title``, ``score``) even
when the verdict is ``not-registered``: a near miss is visible to a reviewer.
With ``fast=True`` the robust detector scores only a Hamming shortlist of its works (``copyright.code_shortlist``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from artlens.collection import Collection
from artlens.copyright.cvae import thumbnail_extractor
from artlens.copyright.registry import (
    CONTENT_EXTRACTOR,
    LICENCE,
    OWNER,
    CopyrightRegistry,
)
from artlens.copyright.taps import COPY_TAPS, content_vectors
from artlens.errors import ArtlensError, CollectionError, ImageDecodeError
from artlens.features import create_extractor
from artlens.features.extract import encode_images
from artlens.imaging import IMAGE_SUFFIXES, crop_letterbox, load_image

REGISTERED, NOT_REGISTERED, ERROR = "registered", "not-registered", "error"


@dataclass
class Alternative:
    """A work of the free collection similar in content; ``title`` and ``artist`` as its metadata has them."""

    id: int
    path: str
    score: float
    owner: str | None
    licence: str | None
    title: str | None
    artist: str | None = None


@dataclass
class CheckResult:
    file: str
    verdict: str  # registered, not-registered, or error
    score: float | None = None  # best match score of the detector (cosine), even when not registered
    stage: str | None = None  # exact, descriptor, hamming or cosine; None when not registered
    detector: str | None = None
    search: str | None = None  # exact (every work scored) or fast (binary shortlist, then re-ranked)
    threshold: float | None = None
    work_id: int | None = None  # the matched work; when not registered, the nearest one (its score below the threshold)
    work_path: str | None = None
    owner: str | None = None
    licence: str | None = None
    title: str | None = None
    alternatives: list[Alternative] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        if d["score"] is not None:
            d["score"] = round(d["score"], 6)
        for a in d["alternatives"]:
            a["score"] = round(a["score"], 6)
        return d


def image_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to check: files as given, folders expanded to their image files (sorted, recursive)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
            if not found:
                raise ArtlensError(f"no image files under {p}", "give image files or folders that hold some")
            out += found
        else:
            out.append(p)
    return out


class CopyrightChecker:
    """Checks images against a registry with one of its trained detectors; ``free`` (optional) is the
    collection alternatives come from."""

    def __init__(self, registry: CopyrightRegistry, free: Collection | None = None, detector: str | None = None,
                 alternatives: int | None = None, fast: bool = False, shortlist: int | None = None):
        self.registry = registry
        self.free = free
        trained = registry.trained()
        if not len(registry):
            raise CollectionError(f"the registry {registry.root} holds no works",
                                  "register works with `artlens registry add DIR --owner NAME`")
        self.detector_name = detector or (trained[0] if trained else registry.config.detectors[0])
        if fast and self.detector_name != "robust":
            raise ArtlensError("the fast (binary shortlist) mode is a mode of the robust detector",
                               "drop --fast, or check with --detector robust")
        self.fast = fast
        self.shortlist = registry.config.robust.shortlist if shortlist is None else int(shortlist)
        self.detector = registry.detector(self.detector_name)  # fails with a hint when untrained
        self.k = registry.config.alternatives if alternatives is None else alternatives
        self._free_index = None
        if free is not None and self.k > 0:
            if "content" not in free.indexed_aspects():
                raise CollectionError(f"the free collection {free.root} has no content index",
                                      f"index it: artlens registry add DIR --owner NAME --licence CC0 --registry {free.root}")
            self._free_index = free.index("content")
            expected = create_extractor(CONTENT_EXTRACTOR).id
            if self._free_index.manifest.extractor_id != expected:
                raise CollectionError(
                    f"the free collection {free.root} was indexed with {self._free_index.manifest.extractor_id}, "
                    f"alternatives need {expected}", f"re-index it: artlens ingest DIR --collection {free.root} --reindex")
        self._md5s = {md5: i for i, md5 in registry.collection.catalog.md5s().items()}

    # -- checking -------------------------------------------------------------------------------
    def check_files(self, paths: Sequence[str | Path], batch_size: int = 16) -> list[CheckResult]:
        """One result per file, in order; undecodable files give ``verdict == "error"``."""
        results: list[CheckResult] = []
        for start in range(0, len(paths), batch_size):
            batch = [str(p) for p in paths[start : start + batch_size]]
            images, md5s, ok = [], [], []
            for path in batch:
                data = None
                try:
                    data = Path(path).read_bytes() if Path(path).is_file() else None
                    image = load_image(data if data is not None else path)
                except (ImageDecodeError, OSError) as exc:
                    message = exc.message if isinstance(exc, ImageDecodeError) else str(exc)
                    if data is not None:
                        message = message.replace("image bytes", path)
                    results.append(CheckResult(path, ERROR, error=message))
                    ok.append(False)
                    continue
                images.append(image)
                md5s.append(hashlib.md5(data).hexdigest())
                ok.append(True)
                results.append(None)  # filled below
            checked = iter(self.check_images(images, [p for p, good in zip(batch, ok) if good], md5s))
            results = [r if r is not None else next(checked) for r in results]
        return results

    def check_images(self, images: Sequence[Image.Image], names: Sequence[str],
                     md5s: Sequence[str | None] | None = None, fast: bool | None = None) -> list[CheckResult]:
        """Check decoded images (``names`` label the results; ``md5s`` of their files enable the exact stage).
        ``fast``: this call's search mode (default: the checker's)."""
        fast = self.fast if fast is None else bool(fast)
        if fast and self.detector_name != "robust":
            raise ArtlensError("the fast (binary shortlist) mode is a mode of the robust detector",
                               "check without fast, or with the robust detector")
        if not images:
            return []
        prepared = [crop_letterbox(image.convert("RGB")) for image in images]
        extractors = [create_extractor(COPY_TAPS)]
        if self.detector_name == "cvae":
            extractors.append(thumbnail_extractor(self.registry.config.cvae.image_size))
        features = encode_images(prepared, extractors)
        taps = features[COPY_TAPS]
        matches = self._match(features, fast)
        searched = "fast" if self.detector_name == "robust" and self.detector.uses_shortlist(fast, 1, self.shortlist) \
            else "exact"
        alternatives = self._alternatives(content_vectors(taps))
        results = []
        for i, name in enumerate(names):
            work_id, score, stage, registered = matches[i]
            exact = self._md5s.get(md5s[i]) if md5s is not None and md5s[i] else None
            if exact is not None:
                work_id, score, stage, registered = exact, 1.0, "exact", True
            result = CheckResult(str(name), REGISTERED if registered else NOT_REGISTERED, float(score),
                                 stage if registered else None, self.detector_name,
                                 searched, self._threshold(), alternatives=alternatives[i])
            if work_id is not None and int(work_id) >= 0:
                # a near miss is named too (work, path, title), so a reviewer sees how close it came;
                # owner and licence belong to a registered verdict only
                work = self.registry.work(int(work_id))
            else:
                work = None
            if work is not None:
                result.work_id, result.work_path = int(work_id), work.path
                result.title = work.metadata.get("title")
                if registered:
                    result.owner, result.licence = work.metadata.get(OWNER), work.metadata.get(LICENCE)
            results.append(result)
        return results

    def _threshold(self) -> float:
        if self.detector_name == "robust":
            return self.detector.threshold
        return self.detector.config.cosine_threshold

    def _match(self, features: dict[str, np.ndarray], fast: bool) -> list[tuple[int, float, str, bool]]:
        if self.detector_name == "robust":
            scores, ids = self.detector.search(self.detector.describe(features[COPY_TAPS]), 1, fast=fast,
                                               shortlist=self.shortlist)
            return [(int(i), float(s), "descriptor", bool(s >= self.detector.threshold and i >= 0))
                    for s, i in zip(scores[:, 0], ids[:, 0])]
        thumbs = thumbnail_extractor(self.registry.config.cvae.image_size)
        mu = self.detector.describe(thumbs.unflatten(features[thumbs.name]))
        return [(m.work_id, m.score, m.stage, m.registered) for m in self.detector.match(mu)]

    def _alternatives(self, content: np.ndarray) -> list[list[Alternative]]:
        if self._free_index is None or len(self._free_index) == 0:
            return [[] for _ in range(len(content))]
        scores, ids = self._free_index.search(self._free_index.project(content), self.k)
        catalog = self.free.catalog
        works = catalog.get_many(sorted({int(i) for i in ids.ravel() if i >= 0}))
        out = []
        for row_scores, row_ids in zip(scores, ids):
            row = []
            for s, i in zip(row_scores, row_ids):
                if i < 0 or int(i) not in works:
                    continue
                w = works[int(i)]
                row.append(Alternative(int(i), w.path, float(s), w.metadata.get(OWNER), w.metadata.get(LICENCE),
                                       w.metadata.get("title"), w.metadata.get("artist")))
            out.append(row)
        return out
