"""Copy-detection metrics (µAP, recall at precision, per-group recall) as pure functions of predictions.

A prediction is one (query, predicted work, score) triple; ``correct`` says whether the predicted
work is the query's true source. Queries that are not copies (distractors) only ever give wrong
predictions. Every copy query counts towards recall whether or not it was predicted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _ranked(scores, correct) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    return scores[order], correct[order]


def precision_recall_curve(scores, correct, n_positives: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, threshold) after each prediction in descending score order; tied scores
    are taken together (a threshold cannot separate them)."""
    s, c = _ranked(scores, correct)
    if len(s) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    tp = np.cumsum(c)
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp, k, s = tp[last_of_tie], np.flatnonzero(last_of_tie) + 1, s[last_of_tie]
    return tp / k, tp / max(n_positives, 1), s


def curve_points(scores, correct, n_positives: int, points: int = 200) -> dict[str, list[float]]:
    """The precision-recall curve thinned to about ``points`` points (for plots and reports)."""
    p, r, _ = precision_recall_curve(scores, correct, n_positives)
    keep = np.unique(np.linspace(0, len(p) - 1, min(points, len(p))).round().astype(int)) if len(p) else []
    return {"precision": [round(float(v), 5) for v in p[keep]], "recall": [round(float(v), 5) for v in r[keep]]}


def micro_average_precision(scores, correct, n_positives: int) -> float:
    """µAP (as in the DISC / ISC benchmarks): average precision of all predictions ranked by score,
    over ``n_positives`` true (query, source) pairs."""
    if n_positives <= 0:
        return 0.0
    s, c = _ranked(scores, correct)
    tp = np.cumsum(c)
    precision = tp / np.arange(1, len(s) + 1)
    return float(precision[c].sum() / n_positives)


def recall_at_precision(scores, correct, n_positives: int, precision: float) -> tuple[float, float]:
    """Highest recall with precision >= ``precision`` at some score threshold, and that threshold
    (``inf`` when no threshold reaches the precision)."""
    p, r, t = precision_recall_curve(scores, correct, n_positives)
    ok = np.flatnonzero(p >= precision)
    if len(ok) == 0:
        return 0.0, float("inf")
    best = ok[np.argmax(r[ok])]
    return float(r[best]), float(t[best])


def threshold_for_precision(scores, correct, n_positives: int, precision: float) -> float:
    """The lowest score threshold at which precision (over predictions scoring at least it) is still
    >= ``precision``: the operating point with the most recall. ``inf`` if none reaches it."""
    return recall_at_precision(scores, correct, n_positives, precision)[1]


def recall_by_group(accepted, correct, groups: Sequence[str]) -> dict[str, float]:
    """Per group of copy queries: share that were accepted with the right work."""
    accepted = np.asarray(accepted, dtype=bool)
    correct = np.asarray(correct, dtype=bool)
    groups = np.asarray(groups)
    return {str(g): float((accepted & correct)[groups == g].mean()) for g in sorted(set(groups.tolist()))}


def copy_detection_summary(scores, correct, is_copy, threshold: float | None = None,
                           groups: Sequence[str] | None = None) -> dict:
    """µAP, recall at 90 % / 99 % precision, top-1 accuracy on copies, and, at ``threshold`` (the
    detector's operating point), recall, precision, false positives on distractors and recall per group.

    ``scores``/``correct``: the top-1 prediction of every query; ``is_copy``: whether the query is an
    edited copy of a registered work (else a distractor).
    """
    scores = np.asarray(scores, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    is_copy = np.asarray(is_copy, dtype=bool)
    n_pos = int(is_copy.sum())
    r90, t90 = recall_at_precision(scores, correct, n_pos, 0.90)
    r99, t99 = recall_at_precision(scores, correct, n_pos, 0.99)
    out = {
        "queries": int(len(scores)), "copies": n_pos, "distractors": int((~is_copy).sum()),
        "micro_ap": micro_average_precision(scores, correct, n_pos),
        "recall@p90": r90, "threshold@p90": t90, "recall@p99": r99, "threshold@p99": t99,
        "top1_on_copies": float(correct[is_copy].mean()) if n_pos else 0.0,
    }
    if threshold is not None:
        accepted = scores >= threshold
        out.update(_operating_point(accepted, correct, is_copy, threshold, groups))
    if groups is not None:
        g = np.asarray(groups)
        out["recall_per_group@p99"] = recall_by_group((scores >= t99)[is_copy], correct[is_copy], g[is_copy])
    return out


def verdict_summary(accepted, correct, is_copy, groups: Sequence[str] | None = None) -> dict:
    """The operating-point part of :func:`copy_detection_summary` for a detector that gives verdicts."""
    return _operating_point(np.asarray(accepted, bool), np.asarray(correct, bool), np.asarray(is_copy, bool),
                            None, groups)


def _operating_point(accepted, correct, is_copy, threshold, groups) -> dict:
    n_pos = int(is_copy.sum())
    tp = int((accepted & correct).sum())
    out = {
        "threshold": threshold,
        "recall": tp / n_pos if n_pos else 0.0,
        "precision": tp / int(accepted.sum()) if accepted.any() else 1.0,
        "false_positives_on_distractors": int((accepted & ~is_copy).sum()),
        "wrong_work_on_copies": int((accepted & is_copy & ~correct).sum()),
    }
    if groups is not None:
        g = np.asarray(groups)
        out["recall_per_group"] = recall_by_group(accepted[is_copy], correct[is_copy], g[is_copy])
        out["false_positives_per_group"] = {str(k): int((accepted & ~is_copy)[g == k].sum())
                                            for k in sorted(set(g[~is_copy].tolist()))}
    return out
