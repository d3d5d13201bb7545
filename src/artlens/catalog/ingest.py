"""Record a folder of images (and optional metadata CSV) in the catalog, incrementally.

A file whose size and modification time are unchanged is not read again; new and changed files are
decoded (to reject corrupt ones) and hashed; files gone from the folder are dropped. Work commits in
batches, so an interrupted ingest resumes where it stopped and never leaves half a record.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from artlens.catalog.db import Catalog
from artlens.catalog.metadata import MetadataTable, read_metadata
from artlens.errors import CollectionError, ImageDecodeError, MetadataError
from artlens.imaging import IMAGE_SUFFIXES, load_image
from artlens.progress import QUIET, Reporter
from artlens.storage import boundary

# Files that commonly sit beside images and are not meant as artworks: not reported as skipped.
_QUIET_SUFFIXES = {".csv", ".tsv", ".md", ".txt", ".json", ".toml", ".yaml", ".yml", ".db", ".sqlite", ".npz"}


@dataclass
class IngestReport:
    scanned: int = 0
    added: int = 0  # new artworks
    updated: int = 0  # changed files
    unchanged: int = 0
    duplicates: int = 0  # files whose content was already in the catalog
    removed: int = 0  # artworks dropped because their files are gone
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    missing_from_csv: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the metadata CSV had that was ignored or conflicting
    removed_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "scanned": self.scanned, "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "duplicates": self.duplicates, "removed": self.removed,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "missing_from_csv": self.missing_from_csv, "notes": self.notes,
        }


def scan_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """(candidate image files, other files) under ``folder``, sorted, hidden entries ignored."""
    images, others = [], []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                images.append(path)
            elif suffix not in _QUIET_SUFFIXES:
                others.append(path)
    return images, others


def file_md5(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def check_ingest_inputs(folder: str | Path) -> Path:
    """Fail before anything is created when the folder is not there; returns its resolved path."""
    folder = Path(folder).expanduser().resolve()
    if not folder.exists():
        raise CollectionError(f"folder {folder} does not exist", "check the path given to `artlens ingest`")
    if not folder.is_dir():
        raise CollectionError(f"{folder} is not a folder", "give `artlens ingest` a folder of images")
    return folder


def ingest_folder(
    catalog: Catalog,
    folder: str | Path,
    labels: str | Path | None = None,
    max_pixels: int = 89_478_485,
    batch_size: int = 256,
    reporter: Reporter = QUIET,
) -> IngestReport:
    """Bring the catalog in line with ``folder`` (and the metadata CSV ``labels``)."""
    folder = check_ingest_inputs(folder)
    table: MetadataTable | None = read_metadata(labels) if labels else None
    images, others = scan_folder(folder)
    if not images:
        raise CollectionError(
            f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}",
            "point `artlens ingest` at a folder that holds artwork images",
        )
    report = IngestReport(scanned=len(images), notes=list(table.notes) if table is not None else [])
    report.skipped += [(str(p), "not an image file type") for p in others]

    metadata: dict[str, dict[str, str]] = {}
    if table is not None:
        on_disk = {str(p) for p in images}
        for row in table.rows:
            key = str(row.path.resolve()) if row.path.exists() else str(row.path)
            if key in on_disk:
                metadata[key] = row.fields
            else:
                report.missing_from_csv.append(str(row.path))
        if table.rows and not metadata:
            raise MetadataError(
                f"none of the {len(table.rows)} paths in {table.source} is an image under {folder}",
                "CSV paths are relative to the CSV's folder (or absolute); check the CSV and the folder match",
            )

    known = catalog.file_states(under=folder)
    skipped_before = catalog.skipped_states()
    reasons = dict(catalog.skipped())
    seen: set[str] = {str(p) for p in others}
    with catalog.transaction():
        for path in others:
            catalog.record_skipped(str(path), "not an image file type", None, None)
    bar = reporter.bar(total=len(images), desc="ingest", unit="file")
    for start in range(0, len(images), batch_size):
        with catalog.transaction():
            for path in images[start : start + batch_size]:
                key = str(path)
                seen.add(key)
                _ingest_file(catalog, path, known.get(key), skipped_before.get(key), metadata.get(key), table is not None,
                             max_pixels, report, reasons.get(key))
        boundary("catalog-batch")
        bar.update(min(batch_size, len(images) - start))
    bar.close()
    with catalog.transaction():
        gone = [p for p in known if p not in seen]
        report.removed_ids = catalog.remove_files(gone)
        stale_skips = [p for p in skipped_before if p.startswith(str(folder) + "/") and p not in seen]
        catalog.remove_files(stale_skips)
        report.removed_ids += catalog.drop_orphans()
        report.removed = len(report.removed_ids)
    return report


def _ingest_file(catalog, path: Path, state, skipped_state, fields, has_table: bool, max_pixels: int, report: IngestReport,
                 reason_before: str | None = None):
    key = str(path)
    try:
        st = path.stat()
    except OSError as exc:  # e.g. a link to nothing: recorded like any skip, so `stats` counts what ingest reported
        report.skipped.append((key, f"cannot read file: {exc.strerror}"))
        catalog.record_skipped(key, f"cannot read file: {exc.strerror}", None, None)
        return
    if state is not None and state.size_bytes == st.st_size and state.mtime_ns == st.st_mtime_ns:
        report.unchanged += 1
        if has_table and fields is not None:
            catalog.set_metadata(state.artwork_id, fields)
        return
    if skipped_state is not None and skipped_state == (st.st_size, st.st_mtime_ns):
        report.skipped.append((key, reason_before or "unreadable"))
        return
    if st.st_size == 0:
        _skip(catalog, report, key, "empty file", st)
        return
    try:
        image = load_image(path, max_pixels=max_pixels)
        md5 = file_md5(path)
    except ImageDecodeError as exc:
        _skip(catalog, report, key, exc.message.removeprefix(f"{key}: "), st)  # the report names the path
        return
    except OSError as exc:  # unreadable (permissions, a vanished file)
        _skip(catalog, report, key, f"cannot read file: {exc.strerror or exc}", st)
        return
    artwork_id, is_new = catalog.add_file(key, md5, st.st_size, st.st_mtime_ns, image.width, image.height)
    if state is not None:
        report.updated += 1
    elif is_new:
        report.added += 1
    else:
        report.duplicates += 1
    if fields is not None and (is_new or has_table):
        catalog.set_metadata(artwork_id, fields)


def _skip(catalog: Catalog, report: IngestReport, key: str, reason: str, st) -> None:
    report.skipped.append((key, reason))
    catalog.record_skipped(key, reason, st.st_size, st.st_mtime_ns)
