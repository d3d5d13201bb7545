"""The JSON answers of annotation and copyright checks, built field by field from the components'
typed results: what is not named here (a file's path, say) never leaves the server."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from artlens.annotation import ColumnPrediction
from artlens.copyright.check import REGISTERED, Alternative, CheckResult


def annotation_answer(predictions: Mapping[str, ColumnPrediction]) -> dict:
    """The JSON of ``/api/annotate``: the labels of each column, and how near the labelled works are."""
    return {"labels": {column: [dict(t) for t in p["top"]] for column, p in predictions.items()},
            "weak": any(p["weak"] for p in predictions.values()),
            "columns": {column: {"method": p["method"], "nearest": p["nearest"], "threshold": p["threshold"],
                                 "weak": p["weak"]} for column, p in predictions.items()}}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def alternative_answer(alt: Alternative, thumbnail: Callable[[int], str]) -> dict:
    """A free alternative, field by field (its file's path stays on the server)."""
    return {"id": alt.id, "score": _rounded(alt.score), "title": alt.title, "artist": alt.artist,
            "owner": alt.owner, "licence": alt.licence, "thumbnail": thumbnail(alt.id)}


def copyright_answer(result: CheckResult, k: int, thumbnail: Callable[[int], str]) -> dict:
    """The JSON of ``/api/copyright/check``, field by field (no path of a registered or free work leaves
    the server): the verdict, the matched work (or, when not registered, the ``closest`` one: id, title,
score), the first ``k`` alternatives, and how it was decided."""
    registered = result.verdict == REGISTERED
    work = {"id": result.work_id, "owner": result.owner, "licence": result.licence, "title": result.title}
    work = {key: value for key, value in work.items() if value is not None}
    evidence = {"detector": result.detector, "search": result.search, "threshold": _rounded(result.threshold)}
    evidence = {key: value for key, value in evidence.items() if value is not None}
    closest = None
    if not registered and result.work_id is not None:  # the near miss: which work, and how far below the threshold
        closest = {key: value for key, value in {"id": result.work_id, "title": result.title,
                                                 "score": _rounded(result.score)}.items() if value is not None}
    return {"verdict": result.verdict, "registered": registered, "owner": result.owner,
            "work": work if registered and work else None, "closest": closest,
            "score": _rounded(result.score), "stage": result.stage,
            "alternatives": [alternative_answer(a, thumbnail) for a in result.alternatives[:k]],
            "evidence": evidence or None}
