"""``GET /api/duplicates``: groups of works of the served collection that are copies of each other
(the review of ``artlens duplicates``), with their scores, at any threshold down to the review's floor."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from artlens.api.errors import ApiError
from artlens.api.routes._common import errors, service
from artlens.api.schemas import DuplicatesResponse
from artlens.api.service import ArtService, thumbnail_url
from artlens.copyright.duplicates import (
    DuplicatePairs,
    DuplicatesConfig,
    duplicate_pairs,
)
from artlens.errors import CollectionError

router = APIRouter(tags=["duplicates"])
_MAX_GROUPS = 500


def _pairs(request: Request, svc: ArtService) -> DuplicatePairs:
    """The collection's candidate pairs, computed once per generation (the slider only re-groups them)."""
    cache = getattr(request.app.state, "duplicate_pairs", None)
    key = (str(svc.collection.root), svc.collection.generation)
    if cache is None or cache[0] != key:
        try:
            pairs = duplicate_pairs(svc.collection, DuplicatesConfig(), compute=False)
        except CollectionError as exc:
            raise ApiError(409, f"no duplicate review here yet: {exc.message}", exc.hint) from None
        cache = (key, pairs)
        request.app.state.duplicate_pairs = cache
    return cache[1]


def _answer(svc: ArtService, pairs: DuplicatePairs, threshold: float) -> dict:
    groups = pairs.groups(threshold)
    shown = groups[:_MAX_GROUPS]
    works = svc.collection.catalog.get_many(sorted({i for g in shown for i in g.ids}))
    out = []
    for group in shown:
        members = []
        for artwork_id, score in zip(group.ids, group.scores):
            meta = works[artwork_id].metadata if artwork_id in works else {}
            members.append({"id": artwork_id, "title": meta.get("title"), "artist": meta.get("artist"),
                            "score": round(score, 6), "thumbnail": thumbnail_url(artwork_id)})
        out.append({"ids": group.ids, "scores": [round(s, 6) for s in group.scores], "works": members,
                    "pairs": [[a, b, round(s, 6)] for a, b, s in group.pairs]})
    return {"threshold": threshold, "default_threshold": DuplicatesConfig.threshold, "floor": pairs.floor,
            "works": len(pairs.ids), "groups_total": len(groups), "groups": out}


@router.get("/api/duplicates", response_model=DuplicatesResponse, responses=errors(409, 422))
async def duplicates(request: Request, threshold: float = Query(
        DuplicatesConfig.threshold, gt=0, le=1,
        description=f"Cosine at or above which two works are copies (default {DuplicatesConfig.threshold}, "
                    f"calibrated for precision >= 0.95 on planted edited copies; at least the floor, "
                    f"{DuplicatesConfig.floor})")):
    """Groups of works that are copies of each other (edits, re-scans, crops), largest first, each work
    with its best score to the group. Answers 409 until the collection's copy features are computed
    (`artlens duplicates --collection PATH` once)."""
    svc = service(request)
    if threshold < DuplicatesConfig.floor:
        raise ApiError(422, f"threshold {threshold} is below the review's floor {DuplicatesConfig.floor}",
                       f"give a threshold in [{DuplicatesConfig.floor}, 1]")
    with svc.encoding.reserve():  # the first review of a generation is CPU work like an encoding
        pairs = await run_in_threadpool(_pairs, request, svc)
    return _answer(svc, pairs, threshold)
