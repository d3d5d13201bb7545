"""Optional services the API offers when their modules are installed: annotation of an upload
(:mod:`artlens.annotation`) and the copyright check (:mod:`artlens.copyright`).

Each is a plain callable taking the decoded upload, so tests and other deployments can pass their own
to :func:`artlens.api.create_app`:

    annotator(image: PIL.Image.Image, top: int) -> {column: [(label, probability), ...]}
    copyright_checker(image: PIL.Image.Image, k: int, md5: str | None = None)
        -> {"verdict": "registered" | "not-registered", "work_id", "owner", "licence", "title",
            "score", "stage", "alternatives": [{"id", "score", "title", ...}], ...}

Without one, the module is looked up when needed (so it is wired as soon as it is installed); until
then the endpoint answers 501 with a JSON error. Results are normalised to plain JSON, and any
field that names a file path is dropped: the API never reveals where files live.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from artlens.api.errors import ApiError
from artlens.collection import Collection
from artlens.errors import ArtlensError

log = logging.getLogger("artlens.api")

Annotator = Callable[..., Any]
CopyrightChecker = Callable[..., Any]


def call_with_accepted(fn: Callable, *args, **kwargs):
    """Call ``fn`` with the keyword arguments it declares (all of them if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def plain(value: Any) -> Any:
    """JSON-ready copy of a result: dataclasses/objects via as_dict/to_dict, tuples as lists, no paths."""
    for method in ("as_dict", "to_dict", "model_dump"):
        if hasattr(value, method) and callable(getattr(value, method)) and not isinstance(value, type):
            return plain(getattr(value, method)())
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if "path" not in str(k).lower() and str(k) != "file"}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


# -- annotation -----------------------------------------------------------------------------------
def open_annotator(collection: Collection) -> Annotator | None:
    """An annotator of uploads for ``collection`` (its learned head, else logistic probes fitted now on
    its labelled artworks), or None while :mod:`artlens.annotation` is not installed. A collection
    without label columns raises an error that says what to do."""
    try:
        from artlens.annotation import Annotator as ColumnAnnotator
        from artlens.annotation import label_columns
    except ImportError as exc:
        log.info("annotation unavailable: %s", exc)
        return None
    columns = label_columns(collection.catalog)
    if not columns:
        raise ArtlensError("this collection has no label columns (artist, style, genre, ...) to predict",
                           "ingest it with a --labels CSV that has such columns")
    annotator = ColumnAnnotator(collection)
    annotator.fit(columns)

    def annotate(image, top: int):
        return annotator.annotate_image(image, k=top)

    return annotate


def normalise_labels(raw: Any) -> dict[str, list[dict]]:
    """{column: [{"label", "probability"}]} from the shapes an annotator may return."""
    raw = plain(raw)
    if isinstance(raw, dict):
        for key in ("labels", "predictions", "columns"):
            if isinstance(raw.get(key), (dict, list)):
                raw = raw[key]
                break
    if isinstance(raw, list):  # [{"column": c, "labels"/"top": [...]}, ...]
        raw = {str(item.get("column") or item.get("label_column") or i): item.get("labels") or item.get("top") or item.get("predictions") or []
               for i, item in enumerate(raw) if isinstance(item, dict)}
    out: dict[str, list[dict]] = {}
    for column, preds in (raw or {}).items():
        if isinstance(preds, dict) and isinstance(preds.get("top"), list):  # {"method": ..., "top": [...]}
            preds = preds["top"]
        if isinstance(preds, dict) and not {"label", "value"} & set(preds):
            preds = sorted(preds.items(), key=lambda lp: -float(lp[1]))
        items = []
        for p in preds if isinstance(preds, list) else [preds]:
            if isinstance(p, (list, tuple)) and len(p) >= 2:
                label, prob = p[0], p[1]
            elif isinstance(p, dict):
                label = p.get("label", p.get("value", p.get("name")))
                prob = p.get("probability", p.get("prob", p.get("score", p.get("p"))))
            else:
                label, prob = p, None
            if label is None:
                continue
            items.append({"label": str(label), "probability": None if prob is None else float(prob)})
        if items:
            out[str(column)] = items
    return out


# -- copyright ------------------------------------------------------------------------------------
def open_copyright_checker(registry: Path, free: Collection | None, max_alternatives: int = 50) -> CopyrightChecker | None:
    """A checker of uploads against the registry at ``registry`` (alternatives from ``free``), or None
    while :mod:`artlens.copyright` is not installed. A missing, empty or untrained registry raises the
    copyright module's own error, which says what to run."""
    try:
        from artlens.copyright.check import CopyrightChecker as Checker
        from artlens.copyright.registry import CopyrightRegistry
    except ImportError as exc:
        log.info("copyright checks unavailable: %s", exc)
        return None
    checker = Checker(CopyrightRegistry.open(registry), free, alternatives=max_alternatives)

    def check(image, k: int, md5: str | None = None, fast: bool = False):
        result = checker.check_images([image], ["upload"], [md5], fast=fast)[0]
        data = result.as_dict()
        data["alternatives"] = data.get("alternatives", [])[:k]
        return data

    return check


def normalise_verdict(raw: Any) -> dict:
    """The JSON answer of a check: verdict, matched work (id, owner, licence, title), score, stage,
    alternatives, and the rest as evidence. File paths are dropped."""
    data = plain(raw)
    if isinstance(data, list):  # one result per checked image
        data = data[0] if data else {}
    if not isinstance(data, dict):
        raise ApiError(500, "the copyright checker answered something that is not a result",
                       "this is a bug in the copyright module")
    verdict = str(data.get("verdict", "unknown"))
    if verdict == "error":
        raise ApiError(422, f"the image cannot be checked: {data.get('error') or 'unknown error'}", "upload another image")
    work = data.get("work") if isinstance(data.get("work"), dict) else {}
    for key, field_name in (("work_id", "id"), ("owner", "owner"), ("licence", "licence"), ("title", "title")):
        if data.get(key) is not None:
            work.setdefault(field_name, data[key])
    alternatives = [alt if isinstance(alt, dict) else {"id": alt} for alt in data.get("alternatives") or []]
    known = {"verdict", "work", "work_id", "owner", "licence", "title", "score", "stage", "alternatives", "error"}
    registered = verdict.lower() == "registered"
    return {
        "verdict": verdict,
        "registered": registered,
        "owner": work.get("owner"),
        "work": work if registered and work else None,
        "score": data.get("score"),
        "stage": data.get("stage"),
        "alternatives": alternatives,
        "evidence": {k: v for k, v in data.items() if k not in known and v is not None} or None,
    }
