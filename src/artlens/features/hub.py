"""The papers' backbones from the usual hubs: ResNet-50, VGG-16/19 and ViT-B/16 (torchvision) and
BERT-base (Hugging Face). They need the ``hub`` extra and, the first time, the network.

Each image wrapper is handed the torchvision module and exposes the same interface as
``EfficientNetLite0``: ``forward_features(x, layers) -> {tap: tensor}``, ``layer_channels``, plus
``layers`` (the tap names in forward order) and ``preprocess(images)`` (ImageNet mean/std).
torchvision and transformers are imported only inside the loaders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from artlens.errors import ArtlensError
from artlens.features.effnet import images_to_uint8

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HUB_INSTALL_HINT = "pip install 'artlens[hub]'"


def preprocess_imagenet(images: Sequence[Image.Image], size: int = 224) -> Tensor:
    """RGB PIL images -> (B, 3, size, size) float tensor normalised with ImageNet mean/std. Each
    image is resized whole (bilinear, antialiased), without cropping, so no part of an artwork is lost."""
    x = torch.from_numpy(images_to_uint8(images, size)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


class HubBackbone(nn.Module):
    """Common part of the image wrappers: tap-name checks and ImageNet preprocessing."""

    layers: tuple[str, ...] = ()
    input_size: int = 224

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module.eval()
        self.layer_channels: dict[str, int] = {}

    def preprocess(self, images: Sequence[Image.Image]) -> Tensor:
        return preprocess_imagenet(images, self.input_size)

    def forward(self, x: Tensor) -> Tensor:
        """The wrapped model's own output (ImageNet logits)."""
        return self.module(x)

    def _check_layers(self, layers: Sequence[str]) -> set[str]:
        wanted = {layers} if isinstance(layers, str) else set(layers)
        unknown = wanted - set(self.layers)
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} layers {sorted(unknown)}; choose from {self.layers}")
        return wanted

    def _deepest(self, wanted: set[str]) -> int:
        return max(self.layers.index(name) for name in wanted)


def _block_out_channels(block: nn.Module) -> int:
    """Output channels of a torchvision ResNet block (Bottleneck: conv3, BasicBlock: conv2)."""
    for name in ("conv3", "conv2"):
        conv = getattr(block, name, None)
        if isinstance(conv, nn.Conv2d):
            return conv.out_channels
    raise ArtlensError(f"cannot tell the output channels of ResNet block {type(block).__name__}",
                       hint="pass a torchvision ResNet")


class ResNetBackbone(HubBackbone):
    """A torchvision ResNet: taps ``layer1``..``layer4`` (B, C, h, w) and ``pool`` (the global
    average of layer4, 2048-d for ResNet-50)."""

    layers = ("layer1", "layer2", "layer3", "layer4", "pool")

    def __init__(self, module: nn.Module):
        super().__init__(module)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            last_block = list(getattr(module, name).children())[-1]
            self.layer_channels[name] = _block_out_channels(last_block)
        self.layer_channels["pool"] = self.layer_channels["layer4"]

    def forward_features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        wanted = self._check_layers(layers)
        if not wanted:
            return {}
        m = self.module
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        out: dict[str, Tensor] = {}
        for name in ("layer1", "layer2", "layer3", "layer4")[: self._deepest(wanted) + 1]:
            x = getattr(m, name)(x)
            if name in wanted:
                out[name] = x
        if "pool" in wanted:
            out["pool"] = x.mean((2, 3))
        return out


class VGGBackbone(HubBackbone):
    """A torchvision VGG (with or without BatchNorm): taps ``convB_I`` are the ReLU outputs of the
    I-th convolution of block B (``conv4_1``, ``conv5_1``...), as in the style-transfer literature;
    ``pool`` is the global average of ``features``' output (after the last max-pool)."""

    def __init__(self, module: nn.Module):
        super().__init__(module)
        self._tap_at: dict[int, str] = {}
        block, conv_index, channels = 1, 0, 0
        for index, layer in enumerate(module.features):
            if isinstance(layer, nn.Conv2d):
                conv_index += 1
                channels = layer.out_channels
            elif isinstance(layer, nn.ReLU) and conv_index:
                name = f"conv{block}_{conv_index}"
                self._tap_at[index] = name
                self.layer_channels[name] = channels
            elif isinstance(layer, nn.MaxPool2d):
                block, conv_index = block + 1, 0
        self.layer_channels["pool"] = channels
        self.layers = (*self._tap_at.values(), "pool")

    def forward_features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        wanted = self._check_layers(layers)
        out: dict[str, Tensor] = {}
        features = self.module.features
        for index, layer in enumerate(features):
            if len(out) == len(wanted):
                break
            x = layer(x)
            name = self._tap_at.get(index)
            if name in wanted:
                out[name] = x  # what follows a ReLU (conv, max-pool) never writes into its input
        if "pool" in wanted:
            out["pool"] = x.mean((2, 3))
        return out


class ViTBackbone(HubBackbone):
    """A torchvision VisionTransformer: taps ``block0``..``blockN-1`` are the patch tokens after each
    encoder layer as (B, hidden, h, w) maps (CLS token dropped); ``pool`` is the CLS token after the
    final LayerNorm, the input of the classification head."""

    def __init__(self, module: nn.Module):
        super().__init__(module)
        self.input_size = int(module.image_size)
        depth = len(module.encoder.layers)
        hidden = int(module.hidden_dim)
        self.layers = (*(f"block{i}" for i in range(depth)), "pool")
        self.layer_channels = {name: hidden for name in self.layers}

    def forward_features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        wanted = self._check_layers(layers)
        if not wanted:
            return {}
        m = self.module
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"ViT expects {self.input_size}x{self.input_size} input, got {tuple(x.shape[-2:])}")
        patches = m.conv_proj(x)  # (B, hidden, h, w)
        b, hidden, h, w = patches.shape
        tokens = patches.flatten(2).transpose(1, 2)
        tokens = torch.cat([m.class_token.expand(b, -1, -1), tokens], dim=1)
        encoder = m.encoder
        tokens = encoder.dropout(tokens + encoder.pos_embedding)
        out: dict[str, Tensor] = {}
        last_block = min(self._deepest(wanted), len(encoder.layers) - 1)
        for i, layer in enumerate(encoder.layers[: last_block + 1]):
            tokens = layer(tokens)
            if f"block{i}" in wanted:
                out[f"block{i}"] = tokens[:, 1:].transpose(1, 2).reshape(b, hidden, h, w)
        if "pool" in wanted:
            for layer in encoder.layers[last_block + 1 :]:
                tokens = layer(tokens)
            out["pool"] = encoder.ln(tokens)[:, 0]
        return out


def _torchvision_models():
    try:
        import torchvision.models as models
    except Exception as exc:  # missing, or a build that does not match torch (fails at import)
        raise ArtlensError(
            f"the hub backbones need a working torchvision ({type(exc).__name__}: {exc})",
            hint=f"{HUB_INSTALL_HINT}, with a torchvision build matching your torch",
        ) from exc
    return models


def _build(factory_name: str, weights: str | None) -> nn.Module:
    factory = getattr(_torchvision_models(), factory_name)
    try:
        return factory(weights=weights)
    except (OSError, RuntimeError) as exc:  # no network, or an interrupted download
        raise ArtlensError(
            f"could not load the {weights} weights of torchvision {factory_name}: {exc}",
            hint="connect to the network once (weights are cached under $TORCH_HOME), or pass weights=None",
        ) from exc


def load_resnet50(weights: str | None = "IMAGENET1K_V1") -> ResNetBackbone:
    """torchvision ResNet-50 (ImageNet weights by default; None for random weights)."""
    return ResNetBackbone(_build("resnet50", weights))


def load_vgg16(weights: str | None = "IMAGENET1K_V1") -> VGGBackbone:
    return VGGBackbone(_build("vgg16", weights))


def load_vgg19(weights: str | None = "IMAGENET1K_V1") -> VGGBackbone:
    return VGGBackbone(_build("vgg19", weights))


def load_vit_b16(weights: str | None = "IMAGENET1K_V1") -> ViTBackbone:
    return ViTBackbone(_build("vit_b_16", weights))


HUB_IMAGE_BACKBONES: dict[str, Callable[..., HubBackbone]] = {
    "resnet50": load_resnet50,
    "vgg16": load_vgg16,
    "vgg19": load_vgg19,
    "vit-b16": load_vit_b16,
}


def load_hub_backbone(name: str, **kwargs) -> HubBackbone:
    """One of ``HUB_IMAGE_BACKBONES`` by name."""
    try:
        loader = HUB_IMAGE_BACKBONES[name]
    except KeyError:
        raise ArtlensError(f"unknown hub backbone {name!r}", hint=f"choose one of {sorted(HUB_IMAGE_BACKBONES)}") from None
    return loader(**kwargs)


class BertTextEncoder:
    """A Hugging Face BERT-like encoder: mean of the last hidden states over the real tokens."""

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 512, batch_size: int = 32):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = int(model.config.hidden_size)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(B, hidden) float32 mean-pooled vectors."""
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                max_length=self.max_length, return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            chunks.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0))
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return torch.cat(chunks).float().numpy()


def load_bert(name_or_path: str | Path = "bert-base-uncased", max_length: int = 512) -> BertTextEncoder:
    """A BERT encoder from the Hugging Face hub or a local ``save_pretrained`` folder (respects
    ``HF_HUB_OFFLINE``)."""
    try:
        from transformers import AutoModel, AutoTokenizer
    except Exception as exc:
        raise ArtlensError(f"the BERT encoder needs transformers ({type(exc).__name__}: {exc})",
                           hint=HUB_INSTALL_HINT) from exc
    local = Path(name_or_path).is_dir()
    offline = local or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), local_files_only=offline)
        model = AutoModel.from_pretrained(str(name_or_path), local_files_only=offline)
    except OSError as exc:
        raise ArtlensError(
            f"could not load the text encoder {name_or_path!r}: {exc}",
            hint="connect to the network once (the model is cached by Hugging Face), or pass a local folder",
        ) from exc
    return BertTextEncoder(model, tokenizer, max_length=max_length)
