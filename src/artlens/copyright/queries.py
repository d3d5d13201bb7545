"""Edited-copy queries for evaluating a registry: seeded edits of registered works, and images that
are not registered (distractors), each edited and, by default, also unedited.

A query is a recipe (source file, edit family, index); :func:`render_query` turns it into the same
image every time, so benchmarks can cache what they computed from it and re-render when needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from artlens.copyright.edits import FAMILIES, edit_plan, edited, rng_for
from artlens.imaging import crop_letterbox, load_image

# the family of a distractor shown as it is: an unregistered painting by the same hand can look more
# like a registered work than any edit of it does
UNEDITED = "unedited"


@dataclass(frozen=True)
class EditedQuery:
    index: int
    source: str  # the image file that was edited
    family: str  # edit family (see ``edits.FAMILIES``), or ``UNEDITED`` for a distractor as it is
    work_id: int | None  # the registered work it copies; None for a distractor

    @property
    def is_copy(self) -> bool:
        return self.work_id is not None


def edited_queries(
    works: Sequence[tuple[int, str]],
    distractors: Sequence[str],
    per_work: int,
    seed: int,
    families: Sequence[str] = FAMILIES,
    unedited_distractors: bool = True,
) -> list[EditedQuery]:
    """``per_work`` edits of every (work id, path), one edit of every distractor path and (with
    ``unedited_distractors``) every distractor as it is, in that order; edit families are balanced
    within copies and within edited distractors."""
    queries = []
    for item, family in edit_plan(len(works), per_work, seed, families):
        work_id, path = works[item]
        queries.append(EditedQuery(len(queries), str(path), family, int(work_id)))
    for item, family in edit_plan(len(distractors), 1, seed + 1, families):
        queries.append(EditedQuery(len(queries), str(distractors[item]), family, None))
    if unedited_distractors:
        for path in distractors:
            queries.append(EditedQuery(len(queries), str(path), UNEDITED, None))
    return queries


def render_query(query: EditedQuery, seed: int) -> tuple[Image.Image, str]:
    """The edited image of ``query`` (the work's letterbox padding removed first) and what was done."""
    work = crop_letterbox(load_image(query.source))
    if query.family == UNEDITED:
        return work.convert("RGB"), UNEDITED
    return edited(work, query.family, rng_for(seed, query.index))


def iter_rendered(queries: Sequence[EditedQuery], seed: int, batch_size: int = 32
                  ) -> Iterator[list[tuple[EditedQuery, Image.Image, str]]]:
    """Batches of rendered queries, the next batch rendered while the caller works on this one."""
    batches = [list(queries[i : i + batch_size]) for i in range(0, len(queries), batch_size)]

    def render_batch(batch):
        return [(q, *render_query(q, seed)) for q in batch]

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(render_batch, batches[0]) if batches else None
        for b in range(len(batches)):
            done = pending.result()
            if b + 1 < len(batches):
                pending = pool.submit(render_batch, batches[b + 1])
            yield done


def sample_paths(paths: Sequence[str], n: int, seed: int) -> list[str]:
    """``n`` paths drawn without replacement (all of them if fewer), in a seeded order."""
    paths = sorted(str(p) for p in paths)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(paths))[: min(n, len(paths))]
    return [paths[i] for i in order]
