"""Atomic writes: every artifact artlens writes (settings, JSON, arrays, weights, figures) goes to a
temporary file beside its destination and is renamed over it, so a reader never sees half a file
and a crash leaves the old one in place. And where artlens keeps what belongs to no collection: the
user cache (``user_cache``)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

CACHE_ENV = "ARTLENS_CACHE"  # the user cache folder (default ~/.cache/artlens)


def user_cache() -> Path:
    """artlens's per-user cache: ``$ARTLENS_CACHE``, else ``~/.cache/artlens`` (built copy heads,
    the local side folders of PostgreSQL collections)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "artlens").expanduser()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so writers that read the format from it work)
    to write to; renamed over ``path`` when the block ends, removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # on disk before the rename makes it the file
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(data: bytes, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(text: str, path: str | Path) -> Path:
    """``text`` (UTF-8) written atomically."""
    return write_bytes(text.encode(), path)


def write_json(payload, path: str | Path, indent: int | None = 2) -> Path:
    """``payload`` as JSON (numpy scalars as numbers, arrays as lists), written atomically."""
    return write_text(json.dumps(payload, indent=indent, default=jsonable), path)


def jsonable(value):
    """``json.dumps`` default for numpy scalars and arrays, and paths."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_arrays(path: str | Path, compressed: bool = False, **arrays: np.ndarray) -> Path:
    """Named arrays as one ``.npz`` file, written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return Path(path)


def save_torch(obj, path: str | Path) -> Path:
    """``torch.save(obj)`` written atomically."""
    import torch  # torch is heavy; only writers of weights pay for it

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (loaded on first use: matplotlib is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """``fig`` as an image (format from the suffix), written atomically; the figure is closed."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
    return Path(path)
