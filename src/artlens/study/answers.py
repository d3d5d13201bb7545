"""Answers of a study, one JSON object per line in ``STUDY/answers.jsonl``.

Each answer is appended with a single ``write`` on a file opened for appending, under an exclusive
lock, then flushed to disk: concurrent participants never interleave lines, and a crash loses at
most the answer being written (a torn last line is skipped when reading). When a participant answers
a question again, the latest answer counts.

Participants are issued by the server (:class:`Participants`): an id and a token that only its
holder knows, the HMAC-SHA256 of the id under the study's secret key. An answer is recorded only
with its participant's token, so nobody can write, or overwrite, another participant's answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
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


class Participants:
    """Issues participants of a study and checks their tokens. The key is ``KEY_FILE`` in the study
    folder, made on first use (readable by its owner only) and kept, so that tokens outlive a server
    restart; deleting it invalidates every token issued."""

    KEY_FILE = "participants.key"

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / self.KEY_FILE
        self._key: bytes | None = None

    def issue(self) -> tuple[str, str]:
        """A new participant: (id, token)."""
        participant = "p-" + secrets.token_hex(8)
        return participant, self.token(participant)

    def token(self, participant: str) -> str:
        return hmac.new(self._secret(), participant.encode(), hashlib.sha256).hexdigest()

    def verify(self, participant: str, token: str | None) -> bool:
        if not token or not PARTICIPANT.match(participant or "") or not self.path.exists():
            return False
        return hmac.compare_digest(self.token(participant), token)

    def _secret(self) -> bytes:
        if self._key is None:
            if not self.path.exists():
                self._create()
            key = bytes.fromhex(self.path.read_text().strip())
            if len(key) < 32:
                raise ArtlensError(f"the participant key {self.path} is damaged",
                                   "delete it (every participant then starts again) and reload the study page")
            self._key = key
        return self._key

    def _create(self) -> None:
        """Write the key beside its place, then link it there: two servers starting at once keep one key."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
