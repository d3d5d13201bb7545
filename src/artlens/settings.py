"""Settings dataclasses as data: one way to turn a frozen dataclass into TOML or a flat Flower run
config and back. Unknown keys are errors that name the known ones; values are coerced to the
field's declared type (tuples, nested dataclasses, dicts of dataclasses), so every option keeps its
one default in its dataclass and every reader of settings goes through here."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from artlens.errors import ArtlensError
from artlens.files import write_text

T = TypeVar("T")


def to_dict(settings) -> dict:
    """A dataclass as plain TOML-able values: tuples as lists, nested dataclasses as tables; None
    (TOML has no null) is left out and reads back as its default."""
    return _plain(dataclasses.asdict(settings))


def from_dict(cls: type[T], data: dict, where: str = "settings") -> T:
    """``cls`` from a dict as :func:`to_dict` writes it. Unknown keys and values of the wrong type
    are errors naming ``where`` (e.g. the file)."""
    if not isinstance(data, dict):
        raise ArtlensError(f"{where}: expected a table of settings, got {type(data).__name__}", "fix or delete the file")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ArtlensError(f"{where}: unknown setting(s) {', '.join(unknown)}", f"known: {', '.join(sorted(known))}")
    values = {name: _coerce(hints[name], value, f"{where}: {name}") for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ArtlensError(f"{where}: {exc}", "fix or delete the file") from exc


def save_toml(settings, path: str | Path) -> Path:
    """``settings`` as TOML, written atomically."""
    return write_text(tomli_w.dumps(to_dict(settings)), path)


def load_toml(cls: type[T], path: str | Path) -> T:
    """``cls`` read from a TOML file; unreadable files and unknown keys are errors saying what to do."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ArtlensError(f"cannot read settings {path}: {exc}", "fix or delete the file") from exc
    return from_dict(cls, data, str(path))


def with_changes(settings: T, changes: dict[str, Any]) -> T:
    """A copy with the given fields changed; ``None`` values mean "not given" and keep the current
    value (CLI options default to None so that the dataclass holds the only default). A key
    ``part__field`` changes a field of a nested dataclass."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in changes.items():
        if value is None:
            continue
        if "__" in key:
            part, name = key.split("__", 1)
            nested.setdefault(part, {})[name] = value
        else:
            top[key] = value
    for part, sub in nested.items():
        top[part] = with_changes(getattr(settings, part), sub)
    return dataclasses.replace(settings, **top) if top else settings


# -- Flower run config: flat, hyphenated keys, scalar values ---------------------------------------
SEPARATOR = "."  # nested settings in a run config: ``training.lr``, ``training.head.dim`` (as Flower flattens tables)


def to_run_config(settings, prefix: str = "") -> dict[str, bool | int | float | str]:
    """A dataclass as a Flower run config: ``snake_case`` fields as ``kebab-case`` keys, tuples as
    comma-separated strings, nested dataclasses flattened under their field's key (``training.lr``)."""
    out: dict[str, bool | int | float | str] = {}
    for f in dataclasses.fields(settings):
        key, value = prefix + f.name.replace("_", "-"), getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            out.update(to_run_config(value, key + SEPARATOR))
        elif value is not None:
            out[key] = ",".join(str(v) for v in value) if isinstance(value, tuple) else value
    return out


def from_run_config(cls: type[T], config: dict, ignore: typing.Iterable[str] = ()) -> T:
    """``cls`` from a run config written by :func:`to_run_config`. Keys the class does not know are
    errors unless listed in ``ignore`` (keys meant for another reader); missing ones default."""
    hints = typing.get_type_hints(cls)
    names = {f.name.replace("_", "-"): f.name for f in dataclasses.fields(cls) if f.init}
    ignored = set(ignore)
    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in dict(config).items():
        part, dot, rest = key.partition(SEPARATOR)
        if dot and part in names and dataclasses.is_dataclass(_unoptional(hints[names[part]])):
            nested.setdefault(names[part], {})[rest] = value
        elif key in names:
            flat[names[key]] = value
        elif key not in ignored:
            raise ArtlensError(f"run config: unknown key {key!r}", f"known: {', '.join(sorted(names))}")
    values = {name: from_run_config(_unoptional(hints[name]), sub) for name, sub in nested.items()}
    for name, value in flat.items():
        if _is_tuple(hints[name]) and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        values[name] = _coerce(hints[name], value, f"run config: {name.replace('_', '-')}")
    return cls(**values)


# -- coercion ----------------------------------------------------------------------------------
def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _is_tuple(hint) -> bool:
    return typing.get_origin(_unoptional(hint)) is tuple


def _unoptional(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _coerce(hint, value, where: str):
    if value is None:
        return None
    hint = _unoptional(hint)
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ArtlensError(f"{where}: expected a list, got {value!r}", "write it as a list, e.g. [1, 2]")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(item, v, where) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ArtlensError(f"{where}: expected a table, got {value!r}", "write it as a TOML table")
        _, item = typing.get_args(hint) or (Any, Any)
        return {k: _coerce(item, v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if hint in (int, float, str):
        if hint is not str and isinstance(value, bool):
            raise ArtlensError(f"{where}: expected a number, got {value!r}", "write a number")
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ArtlensError(f"{where}: expected {hint.__name__}, got {value!r}", f"write a {hint.__name__}") from None
    return value
