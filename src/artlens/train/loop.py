"""The training loop: plain PyTorch over cached feature vectors (no image is decoded), seeded and
deterministic on CPU, with early stopping on a validation split.

``train_head`` is the centralised run; ``fit_local_epochs`` is the unit a federated client runs on its
own data between rounds (the federated layer wraps these and never the other way round).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from artlens.devices import cpu_threads, resolve_device
from artlens.errors import ArtlensError
from artlens.metrics import leave_self_out_map
from artlens.models.inputs import FeatureSet
from artlens.progress import QUIET, Reporter
from artlens.train.config import TrainConfig
from artlens.train.objectives import Objective, Prepared, create_objective, head_device
from artlens.train.privacy import (
    DPPlan,
    PrivateStepper,
    poisson_batches,
    steps_per_epoch,
)


@dataclass
class History:
    """Per-epoch metrics of a run and which epoch's weights were kept."""

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    monitor: str = "val_map"
    stopped_early: bool = False
    seconds: float = 0.0
    privacy: dict | None = None  # record-level DP: the (epsilon, delta) spent and how (train.privacy)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def best(self) -> dict:
        return next((e for e in self.epochs if e["epoch"] == self.best_epoch), {})


@contextlib.contextmanager
def training_device(head, device: str | torch.device | None) -> Iterator[torch.device]:
    """``head`` on ``device`` (``TrainConfig.device``) for the block, then back where it was (the CPU
    for every head that is saved or sent), whatever happens in the block."""
    before, target = head_device(head), resolve_device(device)
    head.to(target)
    try:
        yield target
    finally:
        head.to(before)


def make_optimizer(head, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def private_plan(config: TrainConfig, n: int, epochs: int, extra=()) -> DPPlan:
    """The DP-SGD noise for ``epochs`` passes over ``n`` training artworks (Poisson batches of
    ``config.batch_size`` on average) within ``config.dp_records``."""
    batch = min(config.batch_size, n)
    return DPPlan.calibrate(config.dp_records, config.dp_delta, config.dp_clip, batch / n,
                            epochs * steps_per_epoch(n, batch), tuple(extra))


def private_stepper(head, data: FeatureSet | Prepared, config: TrainConfig, plan: DPPlan,
                    optimizer: torch.optim.Optimizer | None = None, objective: Objective | None = None,
                    seed: int | None = None) -> PrivateStepper:
    """The DP-SGD steps of ``plan`` for ``head`` (its optimizer and objective, as ``fit_local_epochs`` uses)."""
    return PrivateStepper(head, objective or create_objective(config), optimizer or make_optimizer(head, config), plan,
                          min(config.batch_size, len(data)), config.seed if seed is None else seed)


def fit_local_epochs(head, data: FeatureSet | Prepared, config: TrainConfig, epochs: int = 1,
                     optimizer: torch.optim.Optimizer | None = None, objective: Objective | None = None,
                     rng: np.random.Generator | None = None, private: PrivateStepper | None = None) -> dict[str, float]:
    """Train ``head`` in place for ``epochs`` passes over ``data``; returns the last pass's mean loss and
    (for classifier losses) accuracy. A fresh optimizer and a ``config.seed`` generator by default.
    ``private``: DP-SGD steps (Poisson batches, clipped per-artwork gradients, noise) instead of
    plain ones; it holds its own optimizer and objective."""
    _check_trainable(data)
    data = data if isinstance(data, Prepared) else Prepared(head, data)
    optimizer = optimizer or make_optimizer(head, config)
    objective = objective or create_objective(config)
    rng = rng or np.random.default_rng(config.seed)
    stats: dict[str, float] = {}
    with training_device(head, config.device), cpu_threads(config.threads), \
            torch.enable_grad():  # loading a backbone turns grad off process-wide
        head.train()
        for _ in range(epochs):
            total, count, correct, seen = 0.0, 0, 0, 0
            if private is not None:
                rate, steps = private.plan.sample_rate, steps_per_epoch(len(data), private.batch_size)
                batches = poisson_batches(len(data), rate, steps, rng)
            else:
                batches = objective.batches(head, data, rng)
            for batch in batches:
                if private is not None:
                    summed, right = private.step(data, batch)
                    total, count = total + summed, count + len(batch)
                    if right >= 0:
                        correct, seen = correct + right, seen + len(batch)
                    continue
                loss, right = objective.loss(head, data, batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                n = len(batch[0]) if isinstance(batch, tuple) else len(batch)
                total += loss.item() * n
                count += n
                if right >= 0:
                    correct, seen = correct + right, seen + n
            stats = {"loss": total / max(count, 1)}
            if seen:
                stats["acc"] = correct / seen
        head.eval()
    head.weights_changed()
    return stats


@torch.no_grad()
def evaluate_head(head, data: FeatureSet | Prepared, objective: Objective,
                  reference: FeatureSet | Prepared | np.ndarray | None = None, seed: int = 0) -> dict[str, float]:
    """Loss (same objective, fixed sampling), accuracy (classifier, or nearest class centroid of
    ``reference``: a labelled set, or the centroids themselves) and retrieval mAP within ``data`` on
    the first label column."""
    data = data if isinstance(data, Prepared) else Prepared(head, data)
    head.eval()
    rng = np.random.default_rng(seed)
    total, count = 0.0, 0
    for batch in objective.batches(head, data, rng):
        loss, _ = objective.loss(head, data, batch)
        n = len(batch[0]) if isinstance(batch, tuple) else len(batch)
        total, count = total + loss.item() * n, count + n
    emb = data.embed(head)
    codes = data.labels[:, 0]
    out = {"loss": total / max(count, 1), "map": leave_self_out_map(emb, codes)}
    if objective.trains_classifier:
        out["acc"] = float(np.mean(head.predict_proba(emb).argmax(axis=1) == codes))
    elif reference is not None:
        if not isinstance(reference, np.ndarray):
            reference = reference if isinstance(reference, Prepared) else Prepared(head, reference)
            reference = class_centroids(reference.embed(head), reference.labels[:, 0])
        out["acc"] = float(np.mean(np.argmax(emb @ reference.T, axis=1) == codes))
    return out


def train_head(head, train: FeatureSet, val: FeatureSet, config: TrainConfig, reporter: Reporter = QUIET) -> History:
    """``_train_head`` on ``config.device``; the trained head ends where it was (the CPU, as built)."""
    with training_device(head, config.device):
        return _train_head(head, train, val, config, reporter)


def _train_head(head, train: FeatureSet, val: FeatureSet, config: TrainConfig, reporter: Reporter = QUIET) -> History:
    """Train ``head`` in place with early stopping on ``config.monitor``; keeps the best epoch's weights.
    Heads trained without their classifier (triplet, supcon) get it fitted on the embeddings at the end.
    The head's input transforms must be fitted already (``head.fit_inputs``)."""
    _check_trainable(train)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    objective = create_objective(config)
    optimizer = make_optimizer(head, config)
    train_set, val_set = Prepared(head, train), Prepared(head, val)
    private = None
    if config.private:
        plan = private_plan(config, len(train_set), config.epochs)
        private = private_stepper(head, train_set, config, plan, optimizer, objective)
    history = History(monitor=config.monitor)
    best_score, best_state, stale = -np.inf, copy.deepcopy(head.state_dict()), 0
    start = time.perf_counter()
    bar = reporter.bar(range(1, config.epochs + 1), desc=f"train ({config.loss})", unit="epoch")
    with cpu_threads(config.threads):
        for epoch in bar:
            t = time.perf_counter()
            stats = fit_local_epochs(head, train_set, config, 1, optimizer, objective, rng, private)
            record = {"epoch": epoch, **{f"train_{k}": v for k, v in stats.items()}}
            centroids = None
            if not objective.trains_classifier:  # accuracy by the nearest class centroid of the train split
                emb, codes = train_set.embed(head), train.labels[:, 0]
                centroids = class_centroids(emb, codes)
                record["train_acc"] = float(np.mean(np.argmax(emb @ centroids.T, axis=1) == codes))
            val_stats = evaluate_head(head, val_set, objective, centroids, config.seed)
            record.update({f"val_{k}": v for k, v in val_stats.items()})
            if private is not None:
                record["epsilon"] = private.plan.record(private.steps)["epsilon"]
            record["seconds"] = round(time.perf_counter() - t, 3)
            history.epochs.append(record)
            score = record.get(config.monitor)
            if score is None:
                raise ArtlensError(f"cannot monitor {config.monitor!r}", f"choose one of: {', '.join(sorted(record))}")
            if config.monitor.endswith("loss"):
                score = -score
            if score > best_score + 1e-6:
                best_score, best_state, stale, history.best_epoch = score, copy.deepcopy(head.state_dict()), 0, epoch
            else:
                stale += 1
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_map=f"{record['val_map']:.3f}",
                            val_acc=f"{record.get('val_acc') or 0:.3f}")
            if stale >= config.patience:
                history.stopped_early = True
                break
        bar.close()
        head.load_state_dict(best_state)
        if not objective.trains_classifier and head.has_classifier:
            fit_classifier(head, train_set, config.seed)
    head.eval()
    history.seconds = round(time.perf_counter() - start, 2)
    if private is not None:
        history.privacy = private.plan.record(private.steps)
    return history


def fit_classifier(head, data: FeatureSet | Prepared, seed: int = 0) -> None:
    """Fit the head's linear classifier on its frozen embeddings (multinomial logistic regression)."""
    from sklearn.linear_model import LogisticRegression

    data = data if isinstance(data, Prepared) else Prepared(head, data)
    emb = data.embed(head)
    codes = data.labels[:, 0]
    keep = codes >= 0
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed).fit(emb[keep], codes[keep])
    n_classes, dim = head.classifier.weight.shape
    weight = np.zeros((n_classes, dim), dtype=np.float32)
    bias = np.full(n_classes, -30.0, dtype=np.float32)  # classes absent from training are never predicted
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # sklearn's binary form: one row for the second class
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight[model.classes_] = coef
    bias[model.classes_] = intercept
    with torch.no_grad():
        head.classifier.weight.copy_(torch.from_numpy(weight))
        if head.classifier.bias is not None:
            head.classifier.bias.copy_(torch.from_numpy(bias))
    head.weights_changed()


def class_centroids(emb: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(classes, dim) mean embedding of each class code 0..max (zeros for a class without rows)."""
    n_classes = int(codes.max()) + 1 if len(codes) else 0
    centroids = np.zeros((n_classes, emb.shape[1]), dtype=np.float32)
    for c in range(n_classes):
        if (codes == c).any():
            centroids[c] = emb[codes == c].mean(axis=0)
    return centroids


def _check_trainable(data: FeatureSet | Prepared) -> None:
    if data.labels is None or len(data) < 2:
        raise ArtlensError("nothing to train on: fewer than two labelled artworks with features",
                           "ingest labelled artworks with `artlens ingest DIR --labels CSV`")
