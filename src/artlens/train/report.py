"""Training curves as the papers show them: per-epoch metrics as JSON, loss and accuracy as PNG."""

from __future__ import annotations

import json
import os
from pathlib import Path

from artlens.train.loop import History


def write_metrics(history: History, path: str | Path, extra: dict | None = None) -> Path:
    """Per-epoch metrics (and ``extra``, e.g. test scores and the config) as JSON, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({**history.as_dict(), **(extra or {})}, indent=2))
    tmp.replace(path)
    return path


def plot_curves(history: History, path: str | Path, title: str = "") -> Path:
    """Two panels: train/val loss, and train/val accuracy with val mAP, by epoch; the kept epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    epochs = [e["epoch"] for e in history.epochs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        ax_loss.plot(epochs, [e.get(key) for e in history.epochs], style, label=key.replace("_", " "))
    for key, style in (("train_acc", "-"), ("val_acc", "--"), ("val_map", ":")):
        values = [e.get(key) for e in history.epochs]
        if any(v is not None for v in values):
            ax_acc.plot(epochs, values, style, label=key.replace("_", " "))
    for ax, name in ((ax_loss, "loss"), (ax_acc, "accuracy / mAP")):
        ax.axvline(history.best_epoch, color="grey", linewidth=0.8)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
