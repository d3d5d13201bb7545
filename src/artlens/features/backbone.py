"""Image backbones by name. A backbone turns a batch of decoded images into named taps (pooled
features and intermediate feature maps) in one forward pass shared by every extractor that needs it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from PIL import Image

from artlens.errors import ArtlensError
from artlens.features.effnet import load_effnet_lite0, preprocess_effnet


@dataclass
class Backbone:
    name: str
    model: torch.nn.Module  # has forward_features(x, layers) -> dict[str, Tensor]
    preprocess: Callable[[Sequence[Image.Image]], torch.Tensor]
    layer_channels: dict[str, int]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def taps(self, images: Sequence[Image.Image], layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """The taps of one forward pass, on the CPU whatever device the model runs on (extractors
        reduce them there; pooled features and mid-level maps are small next to the forward pass)."""
        if not layers:
            return {}
        device = self.device
        x = self.preprocess(images)
        if device.type != "cpu":
            x = x.pin_memory().to(device, non_blocking=True)
        taps = self.model.forward_features(x, list(layers))
        return taps if device.type == "cpu" else {k: v.float().cpu() for k, v in taps.items()}


def _effnet_lite0() -> Backbone:
    model = load_effnet_lite0()
    return Backbone("effnet-lite0", model, preprocess_effnet, dict(model.layer_channels))


_FACTORIES: dict[str, Callable[[], Backbone]] = {"effnet-lite0": _effnet_lite0}
_LOADED: dict[str, Backbone] = {}  # on the CPU
_ON_DEVICE: dict[tuple[str, str], Backbone] = {}  # copies on other devices

# Channel counts known without loading weights, so extractors can state their dimension up front.
KNOWN_CHANNELS: dict[str, dict[str, int]] = {
    "effnet-lite0": {
        "block0": 16, "block1": 24, "block2": 40, "block3": 80, "block4": 112, "block5": 192, "block6": 320,
        "pool": 1280,
    },
}


def register_backbone(name: str, factory: Callable[[], Backbone], channels: dict[str, int]) -> None:
    """Make a backbone available by name (the built-ins use this too)."""
    _FACTORIES[name] = factory
    KNOWN_CHANNELS[name] = dict(channels)


def list_backbones() -> list[str]:
    return sorted(_FACTORIES)


def get_backbone(name: str, device: str | torch.device = "cpu") -> Backbone:
    """The loaded backbone on ``device`` (a resolved torch device name), created once per process
    and device: a GPU copy is made from the CPU one."""
    if name not in _FACTORIES:
        raise ArtlensError(f"unknown backbone {name!r}", f"available: {', '.join(list_backbones())}")
    if name not in _LOADED:
        _LOADED[name] = _FACTORIES[name]()
        _LOADED[name].model.eval()
    device = str(torch.device(device))
    if device == "cpu":
        return _LOADED[name]
    if (name, device) not in _ON_DEVICE:
        cpu = _LOADED[name]
        _ON_DEVICE[name, device] = replace(cpu, model=copy.deepcopy(cpu.model).to(device).eval())
    return _ON_DEVICE[name, device]


def _vgg_channels(blocks: tuple[int, ...]) -> dict[str, int]:
    widths = (64, 128, 256, 512, 512)
    channels = {f"conv{b + 1}_{i + 1}": widths[b] for b, n in enumerate(blocks) for i in range(n)}
    return {**channels, "pool": 512}


def _hub(name: str) -> Callable[[], Backbone]:
    def factory() -> Backbone:
        from artlens.features import (
            hub,  # needs the `hub` extra (torchvision, transformers)
        )

        model = hub.load_hub_backbone(name)
        return Backbone(name, model, model.preprocess, dict(model.layer_channels))

    return factory


# The papers' backbones, for users with torchvision and network (the ``hub`` extra).
register_backbone("resnet50", _hub("resnet50"),
                  {"layer1": 256, "layer2": 512, "layer3": 1024, "layer4": 2048, "pool": 2048})
register_backbone("vgg16", _hub("vgg16"), _vgg_channels((2, 2, 3, 3, 3)))
register_backbone("vgg19", _hub("vgg19"), _vgg_channels((2, 2, 4, 4, 4)))
register_backbone("vit-b16", _hub("vit-b16"),
                  {**{f"block{i}": 768 for i in range(12)}, "pool": 768})
