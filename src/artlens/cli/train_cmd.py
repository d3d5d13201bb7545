"""`artlens train`: learn an embedding head on a label column; it becomes the `learned` aspect."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from artlens.cli import app, collection_option, open_collection
from artlens.progress import Reporter

console = Console(stderr=True)


@app.command()
def train(
    label: str = typer.Option(..., "--label", "-l", help="Label column to learn, e.g. style (style,genre: the first "
                                                          "is predicted, all define which artworks are relevant)."),
    loss: str = typer.Option(None, "--loss", help="ce (cross-entropy), proxy (normalised softmax), triplet "
                                                  "(DeepArt, two-stage sampling) or supcon (default: the benchmark winner)."),
    features: str = typer.Option("content,style,text", "--features", help="Aspects or extractor names the head reads; "
                                                                             "text is skipped when no artwork has any."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the head to FILE, to apply elsewhere with --head FILE."),
    epochs: int = typer.Option(None, "--epochs", help="Most epochs (early stopping on the val split may end sooner)."),
    batch_size: int = typer.Option(None, "--batch-size", help="Batch size."),
    lr: float = typer.Option(None, "--lr", help="Adam learning rate."),
    patience: int = typer.Option(None, "--patience", help="Epochs without a better val mAP before stopping."),
    seed: int = typer.Option(None, "--seed", help="Seed of the split, the initial weights and the batches."),
    test_fraction: float = typer.Option(None, "--test-fraction", help="Share of each class held out for testing "
                                                                      "(0: train on all but the val split)."),
    extract: bool = typer.Option(False, "--extract", help="First compute input features the collection lacks."),
    collection: Path = collection_option(),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary: head, counts, best val, test scores."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Train a head over cached features and index the collection with it (the `learned` aspect).

    Writes COLLECTION/heads/learned.pt with its per-epoch metrics (.metrics.json) and curves
    (.curves.png), and index/learned/. The split (a `split` column, else stratified and seeded) is
    stored with the head; test scores come from artworks it never saw.
    """
    from artlens.train.loop import TrainConfig
    from artlens.train.report import plot_curves, write_metrics
    from artlens.train.run import resolve_inputs, train_collection_head

    overrides = {"loss": loss, "epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience, "seed": seed,
                 "test_fraction": test_fraction}
    config = dataclasses.replace(TrainConfig(), **{k: v for k, v in overrides.items() if v is not None})
    names = [f for f in features.split(",") if f.strip()]
    coll = open_collection(collection)
    if extract:
        specs, _ = resolve_inputs(coll, names, config)
        coll.extract([s.extractor for s in specs], reporter=Reporter(not quiet))
    run = train_collection_head(coll, label, names, config, progress=not quiet)
    count = coll.attach_head(run.head, persist=True)
    targets = [coll.head_file()] + ([out] if out else [])
    extra = {"summary": run.summary(), "config": config.as_dict()}
    for target in targets:
        if target != coll.head_file():
            run.head.save(target)
        write_metrics(run.history, target.with_suffix(".metrics.json"), extra)
        plot_curves(run.history, target.with_suffix(".curves.png"), f"{label} ({config.loss}) on {coll.root.name}")
    summary = {**run.summary(), "indexed": count, "files": [str(t) for t in targets]}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    out_console = Console()
    table = Table("", "mAP", "top-1", "top-3", "artworks", title=f"head {run.head.id} on {label!r} ({config.loss})")
    best = run.history.best
    table.add_row(f"val (best epoch {run.history.best_epoch})", f"{best.get('val_map', 0):.4f}",
                  f"{best.get('val_acc') or 0:.4f}", "", str(run.counts["val"]))
    if run.test:
        table.add_row("test", f"{run.test['map']:.4f}", f"{run.test.get('top1', 0):.4f}",
                      f"{run.test.get('top3', 0):.4f}", str(run.counts["test"]))
    out_console.print(table)
    for note in run.notes:
        console.print(f"  note: {note}")
    console.print(f"  {len(run.history.epochs)} epochs in {run.history.seconds:.1f} s; {count} artworks indexed as "
                  f"`learned`; wrote {', '.join(str(t) for t in targets)}")
