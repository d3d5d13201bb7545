"""What the API asks of its two optional collaborators, as protocols the real components implement:
:class:`artlens.annotation.Annotator` (labels of an upload) and
:class:`artlens.copyright.check.CopyrightChecker` (is an upload a registered work, and what free works
are like it). :func:`artlens.api.create_app` takes any implementation, the real ones by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image

from artlens.annotation import Annotator as CollectionAnnotator
from artlens.annotation import ColumnPrediction
from artlens.collection import Collection
from artlens.copyright.check import CheckResult
from artlens.copyright.check import CopyrightChecker as RegistryChecker
from artlens.copyright.registry import CopyrightRegistry


@runtime_checkable
class Annotator(Protocol):
    def annotate_image(self, image: Image.Image | bytes | str, k: int = 3) -> dict[str, ColumnPrediction]:
        """Top-``k`` labels of every column for an image, with whether its nearest labelled works are far."""
        ...


@runtime_checkable
class CopyrightChecker(Protocol):
    def check_images(self, images: Sequence[Image.Image], names: Sequence[str],
                     md5s: Sequence[str | None] | None = None, fast: bool | None = None) -> list[CheckResult]:
        """One result per image: the verdict, the matched work, and the free alternatives."""
        ...


def open_annotator(collection: Collection) -> Annotator:
    """The collection's annotator: its learned head for the head's column, probes on pretrained features
    for the other label columns. A collection without label columns raises an error saying why."""
    return CollectionAnnotator.for_collection(collection)


def open_copyright_checker(registry: Path, free: Collection | None, max_alternatives: int = 50) -> CopyrightChecker:
    """A checker against the registry at ``registry`` with alternatives from ``free``. A missing, empty
    or untrained registry raises the copyright module's own error, which says what to run."""
    return RegistryChecker(CopyrightRegistry.open(registry), free, alternatives=max_alternatives)
