"""The Flower ServerApp: reads its settings from ``context.run_config`` (a deployment: ``flwr run``
with the run config written by ``artlens federate server``) or takes them from the simulation, and
hands the grid to the :class:`~artlens.federated.coordinator.Coordinator`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from artlens.errors import ArtlensError
from artlens.federated.coordinator import Coordinator, FederatedResult, ServerSettings
from artlens.files import write_json

ERROR_FILE = "error.json"  # in the run folder: why the server app failed, for `artlens federate server`


def record_error(run_dir: str | Path, exc: BaseException) -> Path:
    """Write ``exc`` (message and hint) as JSON into the run folder, atomically."""
    if isinstance(exc, ArtlensError):
        body = {"message": exc.message, "hint": exc.hint}
    else:
        body = {"message": f"the server app failed: {type(exc).__name__}: {exc}", "hint": None}
    return write_json(body, Path(run_dir) / ERROR_FILE, None)


def read_error(run_dir: str | Path) -> ArtlensError | None:
    """The error the server app recorded in ``run_dir`` (None where it recorded none)."""
    try:
        body = json.loads((Path(run_dir) / ERROR_FILE).read_text())
        return ArtlensError(str(body["message"]), body.get("hint"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def create_server_app(settings: ServerSettings | None = None, heldout=None, aspects=None,
                      on_result: Callable[[FederatedResult], None] | None = None) -> ServerApp:
    """A ServerApp; without ``settings`` they come from the run config."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        chosen = settings or ServerSettings.from_run_config(context.run_config)
        try:
            result = Coordinator(chosen, heldout, aspects).run(grid, context)
        except Exception as exc:
            record_error(chosen.run_dir, exc)
            raise
        if on_result is not None:
            on_result(result)

    return app


app = create_server_app()
