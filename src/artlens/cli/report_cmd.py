"""`artlens eval report`: the seed papers' tables on the user's own collection."""

from __future__ import annotations

from pathlib import Path

import typer

from artlens.cli import (
    collection_option,
    comma_list,
    eval_app,
    json_option,
    open_collection,
    print_json,
    quiet_option,
)
from artlens.reports.papers import ReportConfig

D = ReportConfig  # the defaults (class attributes of the dataclass), for the help texts


@eval_app.command("report")
def eval_report(
    label: str = typer.Option(..., "--label", "-l", help="Metadata column that defines relevance and classes."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.md, report.json and the PNG figures."),
    text_columns: list[str] = typer.Option(None, "--text-column", help="Text column(s) for the text-only and fused "
                                                                       "models (repeatable; default: the collection's)."),
    skip: str = typer.Option(None, "--skip", help="Stages to leave out, comma-separated: retrieval, learned, annotation, "
                                                "aicrs, text, federated, map."),
    seed: int = typer.Option(None, "--seed", show_default=False,
                             help=f"Seed of the stratified train/val/test split and of training (default {D.seed})."),
    k: int = typer.Option(None, "-k", "--k", show_default=False,
                          help=f"Cut-off of P@k, AP@k and nDCG@k (default {D.k}, as DeepArt)."),
    layer: str = typer.Option(None, "--layer", show_default=False,
                              help=f"Backbone layer of the Gram / Cosine / Gram·Cosine rows (default {D.layer})."),
    epochs: int = typer.Option(None, "--epochs", show_default=False,
                               help=f"Most epochs per centralised head, early stopping on val mAP (default {D.epochs})."),
    rounds: int = typer.Option(None, "--rounds", show_default=False,
                               help=f"Federated rounds of FedAvg and FedStyle (default {D.rounds})."),
    local_epochs: int = typer.Option(None, "--local-epochs", show_default=False,
                                     help=f"Local epochs per federated round (default {D.local_epochs})."),
    cpus: int = typer.Option(None, "--cpus", show_default=False,
                             help=f"CPUs for the federated simulation (default {D.cpus})."),
    extract: bool = typer.Option(None, "--extract/--no-extract", show_default=False,
                                 help="Compute features the cache lacks (the default; with --no-extract, rows "
                                      "without them are skipped)."),
    collection: Path = collection_option(),
    quiet: bool = quiet_option("No stage lines or progress bars (notices still show)."),
    as_json: bool = json_option("Print report.json's object (config, stages, tables, figures) instead of the "
                                "path of report.md."),
):
    """Run the evaluation report on a seeded held-out split: DeepArt retrieval table with P@k curves,
    annotation top-1/top-3, the AICRS table (image-only, text-only LSTM, fused, FedAvg, FedStyle) with
    training curves, and an embedding map. Stages that cannot run are reported as skipped with the
    reason. Features already cached are reused; nothing is written into the collection but missing
    features."""
    from artlens.progress import Reporter
    from artlens.reports.papers import check_text_columns, run_report
    from artlens.settings import with_changes

    config = with_changes(ReportConfig(label=label), {
        "text_columns": tuple(text_columns) if text_columns else None,
        "skip": frozenset(comma_list(skip, "--skip", example="federated,map") or ()), "seed": seed, "k": k, "layer": layer,
        "epochs": epochs, "rounds": rounds, "local_epochs": local_epochs, "cpus": cpus, "extract": extract})
    coll = open_collection(collection)
    try:
        check_text_columns(coll, config)
        run_report(coll, config, out, reporter=Reporter(not quiet))
    finally:
        coll.close()
    if as_json:
        import json

        print_json(json.loads((out / "report.json").read_text(encoding="utf-8")))
    else:
        print(out / "report.md")
