"""`artlens duplicates`: groups of works in one collection that are copies of each other."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from artlens.cli import (
    app,
    collection_option,
    json_option,
    make_console,
    open_collection,
    print_json_line,
    quiet_option,
)
from artlens.copyright.duplicates import DuplicatesConfig
from artlens.progress import Reporter


@app.command()
def duplicates(
    collection: Path = collection_option(),
    threshold: float = typer.Option(None, "--threshold", help="Cosine of the copy descriptor at or above which two "
                                    f"works are copies, in (0, 1] (default {DuplicatesConfig.threshold}: calibrated "
                                    "for precision >= 0.95 on planted edited copies, docs/copyright.md)."),
    descriptor: str = typer.Option(None, "--descriptor", help="Copy descriptor: whitened (the collection's own "
                                   "whitened copy taps) or general (the general copy head, built once with `artlens "
                                   f"registry general-head`) (default {DuplicatesConfig.descriptor})."),
    as_json: bool = json_option("One JSON object per group and line: ids, paths, scores, pairs."),
    quiet: bool = quiet_option("No progress output."),
):
    """Group the works of a collection that are copies of each other (edits, re-scans, crops), beyond
    the byte-identical files the catalog already merges. Computes the copy-taps features once (cached)."""
    from artlens.copyright.duplicates import check_threshold, find_duplicates
    from artlens.settings import with_changes

    if threshold is not None:
        check_threshold(threshold)  # before the collection is opened
    config = with_changes(DuplicatesConfig(), {"threshold": threshold, "descriptor": descriptor})
    if config.descriptor == "general":
        from artlens.copyright.general import load_general

        load_general()  # built? else the instruction, before the collection is opened
    groups = find_duplicates(open_collection(collection), config, reporter=Reporter(not quiet))
    if as_json:
        for group in groups:
            print_json_line(group.as_dict())
        return
    out = make_console()
    works = sum(len(g.ids) for g in groups)
    out.print(f"{len(groups)} group(s) of copies, {works} works, at threshold {config.threshold:.3f}")
    for n, group in enumerate(groups, 1):
        out.print(f"[bold]group {n}[/] ({len(group.ids)} works)")
        for artwork_id, path, score in zip(group.ids, group.paths, group.scores):
            out.print(f"  {artwork_id:>7}  {score:.3f}  {escape(path)}")
