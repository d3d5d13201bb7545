"""Every option of training a head, with its one default (the CLI maps its flags onto these; federated
training holds a ``TrainConfig`` too, see ``artlens.federated.config``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from artlens.models.fusion import HeadConfig, HeadShape
from artlens.settings import to_dict

# Measured on wikiart_styles (benchmarks/learned.py): supervised contrastive beat cross-entropy, proxy and
# triplet on both test mAP and annotation top-1.
DEFAULT_LOSS = "supcon"


@dataclass(frozen=True)
class TrainConfig:
    """How a head is trained; ``head`` is the shape of the head it trains."""

    loss: str = DEFAULT_LOSS
    epochs: int = 60
    batch_size: int = 128  # AICRS used 32; supcon wants several positives of each class per batch
    lr: float = 1e-3  # AICRS: Adam, lr 1e-3
    optimizer: str = "adam"  # adam, or sgd (plain steps: federated DP-SGD, where the server is the adaptive optimiser)
    weight_decay: float = 1e-4  # L2 regularisation of the weights
    patience: int = 10  # epochs without a better validation score before stopping
    monitor: str = "val_map"  # validation score that picks the best epoch
    seed: int = 0
    split: str = "grouped"  # grouped (look-alike groups whole in one split: unseen artists) or random (train.split)
    group_by: str | None = None  # grouped: a metadata column (e.g. artist); None: clusters of content + style features
    group_size: int = 20  # grouped by clusters: about this many artworks per cluster
    val_fraction: float = 0.15  # of each class, when the collection has no split column
    test_fraction: float = 0.15  # 0 trains on everything but the val split (nothing left to test on)
    margin: float = 0.6  # triplet margin on cosine distance (DeepArt)
    hard_pool: int = 50  # triplet stage 2: the most similar non-relevant artworks per anchor
    hard_fraction: float = 0.5  # share of triplet negatives drawn from that pool
    temperature: float = 0.1  # supcon (and fedstyle's contrastive and prototype temperature)
    label_smoothing: float = 0.0
    mixup: float = 0.0  # > 0: within-class mixup of training inputs, Beta(mixup, mixup) weights (train.objectives)
    feature_noise: float = 0.0  # std of Gaussian noise added to the standardised training inputs
    modality_dropout: float = 0.2  # chance to hide an optional input (text) of a training artwork
    threads: int = 1  # small batches (and the input PCA) run fastest on one thread on a busy, shared CPU
    device: str = "auto"  # where the head trains (artlens.devices: auto, cpu, cuda, cuda:N); saved heads are CPU tensors
    dp_records: float = 0.0  # > 0: record-level DP-SGD (train.privacy) at this epsilon for the whole run
    dp_delta: float = 1e-5  # its delta
    dp_clip: float = 1.0  # L2 bound of one artwork's gradient
    head: HeadShape = field(default_factory=HeadShape)

    def head_config(self, inputs, label: str = "", classes=()) -> HeadConfig:
        """The config of the head this trains (the proxy loss trains a cosine classifier)."""
        return self.head.config(inputs, label, classes, "cosine" if self.loss == "proxy" else "linear")

    @property
    def private(self) -> bool:
        """Whether training runs DP-SGD (one artwork's influence bounded, see ``train.privacy``)."""
        return self.dp_records > 0

    def as_dict(self) -> dict:
        return to_dict(self)
