"""Settings of a federated run, with their one default each. They travel to the Flower apps as a flat
run config (``context.run_config`` in a deployment, message configs in both), so the CLI, the
simulation and ``flwr run`` map onto the same dataclass.

An institution's local epochs are the central training loop, so ``FederatedConfig.training`` is a
:class:`~artlens.train.config.TrainConfig` (and its ``head`` the shape of the shared head). Only where
the paper's federated setting differs from central training does it change that config, in one place
(``FEDERATED_TRAINING``); the rest of the federation's own defaults are the paper's (AICRS / FedStyle):
50 rounds of 10 local epochs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from artlens.errors import ArtlensError
from artlens.models import HeadShape
from artlens.settings import from_run_config, to_run_config
from artlens.train.config import TrainConfig
from artlens.train.privacy import check_private_loss, check_target

STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedstyle")

# Where federated training departs from central training (AICRS's federated setting): cross-entropy as
# the local loss of fedavg / fedprox / fedadam (fedstyle brings its own), and batches of 32, because an
# institution holds few artworks per class (supcon's batches need several of each); dropout 0.2 in the
# head, which the federated runs of docs/federated.md were measured with (10 local epochs a round on a
# few hundred artworks). Adam at lr 1e-3 and everything else are the central defaults.
FEDERATED_TRAINING = TrainConfig(loss="ce", batch_size=32, head=HeadShape(dropout=0.2))

FLOWER_KEYS: tuple[str, ...] = ()  # keys Flower itself adds to a run config (none, as of Flower 1.41)


@dataclass(frozen=True)
class FederatedConfig:
    """Everything a federated run needs besides where each institution keeps its data."""

    strategy: str = "fedstyle"  # the answer to one style per institution (see docs/federated.md)
    rounds: int = 50
    local_epochs: int = 10
    label: str = "style"  # the label column: classes and relevance
    features: tuple[str, ...] = ("content", "style")  # aspect or extractor names, as for `artlens train`
    training: TrainConfig = field(default_factory=lambda: FEDERATED_TRAINING)  # epochs: local_epochs instead
    pca_iterations: int = 4  # subspace iterations of the federated randomised PCA
    proximal_mu: float = 0.01  # fedprox
    server_lr: float = 0.01  # fedadam: eta
    server_tau: float = 1e-3  # fedadam: adaptivity
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
        if self.training.private:
            check_target(self.training.dp_records, self.training.dp_delta, self.training.dp_clip)
            if self.strategy == "fedprox":
                raise ArtlensError("record-level DP is not available with fedprox (its proximal term is not one "
                                   "artwork's)", "use --strategy fedstyle, fedavg or fedadam with --dp-records")
            if self.strategy == "fedstyle" and not self.virtual_styles:
                raise ArtlensError("record-level DP with fedstyle needs its virtual styles (its prototypes are then "
                                   "drawn from them, not from the artworks)", "drop --no-virtual-styles")
            if self.strategy != "fedstyle":
                check_private_loss(self.training.loss)

    @property
    def dp(self) -> bool:
        """Institution-level DP (the server's noise on the mean of clipped updates)."""
        return self.dp_epsilon > 0

    @property
    def dp_records(self) -> bool:
        """Record-level DP (DP-SGD inside every institution, ``training.dp_records``)."""
        return self.training.private

    def train_config(self) -> TrainConfig:
        """The plain-PyTorch training settings of one institution's local epochs (fedstyle's head
        classifies by cosine to its style prototypes, as a proxy head does)."""
        return dataclasses.replace(self.training, loss="proxy") if self.strategy == "fedstyle" else self.training

    def to_run_config(self) -> dict[str, bool | int | float | str]:
        return to_run_config(self)

    @classmethod
    def from_run_config(cls, config, ignore: Iterable[str] = ()) -> "FederatedConfig":
        """Read a run config written by :meth:`to_run_config`: unknown keys are errors (but those in
        ``ignore``); missing ones default."""
        return from_run_config(cls, config, ignore)

    def replace(self, **changes) -> "FederatedConfig":
        return dataclasses.replace(self, **changes)

    def on_device(self, device: str) -> "FederatedConfig":
        """These settings with the institutions' local epochs on ``device`` (``training.device``)."""
        return self.replace(training=dataclasses.replace(self.training, device=device))


@dataclass(frozen=True)
class ServerSettings:
    """Where the server writes and what it evaluates on, besides the federation settings. In a run
    config the federation's keys come first, unprefixed, then these (``run-dir``, ``wait-seconds``, ...)."""

    federation: FederatedConfig = field(default_factory=FederatedConfig)
    run_dir: str = ""  # metrics.json, curves.png, head.pt; empty: a new folder (see ``with_run_dir``)
    out: str = ""  # also write the head here
    eval_collection: str = ""  # a labelled collection whose held-out split scores each round
    eval_split: str = "test"
    institutions: int = 0  # wait for this many institutions before starting (0: min_clients)
    wait_seconds: float = 600.0  # then start with those connected, if at least min_clients
    monitor: str = "val-acc"  # institutions' validation score that picks the kept round ("last": the last)
    share_result: bool = True  # send the final head to the institutions (each makes it its `learned` aspect)

    def with_run_dir(self, base: str | Path = ".") -> "ServerSettings":
        """These settings with an absolute run folder: the one given, else a new ``federated/STRATEGY-TIME``
        under ``base`` (the collection of a simulation, the working directory of a server)."""
        run_dir = Path(self.run_dir) if self.run_dir else (
            Path(base) / "federated" / f"{self.federation.strategy}-{time.strftime('%Y%m%d-%H%M%S')}")
        return dataclasses.replace(self, run_dir=str(run_dir.resolve()))

    def to_run_config(self) -> dict:
        own = to_run_config(dataclasses.replace(self, federation=None))
        return {**self.federation.to_run_config(), **own}

    @classmethod
    def from_run_config(cls, config, ignore: Iterable[str] = FLOWER_KEYS) -> "ServerSettings":
        """Read a run config written by :meth:`to_run_config` (unknown keys are errors, but ``ignore``)."""
        own_keys = {f.name.replace("_", "-") for f in dataclasses.fields(cls) if f.name != "federation"}
        federation = FederatedConfig.from_run_config({k: v for k, v in config.items() if k not in own_keys}, ignore)
        own = from_run_config(cls, {k: v for k, v in config.items() if k in own_keys})
        return dataclasses.replace(own, federation=federation)


@dataclass(frozen=True)
class Endpoint:
    """Where the server listens and how the institutions reach it: TLS with all three of ``tls_*``,
    plain HTTP with ``insecure`` (always allowed on a loopback host)."""

    host: str = "127.0.0.1"  # 0.0.0.0: every interface
    port: int = 9093
    insecure: bool = False
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""

    @property
    def certificates(self) -> tuple[str, str, str] | None:
        return (self.tls_ca, self.tls_cert, self.tls_key) if self.tls_ca and self.tls_cert and self.tls_key else None

    @property
    def plain(self) -> bool:
        return self.insecure or (self.certificates is None and loopback(self.host))

    @property
    def address(self) -> str:
        """HOST:PORT to connect to (this machine when listening on every interface)."""
        return f"{'127.0.0.1' if self.host in ('0.0.0.0', '::') else self.host}:{self.port}"


def loopback(host: str) -> bool:
    """Whether ``host`` is this machine (plain HTTP is always allowed there)."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
