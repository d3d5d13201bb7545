"""Human vs machine: how often each method picks the pair the participants found most alike.

For a question q answered by N_q participants, n_q(p) of whom chose pair p:

- the **majority pair** M_q is the pair with the most votes; when several pairs tie for the most
  votes, every one of them is a majority pair;
- a method x picks the pair at the smallest distance, S_q(x); when several pairs tie at that distance
  (within a relative 1e-6), x picks all of them with equal share;
- **Ps_q(x)** = mean over p in S_q(x) of n_q(p) / N_q: the share of participants who chose x's pair;
- **Agree_q(x)** = |S_q(x) ∩ M_q| / |S_q(x)|: 1 when x's pair is a majority pair (also under a
  majority tie), fractional only when x itself is undecided.

Ps(x) and Agree(x) are means over the answered questions (per group: over the group's questions).
A question's **consensus** is max_p n_q(p) / N_q, the share of participants who chose the majority
pair: the Ps no method can beat. Questions are ranked by difficulty = 1 - consensus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from artlens.study.methods import STYLE_MATRICES, closest_pairs, distance_matrix

SIMULATED = "sim-"  # participant ids of `artlens study simulate`


@dataclass
class QuestionVotes:
    question: object  # Question
    votes: np.ndarray  # (pairs,) number of participants per pair

    @property
    def total(self) -> int:
        return int(self.votes.sum())

    @property
    def majority(self) -> list[int]:
        return [k for k, v in enumerate(self.votes) if v == self.votes.max()] if self.total else []

    @property
    def consensus(self) -> float:
        return float(self.votes.max() / self.total) if self.total else 0.0


def tally(study, answers) -> list[QuestionVotes]:
    """Votes per pair of every question (questions nobody answered have total 0)."""
    counts: dict[int, Counter] = {q.id: Counter() for q in study.questions}
    for a in answers:
        if a.question in counts:
            try:
                counts[a.question][study.questions[a.question].pair_index(*a.pair)] += 1
            except ValueError:
                continue  # an answer about artworks no longer in the question
    out = []
    for q in study.questions:
        votes = np.zeros(len(q.pairs), dtype=np.int64)
        for k, n in counts[q.id].items():
            votes[k] = n
        out.append(QuestionVotes(q, votes))
    return out


def score_pick(picked: Sequence[int], qv: QuestionVotes) -> tuple[float, float]:
    """(Ps_q, Agree_q) of a method that picked ``picked`` (tied pair indices)."""
    ps = float(np.mean([qv.votes[k] / qv.total for k in picked]))
    majority = set(qv.majority)
    return ps, sum(1 for k in picked if k in majority) / len(picked)


def method_label(method: str, layer: str) -> str:
    return f"{STYLE_MATRICES[method]} ({layer})" if method in STYLE_MATRICES else method


def analyse(study, answers, mv, layer: str = "block4") -> dict:
    """Per question, per group and overall: majority pair, consensus, and each method's pick, Ps and
    Agree; questions ranked by difficulty."""
    votes = [qv for qv in tally(study, answers) if qv.total]
    methods = list(mv.vectors)
    questions = []
    for qv in votes:
        q = qv.question
        row = {"question": q.id, "group": q.group, "artworks": list(q.artworks), "answers": qv.total,
               "votes": qv.votes.tolist(), "majority": [list(_pair_ids(q, k)) for k in qv.majority],
               "consensus": qv.consensus, "difficulty": 1.0 - qv.consensus, "methods": {}}
        for method in methods:
            d = distance_matrix(method, q.artworks, mv)
            if d is None:
                continue
            picked = closest_pairs(d, q.pairs)
            ps, agree = score_pick(picked, qv)
            row["methods"][method] = {"pair": [list(_pair_ids(q, k)) for k in picked], "ps": ps, "agree": agree}
        questions.append(row)
    by_difficulty = sorted(questions, key=lambda r: (r["difficulty"], r["question"]))
    for rank, row in enumerate(by_difficulty, 1):
        row["rank_easiest_first"] = rank
    groups = sorted({r["group"] for r in questions})
    return {"answered_questions": len(questions), "questions_in_study": len(study.questions),
            "answers": sum(r["answers"] for r in questions),
            "participants": len({a.participant for a in answers}),
            "simulated_participants": len({a.participant for a in answers if a.participant.startswith(SIMULATED)}),
            "layer": layer, "notes": list(mv.notes),
            "methods": {m: method_label(m, layer) for m in methods},
            "overall": _summary(questions, methods),
            "groups": {g: _summary([r for r in questions if r["group"] == g], methods) for g in groups},
            "questions": by_difficulty}


def _summary(rows: list[dict], methods: Sequence[str]) -> dict:
    out = {"questions": len(rows), "consensus": float(np.mean([r["consensus"] for r in rows])) if rows else None,
           "methods": {}}
    for m in methods:
        scored = [r["methods"][m] for r in rows if m in r["methods"]]
        if scored:
            out["methods"][m] = {"ps": float(np.mean([s["ps"] for s in scored])),
                                 "agree": float(np.mean([s["agree"] for s in scored])), "questions": len(scored)}
    return out


def cumulative_agreement(analysis: dict) -> dict[str, list[float]]:
    """Per method, the number of agreements summed over questions ordered easiest first (the
    paper-style cumulative curve; a method that always agrees follows the diagonal)."""
    rows = analysis["questions"]
    out = {}
    for m in analysis["methods"]:
        out[m] = np.cumsum([r["methods"].get(m, {}).get("agree", 0.0) for r in rows]).tolist()
    return out


def _pair_ids(q, k: int) -> tuple[int, int]:
    i, j = q.pairs[k]
    return q.artworks[i], q.artworks[j]
