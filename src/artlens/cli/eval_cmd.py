"""`artlens eval retrieval` (other evaluations register on the same group)."""

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
from artlens.search.options import parse_weights


def read_id_file(path: Path) -> list[int]:
    from artlens.errors import ArtlensError

    try:
        return [int(line.split(",")[0]) for line in path.read_text().split() if line.strip()]
    except (OSError, ValueError) as exc:
        raise ArtlensError(f"cannot read query ids from {path}: {exc}", "give a file with one artwork id per line") from exc


@eval_app.command("retrieval")
def eval_retrieval(
    label: str = typer.Option(..., "--label", "-l", help="Metadata column that defines relevance (same value = relevant)."),
    aspect: str = typer.Option(None, "--aspect", "-a", help="Evaluate one aspect (content, style, colour, text, learned)."),
    weights: str = typer.Option(None, "--weights", "-w", help="Evaluate a mix, e.g. content=0.5,style=0.5 (default: the collection's)."),
    ids_file: Path = typer.Option(None, "--ids", help="Only these artworks (one id per line) query and are searched."),
    split: str = typer.Option("all", "--split", help="Only artworks of this split query and are searched: train, val, "
                                                     "test or all (the head's stored split, else a split column, else "
                                                     "a stratified seeded split)."),
    head: Path = typer.Option(None, "--head", help="Apply this head file as the `learned` aspect (its extractors must "
                                                   "match this collection's)."),
    collection: Path = collection_option(),
    as_json: bool = json_option("Print one JSON object: map, p@10, p@60, ap@60, ndcg@60, n_queries, weights."),
):
    """Leave-self-out retrieval: each labelled artwork queries the rest; relevant = same label."""
    from artlens.models import load_head
    from artlens.search.evaluate import evaluate_collection
    from artlens.train.split import split_ids

    coll = open_collection(collection)
    if head is not None:
        coll.attach_head(load_head(head))
    ids = read_id_file(ids_file) if ids_file else None
    if split != "all":
        in_split = split_ids(coll, label, split, coll.head())
        ids = in_split if ids is None else sorted(set(ids) & set(in_split))
    result = evaluate_collection(coll, label, aspect=aspect, weights=parse_weights(weights), ids=ids)
    if as_json:
        print_json(result)
        return
    scope = "" if split == "all" else f" on the {split} split"
    table = Table("metric", "value", title=f"retrieval by {label!r}{scope}, weights {result['weights']}")
    for key in ("map", "p@10", "p@60", "ap@60", "ndcg@60"):
        table.add_row(key, f"{result[key]:.4f}")
    table.add_row("n_queries", str(result["n_queries"]))
    make_console().print(table)
