"""How each loss draws its batches from a feature set and scores them (models.losses holds the maths)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.nn import functional as F

from artlens.errors import ArtlensError
from artlens.models.inputs import FeatureSet
from artlens.models.losses import (
    LOSSES,
    classification_loss,
    cosine_triplet_loss,
    supervised_contrastive_loss,
)
from artlens.models.sampling import TwoStageTripletSampler, relevance


def head_device(head) -> torch.device:
    """Where a head's weights are (the CPU for a head without any)."""
    return next((p.device for p in head.parameters()), torch.device("cpu"))


class Prepared:
    """A feature set with the head's fixed input transforms applied once (training then only runs the
    layers), its presence masks and label codes. The rows stay on the CPU; ``rows`` hands a batch to
    the device the head is on."""

    def __init__(self, head, data: FeatureSet):
        device = head_device(head)
        with torch.no_grad():
            inputs, present = data.tensors()
            self.x = {k: v.cpu() for k, v in head.transform({k: v.to(device) for k, v in inputs.items()}).items()}
        self.present = present
        self.labels = data.labels
        self.source = data

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, rows, device: torch.device | str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The transformed inputs and presence masks of ``rows``, on ``device``."""
        index = torch.from_numpy(np.asarray(rows, dtype=np.int64))
        return ({k: v[index].to(device) for k, v in self.x.items()},
                {k: v[index].to(device) for k, v in self.present.items()})

    def targets(self, rows, device: torch.device | str = "cpu") -> torch.Tensor:
        """The first label column's codes of ``rows``, on ``device``."""
        return torch.from_numpy(self.labels[rows, 0]).to(device)

    @torch.no_grad()
    def embed(self, head, batch_size: int = 4096) -> np.ndarray:
        was_training = head.training
        head.eval()
        parts = []
        for start in range(0, len(self), batch_size):
            x, present = self.rows(np.arange(start, min(start + batch_size, len(self))), head_device(head))
            parts.append(head.embed_transformed(x, present).cpu())
        head.train(was_training)
        return torch.cat(parts).numpy() if parts else np.zeros((0, head.config.dim), np.float32)


class Objective:
    """``batches`` yields what ``loss`` scores; ``trains_classifier`` says whether the head's
    classifier learns with it (otherwise it is fitted on the embeddings after training)."""

    trains_classifier = False

    def __init__(self, config):
        self.config = config

    def batches(self, head, data: Prepared, rng: np.random.Generator) -> Iterator:
        order = rng.permutation(len(data))
        size = self.config.batch_size
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            if len(rows) > 1:
                yield rows

    def loss(self, head, data: Prepared, batch) -> tuple[torch.Tensor, int]:
        """(loss, correct predictions in the batch or -1 when it does not classify)."""
        raise NotImplementedError

    # Record-level DP (``train.privacy``) needs a loss that is a sum of per-artwork terms, each
    # depending on its artwork alone and on public values: objectives that have one define
    # ``example_losses(head, x, present, target) -> (n,)`` and, where they classify, ``correct``.
    def training_presence(self, present: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The presence masks a training batch sees (optional inputs hidden at random)."""
        return drop_modalities(present, self.config.modality_dropout)

    @torch.no_grad()
    def batch_scores(self, head, x, present, target) -> tuple[float, int]:
        """(summed per-example loss, correct predictions or -1) of a batch, for the epoch's statistics."""
        losses = self.example_losses(head, x, present, target)
        return float(losses.sum()), self.correct(head, x, present, target)

    def correct(self, head, x, present, target) -> int:
        return -1


def augment_features(head, x: dict[str, torch.Tensor], codes: np.ndarray, config) -> dict[str, torch.Tensor]:
    """Feature-space augmentation of a training batch (the head's transformed inputs): within-class
    mixup (``config.mixup`` > 0: each artwork's required inputs are blended with those of another
    artwork of its class in the batch, weight ``max(l, 1 - l)`` with ``l ~ Beta(mixup, mixup)`` on its
    own, so that a class is also learnt between its artists), then Gaussian noise of standard deviation
    ``config.feature_noise`` (inputs are standardised, so in units of each dimension's spread)."""
    mixup, noise = config.mixup, config.feature_noise
    if mixup <= 0 and noise <= 0:
        return x
    required = [s.extractor for s in head.config.inputs if not s.optional]
    out = dict(x)
    if mixup > 0 and len(codes) > 1:
        # drawn on the CPU whatever the device, so that a seeded run is the same on any
        codes = torch.from_numpy(np.asarray(codes))
        partner = torch.arange(len(codes))
        for c in torch.unique(codes):
            rows = torch.nonzero(codes == c).flatten()
            partner[rows] = rows[torch.randperm(len(rows))]
        draw = torch.distributions.Beta(float(mixup), float(mixup)).sample((len(codes), 1))
        device = x[required[0]].device if required else torch.device("cpu")
        weight, partner = torch.maximum(draw, 1.0 - draw).to(device), partner.to(device)
        for name in required:
            out[name] = weight * x[name] + (1.0 - weight) * x[name][partner]
    if noise > 0:
        for name in required:
            out[name] = out[name] + float(noise) * torch.randn_like(out[name])
    return out


def drop_modalities(present: dict[str, torch.Tensor], rate: float) -> dict[str, torch.Tensor]:
    """Hide optional inputs at random while training, so the head also embeds artworks (and image
    queries) that lack them."""
    if rate <= 0:
        return present
    # drawn on the CPU whatever the device, so that a GPU run hides the same inputs as a CPU run
    return {k: v & (torch.rand(len(v)) >= rate).to(v.device) for k, v in present.items()}


class ClassifierObjective(Objective):
    """``ce`` (linear classifier) and ``proxy`` (cosine classifier = one proxy per class)."""

    trains_classifier = True

    def loss(self, head, data, rows):
        x, present = data.rows(rows, head_device(head))
        if head.training:
            present = drop_modalities(present, self.config.modality_dropout)
            x = augment_features(head, x, data.labels[rows, 0], self.config)
        logits = head.logits(head.embed_transformed(x, present))
        target = data.targets(rows, logits.device)
        loss = classification_loss(logits, target, self.config.label_smoothing)
        return loss, int((logits.argmax(dim=1) == target).sum())

    def example_losses(self, head, x, present, target) -> torch.Tensor:
        logits = head.logits(head.embed_transformed(x, present))
        return F.cross_entropy(logits, target, reduction="none", label_smoothing=self.config.label_smoothing)

    def correct(self, head, x, present, target) -> int:
        return int((head.logits(head.embed_transformed(x, present)).argmax(dim=1) == target).sum())


class TripletObjective(Objective):
    """DeepArt: cosine triplet loss over two-stage sampled triplets (one per anchor and epoch)."""

    def __init__(self, config):
        super().__init__(config)
        self._samplers: dict[int, TwoStageTripletSampler] = {}

    def sampler(self, head, data: Prepared) -> TwoStageTripletSampler:
        if id(data) not in self._samplers:
            with torch.no_grad():
                pretrained = torch.nn.functional.normalize(head.fuse(data.x, data.present), dim=1).numpy()
            self._samplers[id(data)] = TwoStageTripletSampler(
                data.labels, pretrained, self.config.hard_pool, self.config.hard_fraction)
        return self._samplers[id(data)]

    def batches(self, head, data, rng):
        a, p, n = self.sampler(head, data).sample(rng)
        size = self.config.batch_size
        for start in range(0, len(a), size):
            yield a[start : start + size], p[start : start + size], n[start : start + size]

    def loss(self, head, data, triplets):
        a, p, n = triplets
        rows, inverse = np.unique(np.concatenate([a, p, n]), return_inverse=True)
        x, present = data.rows(rows, head_device(head))
        if head.training:
            present = drop_modalities(present, self.config.modality_dropout)
        emb = head.embed_transformed(x, present)[torch.from_numpy(inverse).to(head_device(head))]
        k = len(a)
        return cosine_triplet_loss(emb[:k], emb[k : 2 * k], emb[2 * k :], self.config.margin), -1


class SupConObjective(Objective):
    """Supervised contrastive loss; batches draw a few artworks of each of several classes so that
    every anchor has positives."""

    def batches(self, head, data, rng):
        first = data.labels[:, 0]
        classes = np.unique(first[first >= 0])
        per_class = max(2, self.config.batch_size // max(1, min(len(classes), 8)))
        pools = {c: rng.permutation(np.flatnonzero(first == c)).tolist() for c in classes}
        while True:
            live = [c for c in classes if len(pools[c]) >= 2]
            if len(live) < 2:
                return
            chosen = rng.permutation(live)[: max(2, self.config.batch_size // per_class)]
            rows = []
            for c in chosen:
                rows += pools[c][:per_class]
                del pools[c][:per_class]
            yield np.asarray(rows)

    def loss(self, head, data, rows):
        x, present = data.rows(rows, head_device(head))
        if head.training:
            present = drop_modalities(present, self.config.modality_dropout)
            x = augment_features(head, x, data.labels[rows, 0], self.config)
        emb = head.embed_transformed(x, present)
        positives = torch.from_numpy(relevance(data.labels[rows], data.labels[rows])).to(emb.device)
        return supervised_contrastive_loss(emb, positives, self.config.temperature), -1


def create_objective(config) -> Objective:
    if config.loss in ("ce", "proxy"):
        return ClassifierObjective(config)
    if config.loss == "triplet":
        return TripletObjective(config)
    if config.loss == "supcon":
        return SupConObjective(config)
    raise ArtlensError(f"unknown loss {config.loss!r}", f"choose one of: {', '.join(LOSSES)}")
