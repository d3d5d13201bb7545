"""Simulated participants, to try a study end to end and to test the analysis: each participant
picks the pair a known method finds most alike, or with probability ``noise`` a pair at random."""

from __future__ import annotations

import numpy as np

from artlens.errors import ArtlensError
from artlens.study.answers import AnswerLog
from artlens.study.methods import closest_pairs, distance_matrix


def simulate_answers(study, mv, rule: str, participants: int = 10, noise: float = 0.0, seed: int = 0,
                     prefix: str = "sim") -> int:
    """Append answers of ``participants`` simulated participants following ``rule`` (a method name);
    returns how many answers were written. Questions the rule cannot score are left unanswered."""
    if rule not in mv.vectors:
        raise ArtlensError(f"unknown rule {rule!r} for this study", f"choose one of: {', '.join(mv.vectors)}")
    if not 0.0 <= noise <= 1.0:
        raise ArtlensError(f"--noise {noise} is not a probability", "pass a number from 0 to 1")
    if participants < 1:
        raise ArtlensError(f"--participants {participants}: at least one is needed", "pass e.g. --participants 10")
    rng = np.random.default_rng(seed)
    log = AnswerLog(study.answers_path)
    taken = {a.participant for a in log.read(latest_only=False)}
    first = 0  # new participants: a second run appends to the first instead of replacing its answers
    while any(f"{prefix}-{first + p}" in taken for p in range(participants)):
        first += participants
    written = 0
    for p in range(first, first + participants):
        for q in study.questions:
            d = distance_matrix(rule, q.artworks, mv)
            if d is None:
                continue
            pairs = q.pairs
            k = int(rng.integers(len(pairs))) if rng.random() < noise else closest_pairs(d, pairs)[0]
            i, j = pairs[k]
            log.append(study, f"{prefix}-{p}", q.id, (q.artworks[i], q.artworks[j]),
                       confidence=int(rng.integers(1, 6)))
            written += 1
    return written
