"""Optional services the API offers when their modules are installed: annotation of an upload
(``artlens.annotation`` or ``artlens.annotate``) and the copyright check (``artlens.copyright``).

Each is a plain callable taking the decoded upload, so tests and other deployments can pass their own
to :func:`artlens.api.create_app`:

    annotator(image: PIL.Image.Image, top: int) -> {column: [(label, probability), ...]}
    copyright_checker(image: PIL.Image.Image, k: int) -> {"verdict": ..., "alternatives": [...], ...}

Without one, the module is looked up on every request (so it is wired as soon as it is installed);
until then the endpoint answers 501 with a JSON error. Results are normalised to plain JSON, and any
field that names a file path is dropped: the API never reveals where files live.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from artlens.api.errors import ApiError
from artlens.collection import Collection

log = logging.getLogger("artlens.api")

Annotator = Callable[..., Any]
CopyrightChecker = Callable[..., Any]

ANNOTATION_MODULES = ("artlens.annotation", "artlens.annotate")
COPYRIGHT_MODULE = "artlens.copyright"


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        log.warning("module %s failed to import: %s", name, exc)
        return None
    except Exception as exc:  # noqa: BLE001 - a half-written module must not take the API down
        log.warning("module %s failed to import: %s", name, exc)
        return None


def call_with_accepted(fn: Callable, *args, **kwargs):
    """Call ``fn`` with the keyword arguments it declares (all of them if it takes ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(*args, **kwargs)
    return fn(*args, **{k: v for k, v in kwargs.items() if k in params})


def _bind(factory_owner, names: tuple[str, ...], *args, **kwargs):
    """The first of ``names`` on ``factory_owner``: a classmethod/factory called with the arguments."""
    for name in names:
        factory = getattr(factory_owner, name, None)
        if callable(factory):
            return call_with_accepted(factory, *args, **kwargs)
    return None


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
def find_annotator(collection: Collection) -> Annotator | None:
    """An annotator for ``collection`` from the annotation module, or None while there is none."""
    for name in ANNOTATION_MODULES:
        module = _import(name)
        if module is None:
            continue
        for fn_name in ("annotate_image", "annotate"):
            fn = getattr(module, fn_name, None)
            if callable(fn) and not isinstance(fn, type):
                return lambda image, top, _fn=fn: call_with_accepted(_fn, collection, image, top=top, k=top)
        cls = getattr(module, "Annotator", None)
        if isinstance(cls, type):
            instance = _bind(cls, ("for_collection", "from_collection", "open", "load"), collection) or cls(collection)
            method = getattr(instance, "predict", None) or getattr(instance, "annotate", None)
            if callable(method):
                return lambda image, top, _m=method: call_with_accepted(_m, image, top=top, k=top)
    return None


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
def find_copyright_checker(registry: Path | None, free: Path | None) -> CopyrightChecker | None:
    """A checker of uploads against ``registry`` from the copyright module, or None while there is none."""
    module = _import(COPYRIGHT_MODULE)
    if module is None:
        return None
    for fn_name in ("check_image", "check_upload", "check"):
        fn = getattr(module, fn_name, None)
        if callable(fn) and not isinstance(fn, type):
            return lambda image, k, _fn=fn: call_with_accepted(_fn, image, registry=registry, free=free, k=k, top_k=k)
    for cls_name in ("CopyrightChecker", "CopyrightRegistry", "Checker"):
        cls = getattr(module, cls_name, None)
        if isinstance(cls, type) and registry is not None:
            instance = _bind(cls, ("open", "load", "from_path"), registry, free=free) or call_with_accepted(cls, registry, free=free)
            method = getattr(instance, "check_image", None) or getattr(instance, "check", None)
            if callable(method):
                return lambda image, k, _m=method: call_with_accepted(_m, image, k=k, top_k=k, free=free)
    return None


def normalise_verdict(raw: Any) -> dict:
    """{"verdict", "registered", "owner", "work", "score", "stage", "alternatives": [...]} from a result."""
    data = plain(raw)
    if isinstance(data, list):  # one result per checked file
        data = data[0] if data else {}
    if not isinstance(data, dict):
        raise ApiError(500, "the copyright checker answered something that is not a result",
                       "this is a bug in the copyright module")
    verdict = str(data.get("verdict", "unknown"))
    work = data.get("work") or data.get("match") or {}
    if not isinstance(work, dict):
        work = {"id": work}
    if data.get("work_id") is not None:
        work.setdefault("id", data.get("work_id"))
    if data.get("owner") is not None:
        work.setdefault("owner", data.get("owner"))
    alternatives = []
    for alt in data.get("alternatives") or []:
        alt = plain(alt)
        if not isinstance(alt, dict):
            alt = {"id": alt}
        alternatives.append(alt)
    known = {"verdict", "work", "match", "work_id", "owner", "score", "stage", "alternatives"}
    return {
        "verdict": verdict,
        "registered": verdict.lower() in ("registered", "protected", "match", "copyright"),
        "owner": work.get("owner") or data.get("owner"),
        "work": work or None,
        "score": data.get("score"),
        "stage": data.get("stage"),
        "alternatives": alternatives,
        "evidence": {k: v for k, v in data.items() if k not in known} or None,
    }
