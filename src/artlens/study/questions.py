"""A human-vs-machine similarity study (the Ukiyo-e paper's protocol): seeded questions of a few
artworks drawn within one label value; a participant picks the pair they find most alike.

    STUDY/
      study.json      the questions (artwork ids and MD5s), the collection, how they were drawn
      answers.jsonl   one JSON object per answer, appended atomically (see ``artlens.study.answers``)
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from artlens.errors import ArtlensError
from artlens.files import write_json

STUDY_VERSION = 1
STUDY_FILE = "study.json"


@dataclass(frozen=True)
class Question:
    id: int
    group: str  # the label value every artwork of the question shares
    artworks: tuple[int, ...]
    md5s: tuple[str, ...]

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """Every unordered pair of positions, in a fixed order (the pair index used everywhere)."""
        return list(itertools.combinations(range(len(self.artworks)), 2))

    def pair_index(self, a: int, b: int) -> int:
        """Index of the pair of artwork ids ``a`` and ``b`` (either order); ValueError if not a pair here."""
        pos = {artwork: k for k, artwork in enumerate(self.artworks)}
        if a == b or a not in pos or b not in pos:
            raise ValueError(f"({a}, {b}) is not a pair of question {self.id}")
        return self.pairs.index(tuple(sorted((pos[a], pos[b]))))


@dataclass
class Study:
    root: Path
    collection: str
    group_by: str
    size: int
    seed: int
    questions: list[Question]
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    title: str = "Which two are most alike?"
    replaced_answers: Path | None = field(default=None, compare=False)  # where --overwrite moved old answers

    @property
    def answers_path(self) -> Path:
        return self.root / "answers.jsonl"

    def question(self, question_id: int) -> Question:
        if not 0 <= question_id < len(self.questions):
            raise ArtlensError(f"no question {question_id} in this study", f"questions are 0..{len(self.questions) - 1}")
        return self.questions[question_id]

    def as_dict(self) -> dict:
        return {"study_version": STUDY_VERSION, "collection": self.collection, "group_by": self.group_by,
                "size": self.size, "seed": self.seed, "created": self.created, "title": self.title,
                "questions": [{**asdict(q), "artworks": list(q.artworks), "md5s": list(q.md5s)} for q in self.questions]}

    def save(self) -> Path:
        """``study.json``, written atomically."""
        return write_json(self.as_dict(), self.root / STUDY_FILE)

    @classmethod
    def load(cls, root: str | Path) -> "Study":
        root = Path(root)
        path = root / STUDY_FILE
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ArtlensError(f"no study at {root}", "create one: artlens study create --collection PATH "
                                                      "--group-by COLUMN --out STUDY") from None
        except (OSError, ValueError) as exc:
            raise ArtlensError(f"cannot read {path}: {exc}", "restore the file or create the study again") from exc
        if d.get("study_version") != STUDY_VERSION:
            raise ArtlensError(f"{path} is study version {d.get('study_version')}, this artlens reads {STUDY_VERSION}",
                               "create the study again with this artlens")
        questions = [Question(q["id"], q["group"], tuple(q["artworks"]), tuple(q["md5s"])) for q in d["questions"]]
        return cls(root, d["collection"], d["group_by"], d["size"], d["seed"], questions, d["created"],
                   d.get("title", cls.title))


def draw_questions(groups: dict[str, list[int]], n_questions: int, size: int, seed: int) -> list[tuple[str, list[int]]]:
    """``n_questions`` questions of ``size`` artworks, each within one group: groups are visited in a
    seeded order, round robin, and each group's artworks are used without repetition until it runs out."""
    eligible = sorted(g for g, members in groups.items() if len(members) >= size)
    if not eligible:
        raise ArtlensError(f"no label value has {size} artworks to make a question of",
                           "choose a column with larger groups, or a smaller --size")
    rng = np.random.default_rng(seed)
    order = [eligible[i] for i in rng.permutation(len(eligible))]
    pools = {g: [] for g in eligible}
    out, seen = [], set()
    for q in range(n_questions):
        group = order[q % len(order)]
        for _ in range(20):  # a set of artworks asked about before is drawn again (small groups, many questions)
            if len(pools[group]) < size:  # (re)shuffle the group's artworks
                members = sorted(groups[group])
                pools[group] = [members[i] for i in rng.permutation(len(members))]
            chosen = tuple(sorted(pools[group][:size]))
            pools[group] = pools[group][size:]
            if chosen not in seen:
                break
        seen.add(chosen)
        out.append((group, list(chosen)))
    return out


def create_study(collection, group_by: str, n_questions: int = 20, size: int = 5, seed: int = 0,
                 out: str | Path | None = None, overwrite: bool = False) -> Study:
    """Draw the questions from the collection's artworks labelled in ``group_by`` and save the study."""
    if size < 3:
        raise ArtlensError(f"--size {size} is too small", "a question needs at least 3 artworks (the paper used 5)")
    if n_questions < 1:
        raise ArtlensError("--groups must be at least 1", "pass e.g. --groups 20")
    root = Path(out) if out else collection.root / "study"
    if (root / STUDY_FILE).exists() and not overwrite:
        raise ArtlensError(f"a study already exists at {root}", "pass another --out, or --overwrite to replace it "
                                                                "(its answers are moved to answers.<time>.jsonl)")
    labels = collection.catalog.labels(group_by)
    md5s = collection.catalog.md5s()
    groups: dict[str, list[int]] = {}
    for artwork, value in labels.items():
        if artwork in md5s:
            groups.setdefault(value, []).append(artwork)
    drawn = draw_questions(groups, n_questions, size, seed)
    questions = [Question(k, group, tuple(ids), tuple(md5s[i] for i in ids)) for k, (group, ids) in enumerate(drawn)]
    study = Study(root, str(Path(collection.root).resolve()), group_by, size, seed, questions)
    study.replaced_answers = set_answers_aside(study.answers_path)
    study.save()
    return study


def set_answers_aside(path: Path) -> Path | None:
    """Rename the answers of a replaced study to ``answers.<time>.jsonl`` (one atomic rename), so that
    they are never counted against the new questions, which reuse the same question ids."""
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for k in itertools.count():
        target = path.with_name(f"{path.stem}.{stamp}{f'-{k}' if k else ''}{path.suffix}")
        if not target.exists():
            os.replace(path, target)
            return target
