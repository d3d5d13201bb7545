"""Federated training of heads across institutions on Flower: each institution trains on its own
cached features; only weights and aggregate statistics travel (see ``participant``).

Flower-free: ``config``, ``partition``, ``institution``, ``head``, ``local``, ``transforms``,
``privacy``, ``heldout``, ``rounds``, ``participant``, ``processes``. On Flower: ``client_app``,
``server_app``, ``coordinator``, ``strategies``, ``simulation``, ``deploy`` (import them only with
the ``federated`` extra installed: ``pip install "artlens[federated]"``).
"""

from artlens.federated.config import (
    STRATEGIES,
    Endpoint,
    FederatedConfig,
    ServerSettings,
)

__all__ = ["STRATEGIES", "Endpoint", "FederatedConfig", "ServerSettings"]
