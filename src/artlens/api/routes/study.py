"""The human-vs-machine study: its page at ``/study`` and ``/api/study`` to read the questions and
record answers (appended to the study's ``answers.jsonl``). A participant is issued by the server
(``POST /api/study/participants``: an id and its token) and answers only as itself: an answer
without its participant's token is refused (403).

The study served is ``app.state.study_dir`` when set (``artlens study serve``), else
``ApiSettings.study_dir`` (``$ARTLENS_STUDY`` for ``artlens serve``), else the served collection's
``study/`` folder (``artlens study create``'s default).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from artlens.api.errors import ApiError
from artlens.api.routes._common import errors, service
from artlens.api.service import thumbnail_url
from artlens.study import AnswerLog, Participants, Study

router = APIRouter(tags=["study"])
_PAGES = {"study.html": "text/html; charset=utf-8", "study.js": "text/javascript; charset=utf-8",
          "study.css": "text/css; charset=utf-8"}


class StudyArtwork(BaseModel):
    id: int
    thumbnail: str


class StudyQuestion(BaseModel):
    id: int
    artworks: list[StudyArtwork]


class StudyInfo(BaseModel):
    title: str
    size: int
    questions: list[StudyQuestion]


class AnswerIn(BaseModel):
    participant: str = Field(..., min_length=1, max_length=64, description="Participant id (letters, digits, . _ -)")
    token: str = Field(..., min_length=1, max_length=128,
                       description="The participant's token, from POST /api/study/participants")
    question: int = Field(..., ge=0, le=100_000)
    pair: list[int] = Field(..., min_length=2, max_length=2, description="The two artwork ids found most alike")
    confidence: int | None = Field(None, ge=1, le=5, description="Self-assessment of this answer, 1 (guess) to 5 (sure)")
    expertise: int | None = Field(None, ge=1, le=5, description="Self-assessed familiarity with art, 1 to 5")


class ParticipantIssued(BaseModel):
    participant: str
    token: str = Field(description="Send it with every answer of this participant; keep it private")


class AnswerSaved(BaseModel):
    saved: bool
    answered: list[int]


class Progress(BaseModel):
    answered: list[int]


def study_dir(request: Request) -> Path:
    chosen = getattr(request.app.state, "study_dir", None)
    return Path(chosen) if chosen else service(request).settings.resolved_study_dir()


def load_study(request: Request) -> Study:
    folder = study_dir(request)
    if not (folder / "study.json").exists():
        raise ApiError(404, f"no study at {folder}", "create one: artlens study create --collection PATH --group-by COLUMN")
    return Study.load(folder)


def answered(study: Study, participant: str) -> list[int]:
    return sorted({a.question for a in AnswerLog(study.answers_path).read() if a.participant == participant})


@router.get("/api/study", response_model=StudyInfo, responses=errors(404))
def study_info(request: Request):
    """The questions of the study (label values are not shown, so they cannot bias the participant)."""
    study = load_study(request)
    return {"title": study.title, "size": study.size,
            "questions": [{"id": q.id, "artworks": [{"id": a, "thumbnail": thumbnail_url(a)} for a in q.artworks]}
                          for q in study.questions]}


@router.get("/api/study/progress", response_model=Progress, responses=errors(404, 422))
def progress(request: Request, participant: str = Query(..., min_length=1, max_length=64)):
    """The questions this participant has answered already."""
    return {"answered": answered(load_study(request), participant)}


@router.post("/api/study/participants", response_model=ParticipantIssued, status_code=201, responses=errors(404))
def new_participant(request: Request):
    """A new participant of the study: its id and the token its answers are recorded with."""
    study = load_study(request)
    participant, token = Participants(study.root).issue()
    return {"participant": participant, "token": token}


@router.post("/api/study/answers", response_model=AnswerSaved, status_code=201, responses=errors(400, 403, 404, 422))
async def record_answer(request: Request, answer: AnswerIn):
    """Record which pair of the question's artworks the participant finds most alike (with the
    participant's token: nobody answers for another)."""
    study = load_study(request)
    if not Participants(study.root).verify(answer.participant, answer.token):
        raise ApiError(403, f"that token is not participant {answer.participant!r}'s",
                       "answer as the participant POST /api/study/participants issued to you")
    await run_in_threadpool(AnswerLog(study.answers_path).append, study, answer.participant, answer.question,
                            answer.pair, answer.confidence, answer.expertise)
    return {"saved": True, "answered": answered(study, answer.participant)}


@lru_cache(maxsize=None)
def _page(name: str) -> tuple[bytes, str]:
    data = (resources.files("artlens.web") / "static" / name).read_bytes()
    return data, '"' + hashlib.md5(data).hexdigest() + '"'


def _serve(name: str):
    def handler(request: Request) -> Response:
        data, etag = _page(name)
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=_PAGES[name], headers=headers)

    return handler


router.add_api_route("/study", _serve("study.html"), methods=["GET"], include_in_schema=False)
router.add_api_route("/study.js", _serve("study.js"), methods=["GET"], include_in_schema=False)
router.add_api_route("/study.css", _serve("study.css"), methods=["GET"], include_in_schema=False)
