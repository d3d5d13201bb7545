"""`artlens eval report`: the seed papers' tables on the user's own collection."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from artlens.cli import collection_option, eval_app, open_collection


@eval_app.command("report")
def eval_report(
    label: str = typer.Option(..., "--label", "-l", help="Metadata column that defines relevance and classes."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.md, report.json and the PNG figures."),
    text_columns: list[str] = typer.Option(None, "--text-column", help="Text column(s) for the text-only and fused "
                                                                       "models (repeatable; default: the collection's)."),
    skip: str = typer.Option("", "--skip", help="Stages to leave out, comma-separated: retrieval, learned, annotation, "
                                                "aicrs, text, federated, map."),
    seed: int = typer.Option(0, "--seed", help="Seed of the stratified train/val/test split and of training."),
    k: int = typer.Option(60, "--k", help="Cut-off of P@k, AP@k and nDCG@k (DeepArt: 60)."),
    layer: str = typer.Option("block4", "--layer", help="Backbone layer of the Gram / Cosine / Gram·Cosine rows."),
    epochs: int = typer.Option(30, "--epochs", help="Most epochs per centralised head (early stopping on val mAP)."),
    rounds: int = typer.Option(5, "--rounds", help="Federated rounds (FedAvg and FedStyle)."),
    local_epochs: int = typer.Option(2, "--local-epochs", help="Local epochs per federated round."),
    cpus: int = typer.Option(2, "--cpus", help="CPUs for the federated simulation."),
    extract: bool = typer.Option(True, "--extract/--no-extract", help="Compute features the cache lacks (with "
                                                                      "--no-extract, rows without them are skipped)."),
    collection: Path = collection_option(),
):
    """Run the evaluation report on a seeded held-out split: DeepArt retrieval table with P@k curves,
    annotation top-1/top-3, the AICRS table (image-only, text-only LSTM, fused, FedAvg, FedStyle) with
    training curves, and an embedding map. Stages that cannot run are reported as skipped with the
    reason. Features already cached are reused; nothing is written into the collection but missing
    features."""
    from artlens.errors import ArtlensError
    from artlens.progress import Reporter
    from artlens.reports.papers import ReportConfig, run_report

    config = ReportConfig(label=label, text_columns=tuple(text_columns or ()), seed=seed, k=k, layer=layer,
                          skip=frozenset(s.strip() for s in skip.split(",") if s.strip()), epochs=epochs,
                          rounds=rounds, local_epochs=local_epochs, cpus=cpus, extract=extract)
    coll = open_collection(collection)
    try:
        columns = coll.catalog.metadata_columns()
        unknown = sorted(set(config.text_columns) - set(columns))
        if unknown:
            raise ArtlensError(f"unknown text column(s) {unknown}", f"columns of this collection: {', '.join(columns)}")
        run_report(coll, config, out, reporter=Reporter())
    finally:
        coll.close()
    Console().print(f"{out / 'report.md'}")
