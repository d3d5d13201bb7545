"""`artlens search`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from artlens.cli import (
    app,
    collection_option,
    json_option,
    make_console,
    open_collection,
    print_json,
)
from artlens.search.engine import DEFAULT_K
from artlens.search.options import parse_filters, parse_weights

LABEL_COLUMNS = ("title", "artist", "style", "genre")


def print_hits(result, console: Console | None = None, title: str | None = None) -> None:
    """A readable table of hits: score, per-aspect scores, the main metadata, and the file."""
    console = console or make_console()
    aspects = sorted({a for h in result.hits for a in h.aspects})
    table = Table(title=title, show_lines=False)
    for col in ["#", "id", "score", *aspects, "artwork", "file"]:
        table.add_column(col, overflow="fold")
    for rank, hit in enumerate(result.hits, 1):
        label = " · ".join(hit.metadata[c] for c in LABEL_COLUMNS if c in hit.metadata)[:60]
        table.add_row(str(rank), str(hit.id), f"{hit.score:.3f}",
                      *[f"{hit.aspects[a]:.3f}" if a in hit.aspects else "-" for a in aspects],
                      label, Path(hit.path).name)
    console.print(table)


@app.command()
def search(
    image: Path = typer.Option(None, "--image", "-i", help="Query by an image file."),
    text: str = typer.Option(None, "--text", "-t", help="Query by text (matches titles and descriptions)."),
    artwork_id: int = typer.Option(None, "--id", help="Query by an artwork of the collection (more like this)."),
    k: int = typer.Option(DEFAULT_K, "-k", "--k", help="Number of results."),
    aspect: str = typer.Option(None, "--aspect", "-a", help="Rank by one aspect only: content, style, colour, text, learned."),
    weights: str = typer.Option(None, "--weights", "-w", help="Mix of aspects, e.g. content=0.5,style=0.5."),
    filters: list[str] = typer.Option(None, "--filter", "-f", help="Metadata filter column=value, any case; a decade "
                                      "(1880s) matches its years (repeatable: values of one column are alternatives)."),
    head: Path = typer.Option(None, "--head", help="Apply this head file as the `learned` aspect (trained elsewhere; input "
                         "features the collection lacks are extracted and cached first)."),
    fast: bool = typer.Option(False, "--fast", help="Shortlist by Hamming distance on binary codes, then re-rank "
                              "by exact cosine: faster on very large collections, may miss a few neighbours."),
    members: Path = typer.Option(None, "--members", help="Search every member of a federation instead of a collection "
                                 "(MEMBERS.toml, as `artlens portal` reads it; --head is then the federation's head)."),
    timeout: float = typer.Option(None, "--timeout", help="With --members: seconds each member has to answer (default: 2.0)."),
    collection: Path = collection_option(),
    as_json: bool = json_option("Print one JSON object: query, weights, results[id, score, aspects, ...] "
                                "(with --members also institution per hit, and members[name, status, ms, count])."),
):
    """Find the artworks most similar to an image, a text or an artwork.

    Each hit shows its mixed score and the cosine score of every aspect, so you can see why it is similar.
    """
    from artlens.errors import ArtlensError
    from artlens.search import SearchEngine

    if image is not None and not image.exists():
        raise ArtlensError(f"query image {image} does not exist", "check the path given to --image")
    if members is not None:
        if collection is not None:
            raise ArtlensError("give --members or --collection, not both", "--members searches every member's collection")
        from artlens.cli.portal_cmd import federated_search, print_federated

        answer = federated_search(members, head, timeout, image, text, k, aspect, parse_weights(weights),
                                  parse_filters(filters), fast)
        if as_json:
            print_json(answer)
        else:
            print_federated(answer)
        return
    coll = open_collection(collection)
    if head is not None:
        from artlens.models import load_head

        coll.attach_head(load_head(head))
    engine = SearchEngine(coll)
    result = engine.search(
        image=str(image) if image is not None else None, text=text, artwork_id=artwork_id, k=k, aspect=aspect,
        weights=parse_weights(weights), filters=parse_filters(filters), fast=fast,
    )
    if as_json:
        print_json(result.as_dict())
    else:
        print_hits(result, title=f"weights: {', '.join(f'{a}={w:.2f}' for a, w in result.weights.items())}")
