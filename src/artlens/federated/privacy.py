"""Privacy of a federated run.

- **Differential privacy at the institution level** (central DP with client-side clipping, Flower's
  ``DifferentialPrivacyClientSideFixedClipping`` + ``fixedclipping_mod``): each institution's update
  is clipped to L2 norm C before it leaves; the server adds Gaussian noise of standard deviation
  sigma*C/K to the mean of the K updates. Any institution's participation changes the released mean by
  at most C/K, so each round is a Gaussian mechanism with noise multiplier sigma.
- **Accounting**: Renyi DP of the (optionally Poisson-subsampled) Gaussian mechanism (Mironov 2017;
  Mironov, Talwar & Zhang 2019), composed over rounds and converted to (epsilon, delta) with the
  tighter conversion of Balle et al. 2020, through Opacus's RDP analysis. ``calibrate_noise`` picks
  the smallest sigma whose total epsilon after all rounds stays within the target.
- **SecAgg+** (Flower's ``SecAggPlusWorkflow`` + ``secaggplus_mod``): institutions mask their
  quantised updates so that the server only learns their sum.

Flower and Opacus are imported lazily, inside the functions that need them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from artlens.errors import ArtlensError
from artlens.settings import with_changes
from artlens.train.privacy import DP_RECIPE

DEFAULT_ORDERS = tuple([1 + x / 10.0 for x in range(1, 10)] + list(range(2, 64)) + [80, 128, 256, 512])


def rdp_gaussian(noise_multiplier: float, sampling_rate: float = 1.0, orders=DEFAULT_ORDERS) -> np.ndarray:
    """RDP epsilon(alpha) of one release, for each order (Opacus's analysis of the subsampled Gaussian)."""
    from opacus.accountants.analysis.rdp import compute_rdp

    if noise_multiplier <= 0:
        return np.full(len(orders), np.inf)
    return np.asarray(compute_rdp(q=min(max(sampling_rate, 0.0), 1.0), noise_multiplier=noise_multiplier,
                                  steps=1, orders=list(orders)), dtype=np.float64)


def rdp_to_epsilon(rdp: np.ndarray, delta: float, orders=DEFAULT_ORDERS) -> tuple[float, float]:
    """(epsilon, best order) for a target delta (Opacus's conversion)."""
    from opacus.accountants.analysis.rdp import get_privacy_spent

    with warnings.catch_warnings():  # Opacus warns when the best order is at the edge of the list
        warnings.simplefilter("ignore", UserWarning)
        eps, best = get_privacy_spent(orders=list(orders), rdp=np.asarray(rdp, dtype=np.float64), delta=delta)
    return max(0.0, float(eps)), float(best)


@dataclass
class RdpAccountant:
    """Composes Gaussian releases and reports the (epsilon, delta) spent so far."""

    delta: float = 1e-5
    orders: tuple = DEFAULT_ORDERS
    releases: int = 0
    _rdp: np.ndarray = field(default=None, repr=False)

    def __post_init__(self):
        if self._rdp is None:
            self._rdp = np.zeros(len(self.orders))

    def compose(self, noise_multiplier: float, sampling_rate: float = 1.0, count: int = 1) -> None:
        self._rdp = self._rdp + count * rdp_gaussian(noise_multiplier, sampling_rate, self.orders)
        self.releases += count

    def epsilon(self, delta: float | None = None) -> float:
        if self.releases == 0:
            return 0.0
        return rdp_to_epsilon(self._rdp, delta or self.delta, self.orders)[0]


def epsilon_after(noise_multiplier: float, rounds: int, delta: float, sampling_rate: float = 1.0) -> float:
    accountant = RdpAccountant(delta)
    accountant.compose(noise_multiplier, sampling_rate, rounds)
    return accountant.epsilon()


def calibrate_noise(target_epsilon: float, delta: float, rounds: int, sampling_rate: float = 1.0) -> float:
    """The smallest noise multiplier (to 0.1 %) whose epsilon after ``rounds`` stays within the target."""
    if target_epsilon <= 0:
        raise ArtlensError("the privacy target epsilon must be positive", "pass e.g. --dp-epsilon 8")
    lo, hi = 1e-3, 1.0
    while epsilon_after(hi, rounds, delta, sampling_rate) > target_epsilon:
        hi *= 2
        if hi > 1e6:
            raise ArtlensError(f"no noise level reaches epsilon {target_epsilon}", "raise --dp-epsilon")
    while hi - lo > 1e-3 * hi:
        mid = (lo + hi) / 2
        if epsilon_after(mid, rounds, delta, sampling_rate) > target_epsilon:
            lo = mid
        else:
            hi = mid
    return hi


# -- Flower pieces --------------------------------------------------------------------------------
def with_differential_privacy(strategy, noise_multiplier: float, clipping_norm: float, num_clients: int):
    """Wrap a message-API strategy: clients clip (``fixedclipping_mod``), the server adds the noise."""
    from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping

    return DifferentialPrivacyClientSideFixedClipping(strategy, noise_multiplier, clipping_norm, num_clients)


def clip_when_asked(msg, context, call_next):
    """Client mod: Flower's ``fixedclipping_mod`` for training messages that carry a clipping norm
    (a run with DP; its legacy form under SecAgg+, where it clips before the update is masked);
    other messages pass through untouched."""
    from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

    legacy = msg.content.config_records.get("fitins.config")
    if legacy is not None:
        if KEY_CLIPPING_NORM in legacy:
            from flwr.client.mod import fixedclipping_mod as legacy_fixedclipping_mod

            return legacy_fixedclipping_mod(msg, context, call_next)
        return call_next(msg, context)
    configs = list(msg.content.config_records.values())
    if len(configs) == 1 and KEY_CLIPPING_NORM in configs[0] and len(msg.content.array_records) == 1:
        from flwr.clientapp.mod import fixedclipping_mod

        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def secagg_when_asked(msg, context, call_next):
    """Client mod: Flower's ``secaggplus_mod`` for the messages of a SecAgg+ round."""
    from flwr.app import MessageType
    from flwr.client.mod import secaggplus_mod
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

    if msg.metadata.message_type == MessageType.TRAIN and RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


def secagg_workflow(num_clients: int, shares: float, threshold: float, max_weight: float, timeout: float | None):
    """Flower's SecAgg+ fit workflow. ``shares``: share of the institutions holding each one's key
    shares; ``threshold``: share of those needed to unmask (so up to 1 - threshold may drop out)."""
    from flwr.server.workflow import SecAggPlusWorkflow

    if num_clients < 3:
        raise ArtlensError(f"SecAgg+ needs at least 3 institutions, this federation has {num_clients}",
                           "add institutions or run without --secagg")
    if not (0 < shares <= 1 and 0 < threshold <= 1):
        raise ArtlensError("SecAgg+ shares and threshold are fractions in (0, 1]",
                           "set secagg-shares and secagg-threshold in the run config, e.g. 1.0 and 0.6")
    return SecAggPlusWorkflow(num_shares=float(shares), reconstruction_threshold=float(threshold),
                              max_weight=max_weight, timeout=timeout)


# -- record-level DP: the recipe of `--dp-records` ------------------------------------------------
# Federated DP-SGD as distributed DP-SGD with a server optimiser (DP-FedAdam): every round each
# institution takes ONE full-batch DP-SGD step of plain SGD on its own artworks (a linear 64-d head over
# PCA-256 inputs, the central recipe's head, cross-entropy), so the mean of the institutions' updates is
# the federation's full-batch gradient plus the mean of their independent noises; the server's Adam
# (Flower's FedAdam) then steps on that mean, its moments averaging the noise over rounds. What this
# replaces (measured in docs/privacy.md): fedstyle with 2 local Adam epochs a round, whose fresh Adam
# state makes each local step a sign step (every weight moved by lr whatever its signal-to-noise
# ratio) and whose one-style-per-institution local objective drifts apart under noise.
DP_FEDERATION: dict = {"strategy": "fedadam", "rounds": 40, "local_epochs": 1, "server_lr": 0.02, "server_tau": 1e-6,
                       "training__optimizer": "sgd", "training__lr": 1.0}


def private_federation(config, epsilon: float, recipe: dict | None = None):
    """``config`` (a ``FederatedConfig``) with record-level DP at ``epsilon`` inside every institution,
    with ``recipe`` (default: ``DP_FEDERATION`` over ``DP_RECIPE``, the recipe of `--dp-records`)."""
    changes = {**{f"training__{k}": v for k, v in DP_RECIPE.items()}, **DP_FEDERATION, **(recipe or {}),
               "training__dp_records": epsilon}
    return with_changes(config, changes)
