"""A copyright registry of the tiny pictures (owner "Museum X", titles from their labels.csv), built
once per test session with the robust detector on the fewest views and epochs that train it."""

from __future__ import annotations

from pathlib import Path

from artlens.cli import main

OWNER, LICENCE = "Museum X", "all rights reserved"


def tiny_registry(tmp_path_factory, tiny_folder: tuple[Path, Path]) -> Path:
    """The registry's folder (shared, read-only)."""
    folder, labels = tiny_folder
    root = tmp_path_factory.getbasetemp() / "tiny-registry"
    if not (root / "copyright" / "manifest.json").exists():
        code = main(["registry", "add", str(folder / "images"), "--owner", OWNER, "--licence", LICENCE,
                     "--labels", str(labels), "--registry", str(root), "--detectors", "robust", "--views", "1",
                     "--epochs", "1", "-q"])
        assert code == 0, "the tiny registry could not be built"
    return root
