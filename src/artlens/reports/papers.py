"""The evaluation report (``artlens eval report``): on one seeded held-out split of a collection it
reproduces the seed papers' tables and writes ``report.json``, ``report.md`` and PNG figures.

Stages (each can be skipped; one that cannot run is recorded as skipped with the reason):

- ``retrieval``: DeepArt layout: colour histogram, pretrained content, Gram / Cosine / Gram·Cosine
  style and the learned embeddings: P@k, AP@k, nDCG@k (k = 60) and P@k curves;
- ``learned``: heads trained with cross-entropy and triplet loss (rows of the retrieval table);
- ``annotation``: top-1 / top-3 per label column;
- ``aicrs``: AICRS Table 4 layout: accuracy, loss and training time of image-only, text-only (LSTM)
  and fused models, plus ``federated`` FedAvg and FedStyle, with per-epoch / per-round curves;
- ``map``: a t-SNE (PCA without scikit-learn) map of the test split's embeddings coloured by label.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artlens.annotation import evaluate_annotation, label_columns
from artlens.errors import ArtlensError
from artlens.files import write_json, write_text
from artlens.progress import QUIET, Reporter
from artlens.reports import learned
from artlens.reports.annotation import evaluate_annotation_unindexed
from artlens.reports.figures import (
    embedding_map,
    plot_embedding_map,
    plot_precision_curves,
    plot_training_curves,
)
from artlens.reports.markdown import render_report
from artlens.reports.retrieval import indexed_vectors, pretrained_rows, retrieval_row

STAGES = ("retrieval", "learned", "annotation", "aicrs", "text", "federated", "map")
REPORT_VERSION = 1


@dataclass(frozen=True)
class ReportConfig:
    """Every option of the report and its one default (``artlens eval report`` maps its flags here)."""

    label: str
    text_columns: tuple[str, ...] = ()  # empty: the collection's own text columns
    seed: int = 0
    k: int = 60  # the DeepArt cut-off
    layer: str = "block4"  # the layer of the Gram / Cosine / Gram·Cosine rows
    skip: frozenset[str] = frozenset()
    epochs: int = 30  # most epochs of each centralised head (early stopping on validation mAP)
    rounds: int = 5  # federated rounds
    local_epochs: int = 2  # federated local epochs per round
    cpus: int = 2  # CPUs of the federated simulation
    map_points: int = 1500  # most test artworks drawn in the embedding map
    extract: bool = True  # compute features the cache lacks (else rows without features are skipped)

    def __post_init__(self):
        unknown = set(self.skip) - set(STAGES)
        if unknown:
            raise ArtlensError(f"unknown stage(s) to skip: {', '.join(sorted(unknown))}",
                               f"stages: {', '.join(STAGES)}")
        if self.k < 1 or self.epochs < 1 or self.rounds < 1 or self.local_epochs < 1:
            raise ArtlensError("--k, --epochs, --rounds and --local-epochs must be at least 1", "pass positive numbers")

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["skip"] = sorted(self.skip)
        d["text_columns"] = list(self.text_columns)
        return d


@dataclass
class Report:
    """What the report found; ``as_dict`` is ``report.json``."""

    collection: str
    config: ReportConfig
    n_labelled: int = 0
    n_test: int = 0
    stages: dict[str, dict] = field(default_factory=dict)  # name -> {"status": ran|skipped, "reason", "seconds"}
    retrieval: list[dict] = field(default_factory=list)
    annotation: dict = field(default_factory=dict)
    aicrs: list[dict] = field(default_factory=list)
    splits: list[dict] = field(default_factory=list)  # the ce head on the grouped and on a random split
    embedding_map: dict = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def skipped(self, stage: str, reason: str) -> None:
        self.stages[stage] = {"status": "skipped", "reason": reason}

    def as_dict(self) -> dict:
        return {"report_version": REPORT_VERSION, "collection": self.collection, "config": self.config.as_dict(),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "n_labelled": self.n_labelled, "n_test": self.n_test,
                "stages": self.stages, "retrieval": self.retrieval, "annotation": self.annotation,
                "aicrs": self.aicrs, "splits": self.splits, "embedding_map": self.embedding_map, "figures": self.figures,
                "seconds": round(self.seconds, 1)}


def flower_available() -> str | None:
    """None when federated simulation can run here, else the reason it cannot."""
    try:
        import flwr.simulation  # noqa: F401
    except ImportError:
        return 'Flower is not installed (pip install "artlens[federated]")'
    return None


def check_text_columns(collection, config: ReportConfig) -> None:
    """Refuse text columns the collection does not have (``run_report`` itself records the text stages
    as skipped when no artwork has text in them)."""
    columns = collection.catalog.metadata_columns()
    if unknown := sorted(set(config.text_columns) - set(columns)):
        raise ArtlensError(f"unknown text column(s) {unknown}", f"columns of this collection: {', '.join(columns)}")


def run_report(collection, config: ReportConfig, out: str | Path, reporter: Reporter = QUIET) -> Report:
    """Run every stage not skipped on ``collection`` and write the report into ``out``. Stage lines and
    progress bars go to ``reporter`` (progress), a stage skipped and where the report went are notices."""
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if config.text_columns:  # in memory only: the collection's settings are not changed
        collection.config = dataclasses.replace(collection.config, text_columns=tuple(config.text_columns))
    labels = collection.catalog.labels(config.label)
    report = Report(str(collection.root), config, n_labelled=len(labels))
    held = learned.test_ids(collection, config.label, config.seed)
    report.n_test = len(held)
    reporter.step(f"{collection.root}: {len(labels)} artworks labelled by {config.label!r}, {len(held)} in the "
                  "held-out test split")
    texts = collection.texts()
    if config.extract:
        _prepare_features(collection, config, bool(texts), reporter)

    heads = _timed(report, "learned", reporter, lambda: _learned_stage(collection, config, report, reporter))
    _timed(report, "retrieval", reporter,
           lambda: _retrieval_stage(collection, config, report, held, labels, heads or {}))
    columns = [config.label] + [c for c in label_columns(collection.catalog) if c != config.label]
    _timed(report, "annotation", reporter, lambda: _annotation_stage(collection, columns, config, report, heads or {}))
    _timed(report, "aicrs", reporter, lambda: _aicrs_stage(collection, config, report, heads or {}, bool(texts)))
    _timed(report, "text", reporter, lambda: _text_stage(collection, config, report, bool(texts)))
    _timed(report, "federated", reporter, lambda: _federated_stage(collection, config, report, out))
    _timed(report, "map", reporter, lambda: _map_stage(collection, config, report, held, labels, heads or {}, out))
    _figures(report, out)
    report.seconds = time.perf_counter() - start
    write_report(report, out)
    reporter.notice(f"report written to {out} in {report.seconds / 60:.1f} min")
    return report


def write_report(report: Report, out: Path) -> None:
    write_json(report.as_dict(), out / "report.json")
    write_text(render_report(report.as_dict()), out / "report.md")


# -- stages ---------------------------------------------------------------------------------------
def _timed(report: Report, stage: str, reporter: Reporter, run):
    if stage in report.config.skip:
        report.skipped(stage, "skipped by --skip")
        reporter.step(f"[{stage}] skipped (--skip)")
        return None
    reporter.step(f"[{stage}] ...")
    t = time.perf_counter()
    try:
        result = run()
    except (_Skip, ArtlensError) as reason:
        reason = str(reason) if isinstance(reason, _Skip) else reason.message
        report.skipped(stage, reason)
        reporter.notice(f"[{stage}] skipped: {reason}")
        return None
    seconds = round(time.perf_counter() - t, 1)
    report.stages[stage] = {"status": "ran", "seconds": seconds}
    reporter.step(f"[{stage}] done in {seconds} s")
    return result


class _Skip(Exception):
    """A stage that cannot run on this collection or machine; the message says why."""


def _prepare_features(collection, config: ReportConfig, has_text: bool, reporter: Reporter) -> None:
    needed = {e for _, e, _ in pretrained_rows(config.layer)}
    needed |= {collection.config.aspects[a].extractor for a in ("content", "style") if a in collection.config.aspects}
    if has_text and "text" in collection.config.aspects:
        needed.add(collection.config.aspects["text"].extractor)
    t = time.perf_counter()
    collection.extract(sorted(needed), reporter=reporter)  # only what the cache lacks is computed
    reporter.step(f"features ready ({time.perf_counter() - t:.1f} s)")


def _learned_stage(collection, config: ReportConfig, report: Report, reporter: Reporter) -> dict:
    heads = {loss: learned.train_scored_head(collection, config.label, ("content", "style"), loss, config.epochs,
                                             config.seed, reporter) for loss in ("ce", "triplet")}
    report.splits = learned.split_comparison(collection, config.label, heads["ce"], config.epochs, config.seed,
                                             reporter)
    return heads


def _retrieval_stage(collection, config: ReportConfig, report: Report, held, labels, heads: dict) -> None:
    content = collection.config.aspects.get("content")
    for name, extractor, pca in pretrained_rows(config.layer, content.extractor if content else "effnet-lite0"):
        ids, vectors = indexed_vectors(collection, extractor, held, pca)
        if len(ids) < 2:
            report.retrieval.append({"method": name, "skipped": f"no cached {extractor} features"})
            continue
        report.retrieval.append({**retrieval_row(name, ids, vectors, labels, config.k), "kind": "pretrained",
                                 "extractor": extractor})
    for loss, trained in heads.items():
        report.retrieval.append({**retrieval_row(f"learned: {loss} head [content+style]", trained.ids, trained.vectors,
                                                 labels, config.k), "kind": "learned", "loss": loss})


def _annotation_stage(collection, columns, config: ReportConfig, report: Report, heads: dict) -> None:
    head = heads["ce"].head if "ce" in heads else None
    if all(a in collection.indexed_aspects() for a in ("content", "style")):
        report.annotation = evaluate_annotation(collection, columns, "test", head, config.seed)
        return
    # no aspect indexes to probe (features cached but never indexed): the same probe on the vectors an
    # index would hold, so that the collection is left as it is
    report.annotation = evaluate_annotation_unindexed(collection, columns, heads.get("ce"), config.seed)


def _aicrs_stage(collection, config: ReportConfig, report: Report, heads: dict, has_text: bool) -> None:
    if "ce" not in heads:
        raise _Skip("needs the learned stage (the image-only model is its cross-entropy head)")
    ce = heads["ce"]
    report.aicrs.append({"model": "image-only: content + style features, classifier (ce)", **ce.scores,
                         "curve": [{"epoch": e["epoch"], "val_acc": e.get("val_acc"), "val_loss": e.get("val_loss")}
                                   for e in ce.history]})
    if has_text:
        fused = learned.train_scored_head(collection, config.label, ("content", "style", "text"), "ce",
                                          config.epochs, config.seed)
        report.aicrs.append({"model": "centralised fused (L-MFEA): content + style + text (ce)", **fused.scores,
                             "curve": [{"epoch": e["epoch"], "val_acc": e.get("val_acc"), "val_loss": e.get("val_loss")}
                                       for e in fused.history]})
    else:
        report.aicrs.append({"model": "centralised fused (L-MFEA): content + style + text (ce)",
                             "skipped": _no_text(collection)})


def _text_stage(collection, config: ReportConfig, report: Report, has_text: bool) -> None:
    name = f"text-only: LSTM over {' + '.join(collection.config.text_columns)} tokens"
    if not has_text:
        report.aicrs.append({"model": name, "skipped": _no_text(collection)})
        raise _Skip(_no_text(collection))
    report.aicrs.append({"model": name, **learned.text_lstm_scores(collection, config.label, config.seed)})


def _federated_stage(collection, config: ReportConfig, report: Report, out: Path) -> None:
    common = flower_available()
    if common is None and len(set(collection.catalog.column(config.label).values())) < 2:
        common = "fewer than two label values to make institutions of"
    reasons = []  # one per strategy that did not run; each strategy is tried on its own
    for strategy, name in (("fedavg", "FedAvg"), ("fedstyle", "FedStyle")):
        model = (f"federated {name}: one institution per {config.label}, {config.rounds} rounds x "
                 f"{config.local_epochs} local epochs")
        reason = common
        if reason is None:
            try:
                scores = learned.federated_scores(collection, config.label, strategy, config.rounds,
                                                  config.local_epochs, config.seed, out / "federated" / strategy,
                                                  config.cpus)
            except ArtlensError as exc:  # e.g. too few artworks per institution for the federated PCA
                reason = exc.message
        if reason:
            reasons.append(f"{name}: {reason}" if common is None else reason)
            report.aicrs.append({"model": model, "skipped": reason})
            continue
        report.aicrs.append({"model": model, **scores})
    if len(reasons) == 2:  # the stage ran when at least one strategy did
        raise _Skip(common or "; ".join(reasons))


def _map_stage(collection, config: ReportConfig, report: Report, held, labels, heads: dict, out: Path) -> None:
    if heads:
        best = max(heads.values(), key=lambda h: h.scores["accuracy"])
        ids, vectors, source = best.ids, best.vectors, f"learned {best.name} head"
    else:
        content = collection.config.aspects.get("content")
        ids, vectors = indexed_vectors(collection, content.extractor if content else "effnet-lite0", held, 256)
        source = "pretrained content"
    if len(ids) < 5:
        raise _Skip("fewer than 5 test artworks with vectors")
    rng = np.random.default_rng(config.seed)
    rows = np.arange(len(ids))
    if len(ids) > config.map_points:
        rows = np.sort(rng.choice(len(ids), config.map_points, replace=False))
    coords, method = embedding_map(vectors[rows], config.seed)
    names = [labels[int(i)] for i in ids[rows]]
    path = plot_embedding_map(coords, names, out / "embedding_map.png",
                              f"{method} of the {source} embeddings ({len(rows)} test artworks) by {config.label}")
    report.embedding_map = {"method": method, "source": source, "points": len(rows)}
    report.figures["embedding_map"] = path.name


def _figures(report: Report, out: Path) -> None:
    rows = [r for r in report.retrieval if "curve" in r]
    if rows:
        report.figures["precision_at_k"] = plot_precision_curves(
            rows, out / "precision_at_k.png", f"P@k on the test split by {report.config.label}").name
    curves = {r["model"].split(":")[0]: r["curve"] for r in report.aicrs if r.get("curve")}
    if curves:
        report.figures["training_curves"] = plot_training_curves(
            curves, out / "training_curves.png", "AICRS models: test accuracy / loss per epoch or round").name


def _no_text(collection) -> str:
    return f"no artwork has text in {', '.join(collection.config.text_columns)} (pass --text-column COLUMN)"
