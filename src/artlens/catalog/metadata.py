"""Read artwork metadata CSVs (SemArt, WikiArt, or any CSV with a path column).

:func:`read_metadata` returns a :class:`MetadataTable`: one :class:`MetadataRow` per image, with
the image's absolute path and its other columns under canonical lower snake_case names
(``artist``, ``title``, ``style``, ...). Rows whose image file does not exist are kept: reporting
them is the ingest step's job.

Formats:

* ``semart``: the SemArt CSVs (tab-separated, Windows/latin-1 encoded, header ``IMAGE_FILE
  DESCRIPTION AUTHOR TITLE TECHNIQUE DATE TYPE SCHOOL TIMEFRAME``); image files are looked up
  beside the CSV and then in an ``Images/`` (or ``images/``) folder beside it.
* ``wikiart``: the headerless ArtGAN WikiArt split CSVs (``Style/artist_title.jpg,<class>``);
  ``style`` comes from the folder the file is in, ``artist`` from the file name before the first ``_``.
* ``generic``: any delimited file (``,`` ``;`` tab ``|``, sniffed from the header line) with a
  header that names a path column (see :data:`PATH_COLUMNS`).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from artlens.errors import MetadataError
from artlens.imaging import IMAGE_SUFFIXES

__all__ = [
    "COLUMN_ALIASES",
    "PATH_COLUMNS",
    "MetadataRow",
    "MetadataTable",
    "canonical_column",
    "read_metadata",
]

#: Accepted names of the image path column (after canonicalisation), by priority.
PATH_COLUMNS: tuple[str, ...] = (
    "path",
    "filepath",
    "file_path",
    "file",
    "filename",
    "file_name",
    "image",
    "image_file",
    "image_path",
    "img",
)
#: Canonical names that other spellings are folded into.
COLUMN_ALIASES: dict[str, str] = {"author": "artist", "painter": "artist"}

_DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
_SEMART_FIELDS = {"description", "artist", "title", "technique", "date", "type", "school", "timeframe"}
_SEMART_IMAGE_DIRS = ("Images", "images")
_WIKIART_KINDS = ("artist", "genre", "style")


@dataclass(frozen=True)
class MetadataRow:
    """One image: its absolute ``path`` and its other non-empty columns (values stripped)."""

    path: Path
    fields: dict[str, str]


@dataclass(frozen=True)
class MetadataTable:
    """The rows of one metadata file, first row per image path kept."""

    source: Path
    format: str  # "semart" | "wikiart" | "generic"
    columns: tuple[str, ...]  # canonical metadata column names, without the path column
    rows: tuple[MetadataRow, ...]
    #: Human-readable notes on what was skipped or ignored (duplicates, empty paths, ragged rows).
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.rows)


def canonical_column(name: str) -> str:
    """Lower snake_case form of a column name (``Image File`` / ``imageFile`` -> ``image_file``),
    with :data:`COLUMN_ALIASES` applied (``author``/``painter`` -> ``artist``)."""
    s = name.strip().lstrip("\ufeff")
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", s)  # camelCase -> camel_Case
    s = re.sub(r"[\W_]+", "_", s).strip("_").lower()
    return COLUMN_ALIASES.get(s, s)


# --------------------------------------------------------------------------------------------
# Reading text
# --------------------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise MetadataError(
                f"{path}: is a folder, not a CSV file", "pass the path of the metadata CSV file"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise MetadataError(f"{path}: metadata file not found", "check the path of the CSV") from None
    except PermissionError:
        raise MetadataError(
            f"{path}: metadata file is unreadable (permission denied)", "check the file's permissions"
        ) from None
    except OSError as e:
        raise MetadataError(
            f"{path}: metadata file is unreadable ({e.strerror or e})", "check the disk or network share"
        ) from None


def _decode(data: bytes, path: Path) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252, else latin-1 (never fails)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:8192]:
        raise MetadataError(
            f"{path}: not a text CSV (it contains binary data)",
            "export the sheet as CSV (UTF-8); Excel .xlsx files cannot be read directly",
        )
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _first_line(text: str) -> str:
    """The first non-blank physical line (a header line never spans lines in practice)."""
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def _sniff_delimiter(line: str) -> str:
    """The candidate delimiter that occurs most often outside double quotes in ``line``."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties: earlier in _DELIMITERS wins
    return best if counts[best] else ","


def _parse(text: str, delimiter: str, path: Path) -> list[tuple[int, list[str]]]:
    """(first line number, cells) for every record that is not blank."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as e:
        raise MetadataError(
            f"{path}: malformed CSV at line {start} ({e})",
            "look for an unbalanced double quote in or before that line",
        ) from None
    if records and any("\n" in c or "\r" in c for c in records[-1][1]):
        # The csv module silently lets an unclosed quote swallow the rest of the file.
        start = records[-1][0]
        tail = "".join(io.StringIO(text, newline="").readlines()[start - 1 :])
        try:
            for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter, strict=True):
                pass
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                raise MetadataError(
                    f"{path}: unbalanced double quote: the quoted field opened at line {start} never closes",
                    'close the quote, or double any quote inside a quoted field ("")',
                ) from None
    return records


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------


def _looks_like_image_path(cell: str) -> bool:
    return os.path.splitext(cell.strip())[1].lower() in IMAGE_SUFFIXES


def _is_wikiart_headerless(records: list[tuple[int, list[str]]]) -> bool:
    for _, cells in records[:20]:
        cells = [c for c in cells if c.strip()] if len(cells) > 2 else cells
        if len(cells) != 2:
            return False
        rel, label = cells[0].strip(), cells[1].strip()
        if not _looks_like_image_path(rel) or not re.fullmatch(r"-?\d+", label):
            return False
    return True


def _header_names(header: list[str]) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header):
        name = canonical_column(raw) or f"column_{i + 1}"
        base, n = name, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


def _normalise_rel(value: str) -> Path:
    value = value.strip()
    if os.sep == "/" and "\\" in value:
        value = value.replace("\\", "/")  # paths written on Windows
    return Path(value)


class _Resolver:
    """Relative path -> absolute path, with SemArt's Images/ fallback when asked for."""

    def __init__(self, base: Path, fallback_dirs: tuple[str, ...] = ()):
        self.base = base
        self.fallbacks = [base / d for d in fallback_dirs if (base / d).is_dir()]

    def __call__(self, value: str) -> Path:
        rel = _normalise_rel(value)
        full = Path(os.path.normpath(self.base / rel))  # an absolute rel replaces base
        if self.fallbacks and not rel.is_absolute() and not full.exists():
            for folder in self.fallbacks:
                alt = Path(os.path.normpath(folder / rel))
                if alt.exists():
                    return alt
        return full


def _note_duplicate(line: int, fields: dict[str, str], first: tuple[int, dict[str, str]], value: str,
                    duplicates: list[int], conflicts: list[str]) -> None:
    """A second row for an image is ignored; when it disagrees with the first, that is reported too."""
    duplicates.append(line)
    first_line, first_fields = first
    differ = sorted(k for k in set(fields) | set(first_fields) if fields.get(k) != first_fields.get(k))
    if not differ:
        return
    shown = "; ".join(f"{k} {first_fields.get(k, '')!r} vs {fields.get(k, '')!r}" for k in differ[:3])
    conflicts.append(f"{value} (line {first_line} vs {line}: {shown})")


def _conflicts_notes(conflicts: list[str], limit: int = 5) -> list[str]:
    if not conflicts:
        return []
    shown = ", ".join(conflicts[:limit]) + (", ..." if len(conflicts) > limit else "")
    return [f"{_plural(len(conflicts), 'image')} listed twice with different metadata; the first row was kept "
            f"for each: {shown}"]


def _duplicates_note(lines: list[int]) -> str:
    return f"{_plural(len(lines), 'duplicate row')} for an image already listed ignored ({_lines(lines)})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _lines(lines: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in lines[:limit])
    return ("line " if len(lines) == 1 else "lines ") + shown + (", ..." if len(lines) > limit else "")


def read_metadata(
    csv_path: str | os.PathLike[str], *, image_root: str | os.PathLike[str] | None = None
) -> MetadataTable:
    """Read a metadata CSV and detect its format (``semart``, ``wikiart`` or ``generic``).

    Relative image paths are taken relative to the CSV's folder, or to ``image_root`` when given
    (the ArtGAN WikiArt CSVs, for one, sit in a folder of their own). Absolute paths are kept.
    Values are stripped and empty values omitted; column names are canonicalised with
    :func:`canonical_column`. When a path appears twice the first row wins, and rows with an
    empty path are skipped; both are counted in :attr:`MetadataTable.notes`. Image files are
    not checked, except for SemArt's ``Images/`` fallback.

    Raises :class:`MetadataError` when the file is missing, unreadable, binary or empty, has no
    data rows, is malformed (an unbalanced quote), or has no path column.
    """
    path = Path(csv_path)
    text = _decode(_read_bytes(path), path)
    header_line = _first_line(text)
    if not header_line:
        raise MetadataError(f"{path}: metadata file is empty", "it needs a header row and one row per image")
    delimiter = _sniff_delimiter(header_line)
    records = _parse(text, delimiter, path)
    if not records:  # pragma: no cover - a non-blank line always gives a record
        raise MetadataError(f"{path}: metadata file is empty", "it needs a header row and one row per image")
    base = Path(image_root) if image_root is not None else path.parent
    base = Path(os.path.abspath(base))
    source = Path(os.path.abspath(path))

    if _is_wikiart_headerless(records):
        return _read_wikiart(records, source, base)

    header = records[0][1]
    names = _header_names(header)
    if _looks_like_image_path(header[0]) and not any(n in PATH_COLUMNS for n in names):
        raise MetadataError(
            f"{path}: no header row (the first line, {header_line[:80]!r}, looks like data)",
            "add a header line naming the columns, with the image paths under one of: "
            + ", ".join(PATH_COLUMNS),
        )
    path_col = next((names.index(n) for n in PATH_COLUMNS if n in names), None)
    if path_col is None:
        found = ", ".join(repr(h.strip()) for h in header) or "none"
        raise MetadataError(
            f"{path}: no image path column (columns found: {found}; "
            f"read as {_DELIMITER_NAMES[delimiter]}-separated)",
            f"name the column with the image paths one of: {', '.join(PATH_COLUMNS)}",
        )
    is_semart = names[path_col] == "image_file" and len(_SEMART_FIELDS.intersection(names)) >= 4
    fmt = "semart" if is_semart else "generic"
    resolve = _Resolver(base, _SEMART_IMAGE_DIRS if is_semart else ())

    data = records[1:]
    if not data:
        raise MetadataError(f"{path}: the header has no rows under it", "add one row per image")

    rows: list[MetadataRow] = []
    seen: dict[Path, tuple[int, dict[str, str]]] = {}
    duplicates: list[int] = []
    conflicts: list[str] = []
    empty_path: list[int] = []
    ragged: list[int] = []
    width = len(names)
    for line, cells in data:
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            ragged.append(line)
        value = cells[path_col].strip() if path_col < len(cells) else ""
        if not value:
            empty_path.append(line)
            continue
        full = resolve(value)
        fields = {
            name: cell.strip()
            for i, (name, cell) in enumerate(zip(names, cells))
            if i != path_col and cell.strip()
        }
        if full in seen:
            _note_duplicate(line, fields, seen[full], value, duplicates, conflicts)
            continue
        seen[full] = (line, fields)
        rows.append(MetadataRow(full, fields))

    if not rows:
        raise MetadataError(
            f"{path}: no row has an image path in column {header[path_col].strip()!r}",
            "fill in the path of each image, relative to the CSV's folder or absolute",
        )
    notes: list[str] = []
    if duplicates:
        notes.append(_duplicates_note(duplicates))
    notes += _conflicts_notes(conflicts)
    if empty_path:
        notes.append(
            f"{_plural(len(empty_path), 'row')} without an image path skipped ({_lines(empty_path)})"
        )
    if ragged:
        notes.append(
            f"{_plural(len(ragged), 'row')} with more cells than the header; "
            f"extra cells ignored ({_lines(ragged)})"
        )
    columns = tuple(n for i, n in enumerate(names) if i != path_col)
    return MetadataTable(source, fmt, columns, tuple(rows), tuple(notes))


def _read_wikiart(records: list[tuple[int, list[str]]], source: Path, base: Path) -> MetadataTable:
    stem = source.stem.lower()
    kind = next((k for k in _WIKIART_KINDS if stem.startswith(k)), None)
    label_col = f"{kind}_class" if kind else "class"
    resolve = _Resolver(base)
    rows: list[MetadataRow] = []
    seen: dict[Path, tuple[int, dict[str, str]]] = {}
    duplicates: list[int] = []
    conflicts: list[str] = []
    for line, cells in records:
        cells = [c for c in cells if c.strip()]
        rel, label = cells[0].strip(), cells[1].strip()
        full = resolve(rel)
        if full in seen:
            _note_duplicate(line, {label_col: label}, (seen[full][0], {label_col: seen[full][1][label_col]}), rel,
                            duplicates, conflicts)
            continue
        parts = _normalise_rel(rel).parts
        fields: dict[str, str] = {}
        if len(parts) >= 2:
            style = parts[-2].replace("_", " ").strip()
            if style:
                fields["style"] = style
        name = Path(parts[-1]).stem if parts else ""
        if "_" in name:
            artist = name.split("_", 1)[0].strip()
            if artist:
                fields["artist"] = artist
        fields[label_col] = label
        seen[full] = (line, fields)
        rows.append(MetadataRow(full, fields))
    notes = (_duplicates_note(duplicates),) if duplicates else ()
    notes += tuple(_conflicts_notes(conflicts))
    return MetadataTable(source, "wikiart", ("style", "artist", label_col), tuple(rows), notes)
