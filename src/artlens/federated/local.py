"""What an institution runs between rounds: E local epochs of the plain-PyTorch loop
(:func:`artlens.train.loop.fit_local_epochs`), with the strategy's local objective:

- ``fedavg`` / ``fedadam``: the central objective unchanged (cross-entropy by default);
- ``fedprox``: that objective plus the proximal term mu/2 ||w - w_global||^2 (Li et al. 2020);
- ``fedstyle``: a supervised contrastive loss whose keys include the global style prototypes, plus
  an alignment term (cross-entropy over temperature-scaled cosines to the prototypes). An
  institution that holds a single style still sees the other styles: as anchors to move away from,
  and as virtual artworks drawn from the federation's style statistics (:class:`VirtualStyles`).
  Without the latter, E local epochs on one style let the head map everything to that style's
  anchor, and averaging such heads learns little (measured in ``benchmarks/federated.py``).

The objectives subclass ``artlens.train.objectives.Objective`` (they read the loop's ``Prepared``
rows) and are handed to the training loop; the loop itself is not copied.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from artlens.federated.config import FederatedConfig
from artlens.federated.head import prototype_statistics
from artlens.federated.transforms import STYLE_COUNT, STYLE_FACTOR, STYLE_MEAN
from artlens.models.inputs import FeatureSet
from artlens.train.loop import (
    evaluate_head,
    fit_local_epochs,
    private_plan,
    private_stepper,
    training_device,
)
from artlens.train.objectives import (
    Objective,
    Prepared,
    create_objective,
    drop_modalities,
    head_device,
)
from artlens.train.privacy import DPPlan, steps_per_epoch

VIRTUAL_KEYS = 512  # most virtual artworks a DP step contrasts with (a full-batch step must not draw one per artwork)


class ProximalObjective(Objective):
    """Another objective plus mu/2 * ||w - w_global||^2 over the trainable weights (FedProx)."""

    def __init__(self, inner: Objective, head, mu: float):
        super().__init__(inner.config)
        self.inner = inner
        self.mu = mu
        self.trains_classifier = inner.trains_classifier
        self.anchor = [p.detach().clone() for p in head.parameters()]

    def batches(self, head, data, rng):
        return self.inner.batches(head, data, rng)

    def loss(self, head, data, batch):
        loss, right = self.inner.loss(head, data, batch)
        if self.mu > 0 and head.training:
            drift = sum(((p - a) ** 2).sum() for p, a in zip(head.parameters(), self.anchor) if p.requires_grad)
            loss = loss + 0.5 * self.mu * drift
        return loss, right


class VirtualStyles:
    """Virtual artworks of every style, in the head's fitted input space: the federation's style means
    plus correlated noise of its pooled within-style covariance (LDA's Gaussian model, built from
    summed statistics; in the spirit of CCVR's virtual representations, Luo et al. 2021). They give an
    institution that holds one style examples of the others to contrast with."""

    def __init__(self, head, styles: dict[str, np.ndarray]):
        self.inputs = list(head.config.inputs)
        self.mean = torch.from_numpy(np.asarray(styles[STYLE_MEAN], dtype=np.float32))
        self.factor = torch.from_numpy(np.asarray(styles[STYLE_FACTOR], dtype=np.float32))
        self.available = torch.from_numpy(np.asarray(styles[STYLE_COUNT]) > 1)

    def sample(self, size: int, generator: torch.Generator) -> tuple[dict, dict, torch.Tensor]:
        """(inputs by extractor, presence masks, style codes) of ``size`` virtual artworks."""
        styles = torch.nonzero(self.available).flatten()
        codes = styles[torch.randint(len(styles), (size,), generator=generator)]
        flat = self.mean[codes] + torch.randn(size, self.factor.shape[0], generator=generator) @ self.factor.T
        x, present, start = {}, {}, 0
        for spec in self.inputs:
            if spec.optional:  # virtual artworks have no text
                x[spec.extractor] = torch.zeros(size, spec.dim)
                present[spec.extractor] = torch.zeros(size, dtype=torch.bool)
            else:
                x[spec.extractor] = flat[:, start : start + spec.dim]
                start += spec.dim
        return x, present, codes


class FedStyleObjective(Objective):
    """Contrastive loss over the batch and the global style prototypes, plus alignment to them.

    ``anchors`` (classes, dim) are L2-normalised and frozen during the local epochs; ``present`` says
    which classes have one yet. Plain random batches: one institution may hold a single style. With
    ``virtual``, each batch also holds as many virtual artworks of the other styles, drawn from the
    federation's per-style input statistics, so that the local epochs see every style.
    """

    trains_classifier = False

    def __init__(self, config, anchors: np.ndarray, present: np.ndarray, align_weight: float = 1.0,
                 virtual: VirtualStyles | None = None, seed: int = 0):
        super().__init__(config)
        self.anchors = torch.from_numpy(np.asarray(anchors, dtype=np.float32))
        self.present = torch.from_numpy(np.asarray(present, dtype=bool))
        self.align_weight = align_weight
        self.virtual = virtual
        self.generator = torch.Generator().manual_seed(seed)
        self._pool = None

    def loss(self, head, data, rows):
        device = head_device(head)
        x, present = data.rows(rows, device)
        if head.training:
            present = drop_modalities(present, self.config.modality_dropout)
        target = data.targets(rows, device)
        if self.virtual is not None and head.training:
            x, present, target = self._with_virtual(x, present, target, len(data))
        emb = head.embed_transformed(x, present)
        return fedstyle_loss(emb, target, self.anchors.to(device), self.present.to(device), self.config.temperature,
                             self.align_weight, scored=len(rows))

    # -- record-level DP: one loss term per artwork, against public keys (train.privacy) -----------
    def example_losses(self, head, x, present, target) -> torch.Tensor:
        """Each artwork's contrastive loss against the global prototypes and a batch of virtual
        artworks (embedded without gradient: public keys, so a term depends on its artwork alone),
        plus its alignment to its style's prototype."""
        emb = head.embed_transformed(x, present)
        anchors, known_styles = self.anchors.to(emb.device), self.present.to(emb.device)
        keys, key_labels = [], []
        if self.virtual is not None and bool(self.virtual.available.any()):
            if self._pool is None:  # drawn once per round from the federation's style statistics
                self._pool = _moved(self.virtual.sample(max(64, min(self.config.batch_size, VIRTUAL_KEYS)),
                                                        self.generator), emb.device)
            px, pp, codes = self._pool
            with torch.no_grad():
                keys.append(head.embed_transformed(px, pp))
            key_labels.append(codes)
        if known_styles.any():
            idx = torch.nonzero(known_styles).flatten()
            keys.append(anchors[idx])
            key_labels.append(idx)
        if not keys:
            return emb.sum(dim=1) * 0.0
        keys, key_labels = torch.cat(keys), torch.cat(key_labels)
        logits = emb @ keys.T / self.config.temperature
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positives = (target[:, None] == key_labels[None, :]).to(emb.dtype)
        loss = -(log_prob * positives).sum(dim=1) / positives.sum(dim=1).clamp(min=1.0)
        if known_styles.any():
            proto = (emb @ anchors.T / self.config.temperature).masked_fill(~known_styles[None, :], -1e9)
            known = known_styles[target].to(emb.dtype)
            loss = loss + self.align_weight * F.cross_entropy(proto, target, reduction="none") * known
        return loss

    def correct(self, head, x, present, target) -> int:
        if not self.present.any():
            return -1
        emb = head.embed_transformed(x, present)
        proto = (emb @ self.anchors.to(emb.device).T).masked_fill(~self.present.to(emb.device)[None, :], float("-inf"))
        return int((proto.argmax(dim=1) == target).sum())

    def _with_virtual(self, x, present, target, size: int):
        """The batch plus as many virtual artworks, drawn from a pool sampled once per round."""
        if not bool(self.virtual.available.any()):
            return x, present, target
        if self._pool is None:
            self._pool = _moved(self.virtual.sample(max(2 * size, 8 * len(target)), self.generator), target.device)
        px, pp, codes = self._pool
        rows = torch.randint(len(codes), (len(target),), generator=self.generator).to(target.device)
        x = {k: torch.cat([v, px[k][rows]]) for k, v in x.items()}
        present = {k: torch.cat([v, pp[k][rows]]) for k, v in present.items()}
        return x, present, torch.cat([target, codes[rows]])


def _moved(sample: tuple[dict, dict, torch.Tensor], device: torch.device) -> tuple[dict, dict, torch.Tensor]:
    """Virtual artworks (drawn on the CPU, the same stream on every device) on the training device."""
    x, present, codes = sample
    return ({k: v.to(device) for k, v in x.items()}, {k: v.to(device) for k, v in present.items()}, codes.to(device))


def fedstyle_loss(emb: torch.Tensor, target: torch.Tensor, anchors: torch.Tensor, present: torch.Tensor,
                  temperature: float, align_weight: float, scored: int | None = None) -> tuple[torch.Tensor, int]:
    """(loss, correct nearest-prototype predictions among the first ``scored`` rows). Without any
    prototype yet: the in-batch supervised contrastive loss alone."""
    n = len(emb)
    keys, key_labels = emb, target
    if present.any():
        idx = torch.nonzero(present).flatten()
        keys = torch.cat([emb, anchors[idx]])
        key_labels = torch.cat([target, idx])
    logits = emb @ keys.T / temperature
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(n, device=emb.device), torch.arange(n, device=emb.device)] = True
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (target[:, None] == key_labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    keep = counts > 0
    if keep.any():
        loss = (-(log_prob.masked_fill(~positives, 0.0)).sum(dim=1)[keep] / counts[keep]).mean()
    else:
        loss = emb.sum() * 0.0
    right = -1
    if present.any():
        proto_logits = (emb @ anchors.T / temperature).masked_fill(~present[None, :], float("-inf"))
        known = present[target]
        if known.any():
            loss = loss + align_weight * F.cross_entropy(proto_logits[known], target[known])
        scored = len(emb) if scored is None else scored
        right = int((proto_logits[:scored].argmax(dim=1) == target[:scored]).sum())
    return loss, right


def local_objective(head, config: FederatedConfig, anchors=None, present=None, virtual=None, seed: int = 0) -> Objective:
    train_config = config.train_config()
    if config.strategy == "fedstyle":
        if anchors is None:
            n_classes = len(head.config.classes)
            anchors, present = np.zeros((n_classes, head.config.dim), np.float32), np.zeros(n_classes, bool)
        return FedStyleObjective(train_config, anchors, present, config.align_weight, virtual, seed)
    objective = create_objective(train_config)
    if config.strategy == "fedprox":
        return ProximalObjective(objective, head, config.proximal_mu)
    return objective


def record_plan(config: FederatedConfig, n: int) -> DPPlan:
    """The DP-SGD noise of an institution with ``n`` training artworks for the whole run: every
    round's local epochs compose (``config.training.dp_records`` is the run's epsilon per artwork)."""
    return private_plan(config.training, n, config.rounds * config.local_epochs)


def train_locally(head, data: FeatureSet | Prepared, config: FederatedConfig, server_round: int, salt: int = 0,
                  anchors=None, present=None, virtual: VirtualStyles | None = None,
                  epochs: int | None = None) -> dict[str, float]:
    """``_train_locally`` on the institution's ``config.training.device``; the head ends where it was."""
    with training_device(head, config.training.device):
        return _train_locally(head, data, config, server_round, salt, anchors, present, virtual, epochs)


def _train_locally(head, data: FeatureSet | Prepared, config: FederatedConfig, server_round: int, salt: int = 0,
                   anchors=None, present=None, virtual: VirtualStyles | None = None,
                   epochs: int | None = None) -> dict[str, float]:
    """E local epochs on an institution's training split, seeded by (seed, round, salt) so that a
    run is reproducible. Returns the last epoch's mean loss and accuracy (and, under record-level
    DP, the epsilon the institution has spent after this round)."""
    if config.strategy == "fedstyle":
        head.classifier.weight.requires_grad_(False)  # its rows are the global prototypes
    seed = config.training.seed
    torch.manual_seed(seed * 1_000_003 + server_round * 1009 + salt)
    rng = np.random.default_rng([seed, server_round, salt])
    objective = local_objective(head, config, anchors, present, virtual, seed + server_round * 7919 + salt)
    epochs = epochs or config.local_epochs
    private = None
    if config.training.private:
        plan = record_plan(config, len(data))
        private = private_stepper(head, data, config.train_config(), plan, objective=objective,
                                  seed=seed * 1_000_003 + server_round * 1009 + salt)
    stats = fit_local_epochs(head, data, config.train_config(), epochs, objective=objective, rng=rng, private=private)
    if private is not None:
        private.close()
        stats["epsilon"] = private.plan.record(server_round * epochs * steps_per_epoch(len(data), private.batch_size))[
            "epsilon"]
    return stats


def virtual_prototypes(head, virtual: VirtualStyles, seed: int = 0, per_style: int = 64) -> dict[str, np.ndarray]:
    """Packed per-style statistics of virtual artworks embedded by ``head``: under record-level DP
    an institution reports these instead of its artworks' (a function of its DP-trained head and
    the federation's public style statistics, so they cost no privacy)."""
    generator = torch.Generator().manual_seed(seed)
    styles = int(virtual.available.sum())
    x, present, codes = virtual.sample(max(1, styles) * per_style, generator)
    with torch.no_grad():
        head.eval()
        emb = head.embed_transformed(x, present).numpy()
    return prototype_statistics(emb, codes.numpy(), len(head.config.classes))


def local_prototypes(head, data: FeatureSet | Prepared) -> dict[str, np.ndarray]:
    """This institution's packed per-class embedding statistics (see ``head.prototype_statistics``)."""
    data = data if isinstance(data, Prepared) else Prepared(head, data)
    return prototype_statistics(data.embed(head), data.labels[:, 0], len(head.config.classes))


def evaluate_locally(head, data: FeatureSet | Prepared, config: FederatedConfig, anchors=None,
                     present=None) -> dict[str, float]:
    """Loss, accuracy (classifier, or nearest global prototype) and mAP within ``data``."""
    data = data if isinstance(data, Prepared) else Prepared(head, data)
    objective = local_objective(head, config, anchors, present)
    if isinstance(objective, ProximalObjective):
        objective = objective.inner
    out = evaluate_head(head, data, objective, seed=config.training.seed)
    if "acc" not in out and config.strategy == "fedstyle" and present is not None and np.any(present):
        scores = data.embed(head) @ np.asarray(anchors).T
        scores[:, ~np.asarray(present, bool)] = -np.inf
        out["acc"] = float(np.mean(scores.argmax(axis=1) == data.labels[:, 0]))
    return out
