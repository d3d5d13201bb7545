"""The Flower ServerApp: reads its settings from ``context.run_config`` (a deployment: ``flwr run``
with the run config written by ``artlens federate server``) or takes them from the simulation, and
hands the grid to the :class:`~artlens.federated.coordinator.Coordinator`."""

from __future__ import annotations

from collections.abc import Callable

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from artlens.federated.coordinator import Coordinator, FederatedResult, ServerSettings


def create_server_app(settings: ServerSettings | None = None, heldout=None, aspects=None,
                      on_result: Callable[[FederatedResult], None] | None = None) -> ServerApp:
    """A ServerApp; without ``settings`` they come from the run config."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        chosen = settings or ServerSettings.from_run_config(context.run_config)
        result = Coordinator(chosen, heldout, aspects).run(grid, context)
        if on_result is not None:
            on_result(result)

    return app


app = create_server_app()
