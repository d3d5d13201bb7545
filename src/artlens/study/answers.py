"""Answers of a study, one JSON object per line in ``STUDY/answers.jsonl``.

Each answer is appended with a single ``write`` on a file opened for appending, under an exclusive
lock, then flushed to disk: concurrent participants never interleave lines, and a crash loses at
most the answer being written (a torn last line is skipped when reading). When a participant answers
a question again, the latest answer counts.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from artlens.errors import ArtlensError

PARTICIPANT = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class Answer:
    participant: str
    question: int
    pair: tuple[int, int]  # artwork ids, ascending
    confidence: int | None = None  # self-assessment of this answer, 1 (guess) .. 5 (sure)
    expertise: int | None = None  # self-assessment of the participant's familiarity with art, 1 .. 5
    at: float = 0.0


def check_scale(value, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
        raise ArtlensError(f"{name} must be a whole number from 1 to 5, got {value!r}", f"leave {name} out or send 1..5")
    return value


class AnswerLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def append(self, study, participant: str, question: int, pair, confidence: int | None = None,
               expertise: int | None = None) -> Answer:
        """Validate an answer against ``study`` and append it."""
        if not PARTICIPANT.match(participant or ""):
            raise ArtlensError(f"bad participant id {participant!r}", "use 1-64 letters, digits, '.', '_' or '-'")
        q = study.question(question)
        try:
            a, b = (int(v) for v in pair)
            q.pair_index(a, b)
        except (TypeError, ValueError):
            raise ArtlensError(f"{pair!r} is not a pair of two different artworks of question {question}",
                               f"choose two of {list(q.artworks)}") from None
        answer = Answer(participant, question, (min(a, b), max(a, b)), check_scale(confidence, "confidence"),
                        check_scale(expertise, "expertise"), round(time.time(), 3))
        line = (json.dumps({**asdict(answer), "pair": list(answer.pair)}) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _lock(fd)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock
        return answer

    def read(self, latest_only: bool = True) -> list[Answer]:
        """Every well-formed answer (torn or foreign lines are skipped); by default only each
        participant's latest answer to each question."""
        if not self.path.exists():
            return []
        answers = []
        for line in self.path.read_text(errors="replace").splitlines():
            try:
                d = json.loads(line)
                answers.append(Answer(str(d["participant"]), int(d["question"]), (int(d["pair"][0]), int(d["pair"][1])),
                                      d.get("confidence"), d.get("expertise"), float(d.get("at", 0.0))))
            except (ValueError, KeyError, TypeError, IndexError):
                continue
        if not latest_only:
            return answers
        latest: dict[tuple[str, int], Answer] = {}
        for answer in answers:
            latest[(answer.participant, answer.question)] = answer
        return list(latest.values())


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: O_APPEND writes of one line are still whole
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
