"""Training curves as the papers show them: metrics as JSON, loss and accuracy as PNG panels.

``plot_panels`` is the shared piece: centrally trained heads use it by epoch (``write_metrics``,
``plot_curves``), federated runs by round (``artlens.federated.rounds``). Files are written through
``artlens.files`` (atomically, figures headless).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from artlens.files import pyplot, save_figure, write_json
from artlens.train.loop import History

Series = tuple[str, Sequence[float | None], str]  # (legend label, values, matplotlib format); None: no value
Panel = tuple[str, Sequence[Series]]  # (y-axis label, its series)


def plot_panels(x: Sequence[float], panels: Sequence[Panel], path: str | Path, title: str = "", xlabel: str = "epoch",
                mark: float | None = None) -> Path:
    """Panels side by side sharing the x values; a series none of whose values is set is left out, and
    ``mark`` (the kept epoch or round) is a grey vertical line in every panel. Saved atomically."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (ylabel, series) in zip(axes[0], panels):
        for label, values, fmt in series:
            if any(v is not None for v in values):
                ax.plot(list(x), [math.nan if v is None else v for v in values], fmt, label=label)
        if mark is not None:
            ax.axvline(mark, color="grey", linewidth=0.8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def write_metrics(history: History, path: str | Path, extra: dict | None = None) -> Path:
    """Per-epoch metrics (and ``extra``, e.g. test scores and the config) as JSON, written atomically."""
    return write_json({**history.as_dict(), **(extra or {})}, path)


def plot_curves(history: History, path: str | Path, title: str = "") -> Path:
    """Two panels: train/val loss, and train/val accuracy with val mAP, by epoch; the kept epoch marked."""
    epochs = [e["epoch"] for e in history.epochs]

    def series(keys_styles):
        return [(key.replace("_", " "), [e.get(key) for e in history.epochs], style) for key, style in keys_styles]

    panels = [("loss", series((("train_loss", "-"), ("val_loss", "--")))),
              ("accuracy / mAP", series((("train_acc", "-"), ("val_acc", "--"), ("val_map", ":"))))]
    return plot_panels(epochs, panels, path, title, "epoch", mark=history.best_epoch)
