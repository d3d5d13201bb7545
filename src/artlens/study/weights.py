"""Learning from judgements: the aspect weights (content / style / text / colour) whose weighted mix
of cosine similarities best agrees with the human majority.

The answered questions are split, seeded, into training and held-out questions. Every weighting on
a grid over the simplex (steps of 0.1) is scored on the training questions by Agree (ties broken by
Ps, then by closeness to the collection's weights); the best one is reported with its agreement on
the held-out questions beside that of the collection's own weights.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from artlens.study.analysis import QuestionVotes, score_pick, tally
from artlens.study.methods import aspect_similarities, closest_pairs

ASPECTS = ("content", "style", "text", "colour")
MIN_QUESTIONS = 4  # answered questions needed: at least two to fit on, two to test on


def simplex_grid(n: int, steps: int = 10) -> list[tuple[float, ...]]:
    """Every weighting of ``n`` aspects in multiples of 1/steps that sums to 1."""
    out = []
    for cuts in itertools.combinations(range(steps + n - 1), n - 1):
        parts = np.diff([-1, *cuts, steps + n - 1]) - 1
        out.append(tuple(float(p) / steps for p in parts))
    return out


def agreement(weights: Sequence[float], sims: list[np.ndarray], votes: list[QuestionVotes]) -> tuple[float, float]:
    """(Agree, Ps) of the mix ``weights`` over questions; ``sims[q]`` is (aspects, n, n)."""
    agree, ps = [], []
    w = np.asarray(weights)[:, None, None]
    for s, qv in zip(sims, votes):
        picked = closest_pairs(-(w * s).sum(axis=0), qv.question.pairs)
        p, a = score_pick(picked, qv)
        agree.append(a)
        ps.append(p)
    return float(np.mean(agree)), float(np.mean(ps))


def fit_weights(study, answers, mv, holdout: float = 0.5, seed: int = 0, steps: int = 10) -> dict:
    """Fit the weights on training questions; report agreement before / after on held-out questions.
    Returns ``{"skipped": reason}`` when there are too few answered questions or aspects."""
    names = [a for a in ASPECTS if a in mv.aspects]
    if len(names) < 2:
        return {"skipped": f"needs at least two of {', '.join(ASPECTS)} indexed; this collection has {names or 'none'}"}
    rows = []
    for qv in tally(study, answers):
        if qv.total == 0:
            continue
        sims = aspect_similarities(qv.question.artworks, mv.aspects, names)
        if sims is not None:
            rows.append((np.stack([sims[a] for a in names]), qv))
    if len(rows) < MIN_QUESTIONS:
        return {"skipped": f"{len(rows)} answered question(s) with every aspect; at least {MIN_QUESTIONS} are needed"}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    n_test = min(len(rows) - 2, max(2, int(round(holdout * len(rows)))))
    test, train = [rows[i] for i in order[:n_test]], [rows[i] for i in order[n_test:]]
    before = _normalised({a: mv.weights.get(a, 0.0) for a in names})
    default = np.array([before[a] for a in names])

    def key(w):
        agree, ps = agreement(w, [s for s, _ in train], [v for _, v in train])
        return agree, ps, -float(np.abs(np.asarray(w) - default).sum())

    best = max(simplex_grid(len(names), steps), key=key)
    after = dict(zip(names, best))

    def scores(weights: Mapping[str, float], part) -> dict:
        agree, ps = agreement([weights[a] for a in names], [s for s, _ in part], [v for _, v in part])
        return {"agree": agree, "ps": ps}

    return {"aspects": names, "train_questions": len(train), "heldout_questions": len(test), "seed": seed,
            "before": {"weights": before, "train": scores(before, train), "heldout": scores(before, test)},
            "after": {"weights": after, "train": scores(after, train), "heldout": scores(after, test)}}


def _normalised(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    if total <= 0:
        return {a: 1.0 / len(weights) for a in weights}
    return {a: w / total for a, w in weights.items()}
