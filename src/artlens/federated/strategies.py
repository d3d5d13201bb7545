"""Server strategies by name, all Flower's own:

- ``fedavg``: ``FedAvg``, the mean of the institutions' weights weighted by their sample counts n_i
  (AICRS eq. 20/48);
- ``fedprox``: ``FedProx``; the institutions add mu/2 ||w - w_global||^2 to their loss;
- ``fedadam``: ``FedAdam``, an adaptive server optimiser on the mean update (Reddi et al. 2021);
- ``fedstyle``: :class:`FedStyle`, FedAvg over the weights and the packed style prototypes (their
  n_i-weighted mean is the global mean embedding of each style; see ``head.prototype_statistics``).

Under differential privacy the mean is unweighted (each institution's clipped update moves it by at
most C/K, which the noise is calibrated to). Under SecAgg+ the legacy strategies of ``flwr.server``
run inside Flower's ``SecAggPlusWorkflow``, which only hands them the masked sum.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from flwr.app import Array, ArrayRecord
from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx, Strategy

from artlens.federated.config import FederatedConfig


class FedStyle(FedAvg):
    """FedAvg whose arrays also carry each institution's per-class embedding sums and counts (divided
    by n_i); their weighted mean gives the global style prototypes the institutions align to."""

    def summary(self) -> None:
        from logging import INFO

        from flwr.supercore import log

        log(INFO, "\t├──> FedStyle: weights and style prototypes averaged by sample count")
        super().summary()


def create_strategy(config: FederatedConfig, num_clients: int) -> Strategy:
    """A message-API strategy for ``config.strategy`` (DP wrapping is added by the caller)."""
    common = dict(fraction_train=config.fraction_train, fraction_evaluate=config.fraction_evaluate,
                  min_train_nodes=min(config.min_clients, num_clients),
                  min_evaluate_nodes=min(config.min_clients, num_clients) if config.fraction_evaluate > 0 else 0,
                  min_available_nodes=min(config.min_clients, num_clients),
                  weighted_by_key="unit-weight" if config.dp else "num-examples")
    if config.strategy == "fedprox":
        return FedProx(proximal_mu=config.proximal_mu, **common)
    if config.strategy == "fedadam":
        return FedAdam(eta=config.server_lr, eta_l=config.training.lr, tau=config.server_tau, **common)
    if config.strategy == "fedstyle":
        return FedStyle(**common)
    return FedAvg(**common)


class Observed(Strategy):
    """Delegates to a strategy and reports each round's aggregate to ``on_train(round, arrays, metrics)``
    and ``on_evaluate(round, metrics)`` (the round log keeps the best round's weights)."""

    def __init__(self, inner: Strategy, on_train: Callable, on_evaluate: Callable):
        self.inner = inner
        self.on_train = on_train
        self.on_evaluate = on_evaluate

    def summary(self) -> None:
        self.inner.summary()

    def configure_train(self, server_round, arrays, config, grid):
        return self.inner.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round, replies):
        arrays, metrics = self.inner.aggregate_train(server_round, replies)
        if arrays is not None:  # FedAdam's update comes out in float64: send float32, as the institutions do
            arrays = ArrayRecord({k: Array(v.numpy().astype(np.float32, copy=False)) for k, v in arrays.items()})
        self.on_train(server_round, None if arrays is None else {k: v.numpy() for k, v in arrays.items()},
                      None if metrics is None else dict(metrics))
        return arrays, metrics

    def configure_evaluate(self, server_round, arrays, config, grid):
        return self.inner.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round, replies):
        metrics = self.inner.aggregate_evaluate(server_round, replies)
        self.on_evaluate(server_round, None if metrics is None else dict(metrics))
        return metrics


def create_legacy_strategy(config: FederatedConfig, num_clients: int, initial_parameters, evaluate_fn,
                           on_fit_config_fn, on_evaluate_config_fn, evaluate_metrics_aggregation_fn,
                           fit_metrics_aggregation_fn):
    """The same strategy from ``flwr.server.strategy``, for the SecAgg+ workflow."""
    from flwr.server import strategy as legacy

    minimum = min(config.min_clients, num_clients)
    common = dict(fraction_fit=config.fraction_train, fraction_evaluate=config.fraction_evaluate,
                  min_fit_clients=minimum, min_evaluate_clients=minimum if config.fraction_evaluate > 0 else 0,
                  min_available_clients=minimum, evaluate_fn=evaluate_fn, on_fit_config_fn=on_fit_config_fn,
                  on_evaluate_config_fn=on_evaluate_config_fn, initial_parameters=initial_parameters,
                  fit_metrics_aggregation_fn=fit_metrics_aggregation_fn,
                  evaluate_metrics_aggregation_fn=evaluate_metrics_aggregation_fn)
    if config.strategy == "fedprox":
        return legacy.FedProx(proximal_mu=config.proximal_mu, **common)
    if config.strategy == "fedadam":
        return legacy.FedAdam(eta=config.server_lr, eta_l=config.training.lr, tau=config.server_tau, **common)
    return legacy.FedAvg(**common)
