"""`artlens eval hashing`: mAP@k of binary codes with Hamming ranking, next to the float bound."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from artlens.cli import (
    collection_option,
    eval_app,
    json_option,
    make_console,
    open_collection,
    print_json_line,
)


@eval_app.command("hashing")
def eval_hashing(
    label: str = typer.Option(..., "--label", "-l", help="Metadata column that defines relevance."),
    method: str = typer.Option("tbh-sim", "--method", help="Hasher: lsh, itq, tbh or tbh-sim."),
    bits: str = typer.Option("16,32,64", "--bits", help="Code lengths, comma-separated (multiples of 8)."),
    queries: int = typer.Option(None, "--queries", show_default=False,
                                help="Stratified, seeded query set size; the rest is the database. Default: 10 %% of "
                                "the labelled artworks, at most 1000, at least one per class."),
    k: int = typer.Option(1000, "-k", "--k", help="Rank cut-off of mAP@k."),
    features: str = typer.Option("effnet-lite0", "--features", help="Extractor whose cached vectors are hashed."),
    seed: int = typer.Option(0, "--seed"),
    collection: Path = collection_option(),
    as_json: bool = json_option("JSON Lines, one object per bit length: method, bits, map@k, k, n_queries, "
                                "float_map@k, features, label."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write report.md, report.json and map_by_bits.png into this folder."),
):
    """Hash the collection's cached features (the hasher is fitted on the database part only) and
    score Hamming ranking (ties broken by id) on a seeded stratified query set against the rest."""
    import numpy as np

    from artlens.errors import ArtlensError
    from artlens.hashing import (
        create_hasher,
        default_query_count,
        float_map_at_k,
        hashing_map_at_k,
        list_hashers,
        stratified_queries,
    )

    if method not in list_hashers():
        raise ArtlensError(f"unknown hashing method {method!r}", f"choose one of: {', '.join(list_hashers())}")
    try:
        lengths = [int(b) for b in bits.split(",")]
    except ValueError:
        raise ArtlensError(f"bad --bits {bits!r}", "give code lengths like 16,32,64") from None
    if any(b <= 0 or b % 8 for b in lengths):
        raise ArtlensError(f"code lengths must be positive multiples of 8, got {bits}", "use e.g. --bits 16,32,64")
    coll = open_collection(collection)
    labels = coll.catalog.labels(label)
    ids, vectors = coll.raw_vectors(features, sorted(labels))
    if len(ids) < 2:
        raise ArtlensError(f"no cached {features} features for labelled artworks",
                           "run `artlens ingest DIR --collection PATH` first")
    y = np.array([labels[int(i)] for i in ids])
    if queries is None:
        queries = default_query_count(y)
        if queries == 0:
            raise ArtlensError(f"every {label!r} class has a single artwork, so none can be a query",
                               "use a label whose classes have several artworks each")
        print(f"{queries} queries (10 % of {len(ids)} labelled artworks, at most 1000, at least one per class; "
              "set --queries to change)", file=sys.stderr)
    elif queries >= len(ids):
        raise ArtlensError(f"--queries {queries} leaves no database ({len(ids)} artworks)",
                           f"ask for fewer queries (at most {len(ids) - 1})")
    q_idx, db_idx = stratified_queries(y, queries, seed)
    bound = float_map_at_k(vectors[q_idx], vectors[db_idx], y[q_idx], y[db_idx], k=k)
    rows = []
    for b in lengths:
        hasher = create_hasher(method, b).fit(vectors[db_idx], seed=seed)
        score = hashing_map_at_k(hasher.encode(vectors[q_idx]), hasher.encode(vectors[db_idx]), y[q_idx], y[db_idx], k=k)
        rows.append({"method": method, "bits": b, "map@k": score, "k": k, "n_queries": len(q_idx),
                     "float_map@k": bound, "features": features, "label": label})
    if out is not None:
        from artlens.reports.hashing import write_hashing_report

        write_hashing_report(rows, out, str(coll.root))
    if as_json:
        for row in rows:
            print_json_line(row)
        return
    table = Table("method", "bits", f"mAP@{k}", "float bound", "queries", title=f"hashing by {label!r} ({features})")
    for row in rows:
        table.add_row(method, str(row["bits"]), f"{row['map@k']:.4f}", f"{bound:.4f}", str(row["n_queries"]))
    make_console().print(table)
