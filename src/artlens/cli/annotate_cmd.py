"""`artlens annotate FILE`: predict an artwork's label columns with top-k probabilities."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from artlens.annotation import DEFAULT_CLASSES
from artlens.cli import (
    app,
    collection_option,
    json_option,
    make_console,
    open_collection,
    print_json,
)


@app.command()
def annotate(
    file: Path = typer.Argument(..., help="Image file to annotate."),
    labels: list[str] = typer.Option(None, "--label", "-l", help="Column to predict (repeatable; default: every "
                                                                  "label-like column of the collection)."),
    k: int = typer.Option(DEFAULT_CLASSES, "-k", "--k", help="How many classes to show per column."),
    head: Path = typer.Option(None, "--head", help="Use this head file instead of the collection's own."),
    collection: Path = collection_option(),
    as_json: bool = json_option("Print one JSON object: file, annotations {column: {method, top: [{label, "
                                "probability}]}}."),
):
    """Predict each label column (artist, style, genre, medium, ...) of an image with top-k probabilities:
    from the learned head for the column it was trained on, else a probe on pretrained features."""
    from artlens.annotation import Annotator, label_columns, no_label_columns_error
    from artlens.errors import ArtlensError
    from artlens.models import load_head

    if not file.exists():
        raise ArtlensError(f"image {file} does not exist", "check the path given to annotate")
    coll = open_collection(collection)
    columns = labels or label_columns(coll.catalog)
    if not columns:
        raise no_label_columns_error(coll.catalog)
    annotator = Annotator(coll, load_head(head) if head else None)
    annotator.fit(columns)
    result = annotator.annotate_image(str(file), k=k)
    if as_json:
        print_json({"file": str(file), "annotations": result})
        return
    table = Table("column", "prediction", "probability", "method", title=str(file))
    for column, item in result.items():
        for rank, top in enumerate(item["top"]):
            table.add_row(column if rank == 0 else "", top["label"], f"{top['probability']:.3f}",
                          item["method"] if rank == 0 else "")
    make_console().print(table)
