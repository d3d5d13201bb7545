"""Per-round metrics of a federated run, as the AICRS figures show them: JSON rows (train loss and
accuracy of the institutions, their validation scores, the held-out test scores, bytes sent and
received, epsilon spent) ending with the final ``map`` and ``epsilon``, and PNG curves. Files are
written through ``artlens.files`` and drawn with the training curves' panels (``artlens.train.curves``);
this module only lays out the rounds.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from artlens.files import write_json
from artlens.train.curves import plot_panels


class TrafficMeter:
    """Bytes of the messages the server sends (down) and receives (up)."""

    def __init__(self):
        self.down = 0
        self.up = 0

    def snapshot(self) -> tuple[int, int]:
        return self.down, self.up


class RoundLog:
    """Collects each round's numbers, keeps the best round's arrays (by the institutions' validation
    score) and writes ``metrics.json`` after every round, so an interrupted run leaves its curve."""

    def __init__(self, path: str | Path | None, monitor: str = "val-acc", meter: TrafficMeter | None = None,
                 header: dict | None = None, started: float | None = None):
        self.path = Path(path) if path else None
        self.monitor = monitor
        self.meter = meter or TrafficMeter()
        self.header = dict(header or {})
        self.rounds: list[dict] = []
        self.best_round = 0
        self.best_score: tuple = (-np.inf,)
        self.best_arrays: dict | None = None
        self.last_arrays: dict | None = None
        self._current: dict = {}
        self._marks = (0, 0)
        self._started = time.perf_counter() if started is None else started
        self._round_started = time.perf_counter()

    def start(self) -> None:
        """Training begins: what was sent so far (statistics, set-up) is the set-up cost."""
        self.header["setup_bytes_down"], self.header["setup_bytes_up"] = self.meter.snapshot()
        self.header["setup_seconds"] = round(time.perf_counter() - self._started, 2)
        self._marks = self.meter.snapshot()
        self._round_started = time.perf_counter()

    def on_train(self, server_round: int, arrays: dict | None, metrics: dict | None) -> None:
        self._current = {"round": server_round}
        self._current.update({k.replace("-", "_"): float(v) for k, v in (metrics or {}).items()
                              if k not in ("unit-weight",)})
        if arrays is not None:
            self.last_arrays = arrays

    def on_evaluate(self, metrics: dict | None) -> None:
        self._current.update({k.replace("-", "_"): float(v) for k, v in (metrics or {}).items()
                              if k not in ("unit-weight",)})

    def end_round(self, server_round: int, test: dict | None = None, epsilon: float | None = None,
                  clients: int | None = None) -> dict:
        row = {"round": server_round, **{k: v for k, v in self._current.items() if k != "round"}}
        row.update({k.replace("-", "_"): v for k, v in (test or {}).items()})
        down, up = self.meter.snapshot()
        row["bytes_down"], row["bytes_up"] = down - self._marks[0], up - self._marks[1]
        row["bytes_total"] = down + up
        row["seconds"] = round(time.perf_counter() - self._round_started, 3)
        if clients is not None:
            row["clients"] = clients
        if epsilon is not None:
            row["epsilon"] = epsilon
        self._marks = (down, up)
        self._round_started = time.perf_counter()
        self.rounds.append(row)
        score = self._score(row)
        if self.last_arrays is not None:
            if score is None:
                take = self.monitor == "last" or self.best_score == (-np.inf,)  # no validation score: the latest
            else:
                take = score > self.best_score
                self.best_score = max(self.best_score, score)
            if take:
                self.best_round, self.best_arrays = server_round, self.last_arrays
        self._current = {}
        self.write()
        return row

    def _score(self, row: dict) -> tuple | None:
        """Higher is better; ties of the monitored score go to the lower validation loss."""
        key = self.monitor.replace("-", "_")
        if self.monitor == "last" or key not in row:
            return None
        primary = round(-row[key] if key.endswith("loss") else row[key], 9)
        return (primary, -row.get("val_loss", 0.0))

    def summary(self, final: dict | None = None) -> dict:
        out = {**self.header, "rounds": self.rounds, "best_round": self.best_round, "monitor": self.monitor,
               "seconds": round(time.perf_counter() - self._started, 2)}
        out.update(final or {})
        return out

    def write(self, final: dict | None = None) -> Path | None:
        if self.path is None:
            return None
        return write_json(self.summary(final), self.path)


def plot_rounds(rows: list[dict], path: str | Path, title: str = "", kept_round: int | None = None) -> Path:
    """Three panels by round: loss (train, validation, test), accuracy and mAP, traffic in MB; the
    kept round marked."""
    rounds = [r["round"] for r in rows]

    def series(keys):
        return [(key.replace("_", " "), [r.get(key) for r in rows], ".-") for key in keys]

    traffic = [(label, list(np.cumsum([r.get(key, 0) for r in rows]) / 1e6), "-")
               for label, key in (("sent by server", "bytes_down"), ("received by server", "bytes_up"))]
    panels = [("loss", series(("train_loss", "val_loss", "test_loss"))),
              ("accuracy / mAP", series(("train_acc", "val_acc", "test_acc", "test_map"))),
              ("MB (cumulative)", traffic)]
    return plot_panels(rounds, panels, path, title, "round", mark=kept_round or None)
