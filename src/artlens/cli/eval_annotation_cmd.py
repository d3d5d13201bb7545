"""`artlens eval annotation`: top-1 / top-3 accuracy of annotation on a held-out split."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from artlens.cli import (
    collection_option,
    eval_app,
    json_option,
    make_console,
    open_collection,
    print_json,
)


@eval_app.command("annotation")
def eval_annotation(
    labels: list[str] = typer.Option(None, "--label", "-l", help="Column to evaluate (repeatable; default: every "
                                                                  "label-like column)."),
    split: str = typer.Option("test", "--split", help="Held-out split scored: test or val (probes learn from the rest)."),
    head: Path = typer.Option(None, "--head", help="Use this head file instead of the collection's own."),
    collection: Path = collection_option(),
    as_json: bool = json_option("Print one JSON object {column: {method, top1, top3, classes, n_test, n_train}}, and "
                                "skipped: {column: reason} when a default column could not be scored."),
):
    """Annotation accuracy per label column on artworks held out of training (the head's stored split,
    the collection's split column, or a stratified seeded split). Without --label, a column that
    cannot be split (a class of one artwork) is skipped with its reason."""
    from artlens.annotation import (
        evaluate_annotation,
        label_columns,
        no_label_columns_error,
    )
    from artlens.errors import ArtlensError
    from artlens.models import load_head
    from artlens.progress import Reporter

    if split not in ("val", "test"):
        raise ArtlensError(f"cannot score annotation on split {split!r}", "use --split test or --split val")
    coll = open_collection(collection)
    columns = labels or label_columns(coll.catalog)
    if not columns:
        raise no_label_columns_error(coll.catalog)
    skipped: dict[str, str] = {}
    result = evaluate_annotation(coll, columns, split, load_head(head) if head else None,
                                 skipped=None if labels else skipped)
    if as_json:
        print_json({**result, "skipped": skipped} if skipped else result)
        return
    for column, reason in skipped.items():
        Reporter().notice(f"skipped {column}: {reason}")
    table = Table("column", "method", "top-1", "top-3", "classes", "test", "train", title=f"annotation on the {split} split")
    for column, r in result.items():
        table.add_row(column, r["method"], f"{r['top1']:.4f}", f"{r['top3']:.4f}", str(r["classes"]),
                      str(r["n_test"]), str(r["n_train"]))
    make_console().print(table)
