"""Settings of a federated run, with their one default each. They travel to the Flower apps as a flat
run config (``context.run_config`` in a deployment, message configs in both), so the CLI, the
simulation and ``flwr run`` map onto the same dataclass.

Paper settings are the defaults (AICRS / FedStyle): 50 rounds, 10 local epochs, Adam 1e-3, batch 32.
The CLI flags of ``artlens federate`` show the same defaults (a test keeps them equal).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from artlens.errors import ArtlensError
from artlens.train.loop import TrainConfig

STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedstyle")


@dataclass(frozen=True)
class FederatedConfig:
    """Everything a federated run needs besides where each institution keeps its data."""

    strategy: str = "fedstyle"  # the answer to one style per institution (see docs/federated.md)
    rounds: int = 50
    local_epochs: int = 10
    label: str = "style"  # the label column: classes and relevance
    features: tuple[str, ...] = ("content", "style")  # aspect or extractor names, as for `artlens train`
    loss: str = "ce"  # local loss of fedavg / fedprox / fedadam (fedstyle brings its own)
    lr: float = 1e-3
    batch_size: int = 32
    weight_decay: float = 1e-4
    hidden: tuple[int, ...] = (512,)
    dim: int = 256
    dropout: float = 0.2
    reduce_dims: int = 256  # federated PCA of inputs wider than reduce_above
    reduce_above: int = 2048
    pca_iterations: int = 4  # subspace iterations of the federated randomised PCA
    seed: int = 0
    proximal_mu: float = 0.01  # fedprox
    server_lr: float = 0.01  # fedadam: eta
    server_tau: float = 1e-3  # fedadam: adaptivity
    temperature: float = 0.1  # fedstyle: contrastive and prototype temperature
    align_weight: float = 1.0  # fedstyle: weight of the alignment to the global style prototypes
    virtual_styles: bool = True  # fedstyle: contrast with virtual artworks of the other styles
    fraction_train: float = 1.0
    fraction_evaluate: float = 1.0
    min_clients: int = 2  # a round needs at least this many institutions
    round_timeout: float = 600.0  # seconds to wait for replies; a silent institution is left out of the round
    dp_epsilon: float = 0.0  # > 0: client-level differential privacy at this (epsilon, dp_delta)
    dp_delta: float = 1e-5
    dp_clip: float = 1.0  # L2 bound of one institution's update per round
    secagg: bool = False  # SecAgg+: the server only ever sees the sum of the updates
    secagg_shares: float = 1.0  # share of the others that hold key shares of an institution (SecAgg+)
    secagg_threshold: float = 0.6  # share of the key shares needed to reconstruct (tolerates dropouts)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ArtlensError(f"unknown strategy {self.strategy!r}", f"choose one of: {', '.join(STRATEGIES)}")
        if self.rounds < 1 or self.local_epochs < 1:
            raise ArtlensError("rounds and local epochs must be at least 1", "pass --rounds N --local-epochs E")
        if self.dp_epsilon < 0 or not 0 < self.dp_delta < 1:
            raise ArtlensError("differential privacy needs epsilon > 0 and 0 < delta < 1",
                               "pass e.g. --dp-epsilon 8 --dp-delta 1e-5")
        if self.dp_clip <= 0:
            raise ArtlensError("the DP clipping norm must be positive", "pass e.g. --dp-clip 1.0")

    @property
    def dp(self) -> bool:
        return self.dp_epsilon > 0

    def train_config(self) -> TrainConfig:
        """The plain-PyTorch training settings of one institution's local epochs."""
        return TrainConfig(loss="proxy" if self.strategy == "fedstyle" else self.loss, batch_size=self.batch_size,
                           lr=self.lr, weight_decay=self.weight_decay, seed=self.seed, temperature=self.temperature,
                           hidden=tuple(self.hidden), dim=self.dim, dropout=self.dropout,
                           reduce_dims=self.reduce_dims, reduce_above=self.reduce_above)

    # -- Flower run config: flat, hyphenated keys, scalar values ---------------------------------
    def to_run_config(self) -> dict[str, bool | int | float | str]:
        out: dict[str, bool | int | float | str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = ",".join(str(v) for v in value)
            out[f.name.replace("_", "-")] = value
        return out

    @classmethod
    def from_run_config(cls, config) -> "FederatedConfig":
        """Read the keys this class knows from a run config (others are ignored; missing ones default)."""
        values = {}
        for f in dataclasses.fields(cls):
            key = f.name.replace("_", "-")
            if key not in config:
                continue
            value = config[key]
            default = f.default
            if isinstance(default, tuple):
                items = [v.strip() for v in str(value).split(",") if v.strip()]
                value = tuple(int(v) for v in items) if default and isinstance(default[0], int) else tuple(items)
            elif isinstance(default, bool):
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, float):
                value = float(value)
            values[f.name] = value
        return cls(**values)

    def replace(self, **changes) -> "FederatedConfig":
        return dataclasses.replace(self, **changes)
