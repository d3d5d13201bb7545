"""PNG figures of the evaluation report: P@k curves, training curves by epoch / round, and a 2-D
embedding map coloured by label. Each figure is written atomically; matplotlib runs headless."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from artlens.files import pyplot, save_figure


def plot_precision_curves(rows: Sequence[Mapping], path: Path, title: str = "") -> Path:
    """One line per method: P@k against k (the DeepArt figure)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        ks = [int(k) for k in row["curve"]]
        ax.plot(ks, [row["curve"][str(k)] for k in ks], marker="o", markersize=3, label=row["method"])
    ax.set_xlabel("k")
    ax.set_ylabel("precision at k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_training_curves(curves: Mapping[str, Sequence[Mapping]], path: Path, title: str = "") -> Path:
    """Test / validation accuracy and loss of every AICRS model by epoch (centralised) or round (federated)."""
    plt = pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for name, points in curves.items():
        if not points:
            continue
        step = "round" if "round" in points[0] else "epoch"
        x = [p[step] for p in points]
        for ax, keys in ((ax_acc, ("test_acc", "val_acc")), (ax_loss, ("test_loss", "val_loss"))):
            key = next((k for k in keys if points[0].get(k) is not None), None)
            if key:
                ax.plot(x, [p.get(key) for p in points], label=f"{name} ({key.replace('_', ' ')} by {step})")
    for ax, name in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        ax.set_xlabel("epoch / round")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def embedding_map(vectors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates: t-SNE when scikit-learn has it (PCA to 50 first), else PCA."""
    x = np.asarray(vectors, dtype=np.float32)
    try:
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE
    except ImportError:
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:2].T, "PCA"
    if x.shape[1] > 50 and len(x) > 50:
        x = PCA(50, random_state=seed).fit_transform(x)
    perplexity = float(min(30, max(2, (len(x) - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x), "t-SNE"


def plot_embedding_map(coords: np.ndarray, labels: Sequence[str], path: Path, title: str = "") -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    names = sorted(set(labels))
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    labels = np.asarray(labels)
    for k, name in enumerate(names):
        rows = labels == name
        ax.scatter(coords[rows, 0], coords[rows, 1], s=6, color=cmap(k % cmap.N), label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(names) <= 20:
        ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
