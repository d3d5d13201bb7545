"""Feature extractors by name.

``create_extractor("effnet-lite0")`` gives the default content extractor; style extractors are named
``{kind}-{layer}`` for the default backbone (``gram-block4``, ``cosine-block3``, ``gramcos-block4``),
several layers joined by ``+`` (``gram-block4+block5``), or ``{backbone}-{kind}-{layer}`` for another
backbone (``vgg19-gram-conv5_1``); ``colour-hist`` and ``minilm`` complete the defaults.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from artlens.errors import ArtlensError
from artlens.features.backbone import KNOWN_CHANNELS
from artlens.features.base import Extractor, ImageExtractor, TextExtractor
from artlens.features.colour import ColourHistogramExtractor
from artlens.features.content import PooledFeatureExtractor
from artlens.features.style import STYLE_KINDS, StyleMatrixExtractor
from artlens.features.text import HubTextExtractor, SentenceEncoderExtractor

DEFAULT_BACKBONE = "effnet-lite0"

_FACTORIES: dict[str, Callable[[], Extractor]] = {
    "effnet-lite0": lambda: PooledFeatureExtractor("effnet-lite0", "effnet-lite0", 1280),
    "colour-hist": ColourHistogramExtractor,
    "minilm": lambda: SentenceEncoderExtractor("minilm"),
    # The papers' backbones (need the ``hub`` extra and, once, the network).
    "resnet50": lambda: PooledFeatureExtractor("resnet50", "resnet50", 2048),
    "vgg16": lambda: PooledFeatureExtractor("vgg16", "vgg16", 512),
    "vgg19": lambda: PooledFeatureExtractor("vgg19", "vgg19", 512),
    "vit-b16": lambda: PooledFeatureExtractor("vit-b16", "vit-b16", 768),
    "bert-base": lambda: HubTextExtractor("bert-base", "bert-base-uncased", 768),
}
_STYLE_NAME = re.compile(
    r"^(?:(?P<backbone>[a-z0-9.]+(?:-[a-z0-9.]+)*?)-)?(?P<kind>gramcos|gram|cosine)-(?P<layers>\w+(?:\+\w+)*)$"
)
_CACHE: dict[str, Extractor] = {}


def register_extractor(name: str, factory: Callable[[], Extractor]) -> None:
    """Make an extractor available by name (the built-ins use this too)."""
    _FACTORIES[name] = factory
    _CACHE.pop(name, None)


def list_extractors() -> list[str]:
    styles = [f"{kind}-{layer}" for kind in STYLE_KINDS for layer in KNOWN_CHANNELS[DEFAULT_BACKBONE] if layer != "pool"]
    return sorted(_FACTORIES) + styles + ["gram-block4+block5"]


def _style_extractor(name: str) -> Extractor | None:
    match = _STYLE_NAME.match(name)
    if not match:
        return None
    backbone = match["backbone"] or DEFAULT_BACKBONE
    layers = match["layers"].split("+")
    known = KNOWN_CHANNELS.get(backbone, {})
    if any(layer not in known or layer == "pool" for layer in layers):
        return None
    return StyleMatrixExtractor(match["kind"], layers, backbone, [known[layer] for layer in layers], name)


def create_extractor(name: str) -> Extractor:
    """The extractor registered under ``name`` (one instance per process)."""
    if name not in _CACHE:
        extractor = _FACTORIES[name]() if name in _FACTORIES else _style_extractor(name)
        if extractor is None:
            raise ArtlensError(
                f"unknown extractor {name!r}",
                f"choose one of: {', '.join(list_extractors())}",
            )
        _CACHE[name] = extractor
    return _CACHE[name]


__all__ = [
    "Extractor", "ImageExtractor", "TextExtractor", "create_extractor", "list_extractors", "register_extractor",
    "DEFAULT_BACKBONE",
]
