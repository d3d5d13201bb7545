"""`artlens train`: learn an embedding head on a label column; it becomes the `learned` aspect."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from artlens.cli import app, collection_option, device_option, open_collection
from artlens.progress import Reporter
from artlens.train.config import TrainConfig
from artlens.train.run import DEFAULT_FEATURES

console = Console(stderr=True)
DEFAULTS = TrainConfig()


@app.command()
def train(
    label: str = typer.Option(..., "--label", "-l", help="Label column to learn, e.g. style (style,genre: the first "
                                                          "is predicted, all define which artworks are relevant)."),
    loss: str = typer.Option(None, "--loss", help="ce (cross-entropy), proxy (normalised softmax), triplet "
                                                  "(DeepArt, two-stage sampling) or supcon "
                                                  f"(default: {DEFAULTS.loss}, the benchmark winner)."),
    features: str = typer.Option(None, "--features", help="Aspects or extractor names the head reads; text is skipped "
                                                          f"when no artwork has any (default: {','.join(DEFAULT_FEATURES)})."),
    out: Path = typer.Option(None, "--out", "-o", help="Also write the head to FILE, to apply elsewhere with --head FILE."),
    epochs: int = typer.Option(None, "--epochs", help="Most epochs (early stopping on the val split may end sooner; "
                                                      f"default: {DEFAULTS.epochs})."),
    batch_size: int = typer.Option(None, "--batch-size", help=f"Batch size (default: {DEFAULTS.batch_size})."),
    lr: float = typer.Option(None, "--lr", help=f"Adam learning rate (default: {DEFAULTS.lr:g})."),
    patience: int = typer.Option(None, "--patience", help="Epochs without a better val mAP before stopping "
                                                          f"(default: {DEFAULTS.patience})."),
    seed: int = typer.Option(None, "--seed", help="Seed of the split, the initial weights and the batches "
                                                  f"(default: {DEFAULTS.seed})."),
    split: str = typer.Option(None, "--split", help="grouped (look-alike groups whole in one split, so val and test "
                              "approximate unseen artists) or random (stratified by label) "
                              f"(default: {DEFAULTS.split}; a collection's split column wins)."),
    group_by: str = typer.Option(None, "--group-by", help="Grouped split: a metadata column whose values stay together, "
                                 "e.g. artist (default: k-means clusters of the content and style features, about "
                                 f"{DEFAULTS.group_size} artworks each)."),
    random_check: bool = typer.Option(True, "--random-check/--no-random-check",
                                      help="Also train on a random split (not kept) and show its figures beside the "
                                      "grouped ones (default: on)."),
    test_fraction: float = typer.Option(None, "--test-fraction", help="Share of each class held out for testing "
                                        f"(0: train on all but the val split; default: {DEFAULTS.test_fraction:g})."),
    dp_records: float = typer.Option(None, "--dp-records", help="Record-level differential privacy: DP-SGD (Opacus) "
                                     f"at this epsilon for the run, delta {DEFAULTS.dp_delta:g}, with the DP recipe "
                                     "(ce loss, full batches, a linear 64-d head; docs/privacy.md), over which the "
                                     "other flags apply (default: off)."),
    extract: bool = typer.Option(False, "--extract", help="First compute input features the collection lacks."),
    device: str = device_option("train the head on, and compute the --extract features on"),
    collection: Path = collection_option(),
    wait: bool = typer.Option(False, "--wait", help="When another process is writing the collection, wait for it "
                              "to finish (default: stop with an error naming it)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary: head, counts, best val, test scores."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
):
    """Train a head over cached features and index the collection with it (the `learned` aspect).

    Writes COLLECTION/heads/learned.pt with its per-epoch metrics (.metrics.json) and curves
    (.curves.png), and index/learned/ (committed together: searches see the old head and index or
    the new ones, never a mix). The split (a `split` column, else grouped: whole groups of look-alike
    works, by --group-by or by feature clusters, in train, val or test) picks the best epoch and is
    stored with the head; test scores come from artworks it never saw, beside the pretrained inputs
    on the same split and the figures of a random split.
    """
    from artlens.devices import device_name
    from artlens.settings import with_changes
    from artlens.train.privacy import private_training
    from artlens.train.run import train_learned_aspect

    device = device_name(device)  # before the collection is opened
    base = private_training(DEFAULTS, dp_records) if dp_records else DEFAULTS  # the DP recipe, then the flags
    config = with_changes(base, {"loss": loss, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                                 "patience": patience, "seed": seed, "test_fraction": test_fraction,
                                 "split": split, "group_by": group_by, "device": device})
    names = features.split(",") if features is not None else DEFAULT_FEATURES
    coll = open_collection(collection)
    reporter = Reporter(not quiet)
    with coll.writing(wait=wait, reporter=reporter):  # one writer; the head and its index commit together
        run = train_learned_aspect(coll, label, names, config, out, extract, reporter, device, random_check)
    summary = run.summary()
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    table = Table("", "mAP", "top-1", "top-3", "artworks", "best pretrained mAP",
                  title=f"head {run.head.id} on {label!r} ({config.loss}), {run.split['kind']} split")
    best = run.history.best
    table.add_row(f"val (best epoch {run.history.best_epoch})", f"{best.get('val_map', 0):.4f}",
                  f"{best.get('val_acc') or 0:.4f}", "", str(run.counts["val"]), "")
    for name, test, counts, pretrained in [(f"test ({run.split['kind']})", run.test, run.counts, run.pretrained)] + (
            [("test (random split)", run.random_split["test"], run.random_split["counts"],
              run.random_split["pretrained"])] if run.random_split else []):
        if test:
            top = max(pretrained.items(), key=lambda kv: kv[1]) if pretrained else None
            top = top if top and top[1] > 0 else None
            table.add_row(name, f"{test['map']:.4f}", f"{test.get('top1', 0):.4f}", f"{test.get('top3', 0):.4f}",
                          str(counts["test"]), f"{top[1]:.4f} ({top[0]}; {test['map'] / top[1]:.2f}x)" if top else "")
    Console().print(table)
    console.print(f"  split: {run.split['kind']}, {run.split['by']}")
    for note in run.notes:
        console.print(f"  note: {note}")
    if run.history.privacy:
        spent = run.history.privacy
        console.print(f"  record-level DP: epsilon {spent['epsilon']:.3f}, delta {spent['delta']:g} after {spent['steps']} "
                      f"steps (noise multiplier {spent['noise_multiplier']:.3f}, clip {spent['clip']:g})")
    console.print(f"  {len(run.history.epochs)} epochs in {run.history.seconds:.1f} s; {run.indexed} artworks indexed "
                  f"as `learned`; wrote {', '.join(run.files)}")
