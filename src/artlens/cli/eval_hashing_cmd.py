"""`artlens eval hashing`: mAP@k of binary codes with Hamming ranking, next to the float bound."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from artlens.cli import (
    collection_option,
    comma_list,
    eval_app,
    json_option,
    make_console,
    open_collection,
    print_json_line,
    quiet_option,
)
from artlens.reports.hashing import HashingEvalConfig

D = HashingEvalConfig  # the defaults (class attributes of the dataclass), for the help texts


@eval_app.command("hashing")
def eval_hashing(
    label: str = typer.Option(..., "--label", "-l", help="Metadata column that defines relevance."),
    method: str = typer.Option(None, "--method", help="Hasher: lsh, itq, tbh, tbh-sim (unsupervised) or supervised "
                          f"(label-aware hash centres, learned from --label) (default: {D.method})."),
    bits: str = typer.Option(None, "--bits", help="Code lengths, comma-separated, multiples of 8 (default: "
                             f"{','.join(map(str, D.bits))})."),
    queries: int = typer.Option(None, "--queries", show_default=False,
                                help="Stratified, seeded query set size; the rest is the database. Default: 10 %% of "
                                "the labelled artworks, at most 1000, at least one per class."),
    k: int = typer.Option(None, "-k", "--k", help=f"Rank cut-off of mAP@k (default: {D.k})."),
    features: str = typer.Option(None, "--features", help="What is hashed, comma-separated: extractors' cached vectors "
                                 "or indexed aspects' vectors, side by side (default: effnet-lite0; effnet-lite0,style "
                                 "for --method supervised)."),
    seed: int = typer.Option(None, "--seed", help=f"Seed of the query split (default: {D.seed})."),
    seeds: str = typer.Option(None, "--seeds", help="Hasher seeds, comma-separated: each row is the mean over them, "
                              "the query split stays that of --seed (default: "
                              f"{','.join(map(str, D.seeds))}; --seeds 0 for a single run)."),
    collection: Path = collection_option(),
    as_json: bool = json_option("JSON Lines, one object per bit length: method, bits, map@k, k, n_queries, "
                                "float_map@k, features, label."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write report.md, report.json and map_by_bits.png into this folder."),
    quiet: bool = quiet_option(),
):
    """Hash the collection's cached features (the hasher is fitted on the database part only; the
    supervised one on its labels too) and score Hamming ranking (ties broken by id) on a seeded
    stratified query set against the rest."""
    from artlens.progress import Reporter
    from artlens.reports.hashing import evaluate_hashing, write_hashing_report
    from artlens.settings import with_changes

    config = with_changes(HashingEvalConfig(label=label), {
        "method": method, "bits": comma_list(bits, "--bits", int, "16,32,64"), "queries": queries, "k": k,
        "features": features, "seed": seed, "seeds": comma_list(seeds, "--seeds", int, "0,1,2")})
    coll = open_collection(collection)
    rows = evaluate_hashing(coll, config, Reporter(not quiet))
    if out is not None:
        write_hashing_report(rows, out, str(coll.root))
    if as_json:
        for row in rows:
            print_json_line(row)
        return
    table = Table("method", "bits", f"mAP@{config.k}", "float bound", "queries",
                  title=f"hashing by {label!r} ({config.inputs})")
    for row in rows:
        table.add_row(row["method"], str(row["bits"]), f"{row['map@k']:.4f}", f"{row['float_map@k']:.4f}",
                      str(row["n_queries"]))
    make_console().print(table)
