"""Evaluate a registry's detectors on seeded edited copies of its own works plus edited distractors.

Used by ``artlens eval copyright`` and ``benchmarks/copyright.py``. Every query goes through what a
check does (letterbox crop, one backbone pass); each method's top-1 prediction is scored with
:func:`~artlens.metrics.copy_detection.copy_detection_summary`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artlens.copyright.check import image_files
from artlens.copyright.cvae import thumbnail_extractor
from artlens.copyright.queries import (
    UNEDITED,
    EditedQuery,
    edited_queries,
    iter_rendered,
    sample_paths,
)
from artlens.copyright.registry import CONTENT_EXTRACTOR, CopyrightRegistry
from artlens.copyright.taps import COPY_TAPS, content_vectors
from artlens.errors import ArtlensError, CollectionError
from artlens.features import create_extractor
from artlens.features.extract import encode_images
from artlens.imaging import crop_letterbox
from artlens.metrics.copy_detection import (
    copy_detection_summary,
    curve_points,
    verdict_summary,
)
from artlens.progress import QUIET, Reporter
from artlens.vectors import l2_normalise


def registry_queries(registry: CopyrightRegistry, distractors: Sequence[str], per_work: int, seed: int
                     ) -> list[EditedQuery]:
    """``per_work`` edits of every registered work, and each distractor file edited once and as it is."""
    works = [(artwork_id, path) for artwork_id, _, path in registry.collection.catalog.iter_artworks()]
    if not works:
        raise CollectionError(f"the registry {registry.root} holds no works", "register works first")
    return edited_queries(works, distractors, per_work, seed)


def encode_queries(queries: Sequence[EditedQuery], seed: int, thumb_size: int | None = None,
                   reporter: Reporter = QUIET) -> dict[str, np.ndarray]:
    """Pooled taps (and CVAE thumbnails) of every rendered query, and the edit made."""
    extractors = [create_extractor(COPY_TAPS)]
    if thumb_size:
        extractors.append(thumbnail_extractor(thumb_size))
    parts: dict[str, list] = {e.name: [] for e in extractors}
    edits: list[str] = []
    started = time.perf_counter()
    with reporter.bar(total=len(queries), desc="queries", unit="query") as bar:
        for batch in iter_rendered(queries, seed):
            images = [crop_letterbox(image) for _, image, _ in batch]
            for name, vectors in encode_images(images, extractors).items():
                parts[name].append(vectors)
            edits += [e for _, _, e in batch]
            bar.update(len(batch))
    reporter.step(f"  {len(queries)} queries in {time.perf_counter() - started:.0f} s")
    out = {"taps": np.concatenate(parts[COPY_TAPS]).astype(np.float32), "edits": np.array(edits)}
    if thumb_size:
        thumbs = thumbnail_extractor(thumb_size)
        out["thumbs"] = thumbs.unflatten(np.concatenate(parts[thumbs.name]))
    return out


def query_truth(queries: Sequence[EditedQuery]) -> np.ndarray:
    """Registry id of each query's source, -1 for distractors."""
    return np.array([q.work_id if q.is_copy else -1 for q in queries], np.int64)


def score_method(scores, predicted, truth: np.ndarray, families: Sequence[str], threshold: float | None = None,
                 accepted=None, extra: dict | None = None) -> dict:
    """Metrics of one method from its top-1 prediction and score per query (see ``artlens.metrics.copy_detection``),
    with its precision-recall curve; ``accepted`` for a method that gives verdicts of its own."""
    is_copy = truth >= 0
    correct = (np.asarray(predicted) == truth) & is_copy
    summary = copy_detection_summary(scores, correct, is_copy, threshold, families)
    summary["pr_curve"] = curve_points(scores, correct, int(is_copy.sum()))
    if accepted is not None:
        summary.update(verdict_summary(accepted, correct, is_copy, families))
    if "false_positives_per_group" in summary:
        per_group = summary["false_positives_per_group"]
        summary["false_positives_on_unedited_distractors"] = per_group.get(UNEDITED, 0)
        summary["false_positives_on_edited_distractors"] = sum(v for k, v in per_group.items() if k != UNEDITED)
    summary.update(extra or {})
    return summary


def distractor_counts(queries: Sequence[EditedQuery]) -> dict[str, int]:
    """Distractor files, and how many distractor queries are edited and unedited."""
    others = [q for q in queries if not q.is_copy]
    unedited = sum(q.family == UNEDITED for q in others)
    return {"distractors": len({q.source for q in others}), "edited_distractors": len(others) - unedited,
            "unedited_distractors": unedited}


def evaluate_detectors(registry: CopyrightRegistry, queries: Sequence[EditedQuery], features: dict,
                       truth: np.ndarray | None = None, fast: bool = False) -> dict[str, dict]:
    """Metrics of every trained detector and of raw pooled content features, on encoded queries.

    ``truth``: registry id of each query's source (-1 for distractors); by default the queries'
    ``work_id``. ``fast`` adds ``robust-fast`` (binary shortlist, then float re-ranking) and its
    agreement with the exact search's verdicts.
    """
    if truth is None:
        truth = query_truth(queries)
    families = [q.family for q in queries]
    taps = features["taps"]
    out: dict[str, dict] = {}

    def record(method, scores, predicted, threshold=None, accepted=None, extra=None):
        out[method] = score_method(scores, predicted, truth, families, threshold, accepted, extra)

    trained = registry.trained()
    if "robust" in trained:
        robust = registry.detector("robust")
        descriptors = robust.describe(taps)
        scores, predicted = robust.search(descriptors, 1)
        record("robust", scores[:, 0], predicted[:, 0], threshold=robust.threshold,
               extra={"calibration": robust.info.get("calibration")})
        if fast:
            shortlist = registry.config.robust.shortlist
            fast_scores, fast_predicted = robust.search(descriptors, 1, fast=True, shortlist=shortlist)
            exact_verdict = np.where(scores[:, 0] >= robust.threshold, predicted[:, 0], -1)
            fast_verdict = np.where(fast_scores[:, 0] >= robust.threshold, fast_predicted[:, 0], -1)
            record("robust-fast", fast_scores[:, 0], fast_predicted[:, 0], threshold=robust.threshold,
                   extra={"shortlist": shortlist, "code_bits": robust.codes.bits if robust.codes else None,
                          "agreement_with_exact": float((exact_verdict == fast_verdict).mean())})
    ids, raw = registry.collection.raw_vectors(CONTENT_EXTRACTOR)
    sims = content_vectors(taps) @ l2_normalise(raw, axis=1).T
    best = sims.argmax(1)
    record("effnet-pooled", sims[np.arange(len(sims)), best], ids[best])
    if "cvae" in trained and "thumbs" in features:
        cvae = registry.detector("cvae")
        matches = cvae.match(cvae.describe(features["thumbs"]))
        registered = np.array([m.registered for m in matches])
        stages = [m.stage for m in matches if m.registered]
        # accepted matches rank above rejected ones, each by second-key cosine
        record("cvae-keys", np.array([m.score for m in matches]) + 2.0 * registered,
               np.array([m.work_id for m in matches]), accepted=registered,
               extra={"accepted_by_stage": {s: stages.count(s) for s in sorted(set(stages))},
                      "mean_hamming_candidates": float(np.mean([m.candidates for m in matches]))})
    return out


@dataclass(frozen=True)
class CopyrightEvalConfig:
    """What ``artlens eval copyright`` measures; every option has its one default here."""

    per_work: int = 2  # edited copies per registered work
    n_distractors: int = 1000  # unregistered images used at most, each queried as it is and edited once
    seed: int = 2024  # seed of the edits and of the distractor sample

    def __post_init__(self):
        for flag, value in (("--per-work", self.per_work), ("--n-distractors", self.n_distractors)):
            if value < 1:
                raise ArtlensError(f"{flag} must be at least 1 (got {value})",
                                   f"pass {flag} 1 or more; the defaults are --per-work 2 and --n-distractors 1000")


def evaluate_folder(registry: CopyrightRegistry, distractors: str | Path, config: CopyrightEvalConfig = CopyrightEvalConfig(),
                    reporter: Reporter = QUIET, fast: bool = False) -> dict:
    """:func:`evaluate_registry` with distractors sampled (seeded) from the images under a folder."""
    folder = Path(distractors)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise ArtlensError(f"the distractor folder {folder} {what}",
                           "give --distractors a folder of images that are not registered")
    if not len(registry):
        raise CollectionError(f"the registry {registry.root} holds no works",
                              "register works with `artlens registry add DIR --owner NAME`")
    pool = [str(p) for p in image_files([folder])]
    return evaluate_registry(registry, sample_paths(pool, config.n_distractors, config.seed), config.per_work,
                             config.seed, reporter, fast)


def evaluate_registry(registry: CopyrightRegistry, distractors: Sequence[str], per_work: int = 2, seed: int = 2024,
                      reporter: Reporter = QUIET, fast: bool = False) -> dict:
    """Edit every registered work ``per_work`` times, add the distractors (each edited once and as it
    is), and score every detector."""
    queries = registry_queries(registry, distractors, per_work, seed)
    thumb = registry.config.cvae.image_size if "cvae" in registry.trained() else None
    features = encode_queries(queries, seed, thumb, reporter)
    return {"registry": str(registry.root), "works": len(registry), "copies": sum(q.is_copy for q in queries),
            **distractor_counts(queries), "seed": seed, "per_work": per_work,
            "methods": evaluate_detectors(registry, queries, features, fast=fast)}
