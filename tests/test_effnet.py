from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import data_dir
from PIL import Image

from artlens.errors import ArtlensError
from artlens.features.effnet import (
    EFFNET_INPUT_SIZE,
    EFFNET_LITE0_LAYERS,
    ConvBNAct,
    EfficientNetLite0,
    bundled_weights_path,
    load_effnet_lite0,
    load_state_dict_by_order,
    preprocess_effnet,
    tf_same_padding,
)

EXPECTED_SHAPES = {
    "block0": (16, 112, 112),
    "block1": (24, 56, 56),
    "block2": (40, 28, 28),
    "block3": (80, 14, 14),
    "block4": (112, 14, 14),
    "block5": (192, 7, 7),
    "block6": (320, 7, 7),
}


def smooth_pattern() -> torch.Tensor:
    """A deterministic (1, 3, 224, 224) input in [-1, 1]."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 224), torch.linspace(0, 1, 224), indexing="ij")
    return torch.stack([torch.sin(6.0 * xx + 3.0 * yy), torch.cos(5.0 * yy * xx), 2.0 * xx - 1.0])[None]


@pytest.fixture(scope="module")
def plain_model() -> EfficientNetLite0:
    return load_effnet_lite0(fuse=False, channels_last=False)


@pytest.fixture(scope="module")
def fast_model() -> EfficientNetLite0:
    return load_effnet_lite0()


def test_every_tap_has_the_documented_shape():
    model = EfficientNetLite0().eval()
    with torch.inference_mode():
        taps = model.forward_features(torch.randn(2, 3, EFFNET_INPUT_SIZE, EFFNET_INPUT_SIZE), EFFNET_LITE0_LAYERS)
    assert set(taps) == set(EFFNET_LITE0_LAYERS)
    for name, shape in EXPECTED_SHAPES.items():
        assert taps[name].shape == (2, *shape)
        assert model.layer_channels[name] == shape[0]
    assert taps["pool"].shape == (2, 1280) and model.layer_channels["pool"] == 1280


def test_forward_stops_at_the_deepest_requested_tap():
    model = EfficientNetLite0().eval()
    ran = []
    for i, stage in enumerate(model.stages):
        stage.register_forward_hook(lambda *_, i=i: ran.append(i))
    model.head.register_forward_hook(lambda *_: ran.append("head"))
    with torch.inference_mode():
        taps = model.forward_features(torch.randn(1, 3, 64, 64), ["block2", "block0"])
    assert set(taps) == {"block0", "block2"} and ran == [0, 1, 2]
    with pytest.raises(ValueError, match="block9"):
        model.forward_features(torch.randn(1, 3, 64, 64), ["block9"])


@pytest.mark.parametrize("size", [(8, 8), (9, 9), (8, 9), (10, 7)])
@pytest.mark.parametrize("kernel,groups", [(3, 1), (5, 6)])
def test_strided_conv_matches_tensorflow_same_padding(size, kernel, groups):
    torch.manual_seed(0)
    layer = ConvBNAct(6, 6, kernel, stride=2, groups=groups, act=False).eval()
    x = torch.randn(2, 6, *size)
    top, bottom = tf_same_padding(size[0], kernel, 2)
    left, right = tf_same_padding(size[1], kernel, 2)
    expected = layer.bn(layer.conv(F.pad(x, (left, right, top, bottom))))
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), expected)


def test_pretrained_matches_the_reference_implementation(plain_model):
    # Values from the efficientnet-lite-pytorch package (lukemelas-style EfficientNet-Lite0) with the
    # same weights, on the same input.
    with torch.inference_mode():
        x = smooth_pattern()
        pool = plain_model.forward_features(x, ["pool"])["pool"]
        logits = plain_model(x)
    assert pool.sum().item() == pytest.approx(118.03015, rel=1e-4)
    assert pool[0, 2].item() == pytest.approx(0.31547, abs=1e-4)
    values, indices = logits.topk(5)
    assert indices[0].tolist() == [818, 644, 782, 604, 615]
    np.testing.assert_allclose(values[0].numpy(), [4.9191, 4.6768, 4.0735, 4.0205, 3.6696], atol=1e-3)


def test_pretrained_is_deterministic_and_fused_agrees_with_unfused(plain_model, fast_model):
    assert fast_model.is_fused and not plain_model.is_fused
    torch.manual_seed(1)
    x = torch.rand(3, 3, 224, 224) * 2 - 1
    with torch.inference_mode():
        first = fast_model.forward_features(x, ("block4", "pool"))
        second = fast_model.forward_features(x, ("block4", "pool"))
        plain = plain_model.forward_features(x, ("block4", "pool"))
        torch.testing.assert_close(fast_model(x), plain_model(x), atol=1e-3, rtol=1e-4)
    for name in ("block4", "pool"):
        assert torch.equal(first[name], second[name])
        torch.testing.assert_close(first[name], plain[name], atol=1e-3, rtol=1e-4)
        assert first[name].is_contiguous()


def test_order_mapping_rejects_a_wrong_state_dict(tmp_path):
    good = torch.load(bundled_weights_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()

    too_short = OrderedDict(list(good.items())[:-2])
    with pytest.raises(ArtlensError, match="has 294 tensors but EfficientNet-Lite0 needs 296"):
        load_state_dict_by_order(model, too_short)

    swapped = OrderedDict(good)
    swapped["_blocks.3._depthwise_conv.weight"] = torch.zeros(144, 1, 3, 3)  # a 5x5 kernel in the weights
    with pytest.raises(ArtlensError, match=r"_blocks\.3\._depthwise_conv\.weight.*\(144, 1, 3, 3\).*\(144, 1, 5, 5\)"):
        load_state_dict_by_order(model, swapped)

    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)
    with pytest.raises(ArtlensError, match="resnet.pth"):
        load_effnet_lite0(path)
    with pytest.raises(ArtlensError, match="not found"):
        load_effnet_lite0(tmp_path / "missing.pth")


def test_preprocess_resizes_whole_images_and_scales_to_minus_one_one():
    images = [
        Image.new("RGB", (300, 120), (255, 255, 255)),
        Image.new("L", (224, 224), 0),
        Image.new("RGBA", (50, 80), (255, 0, 0, 10)),
    ]
    x = preprocess_effnet(images)
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.float32
    assert torch.all(x[0] == 1.0) and torch.all(x[1] == -1.0)
    torch.testing.assert_close(x[2, :, 40, 25], torch.tensor([1.0, -1.0, -1.0]))
    assert preprocess_effnet(images[:1], size=64).shape == (1, 3, 64, 64)


@pytest.mark.data
def test_classifier_sees_landscapes_in_bob_ross_paintings(fast_model):
    paths = sorted(data_dir("bob_ross").rglob("*.jpg"))[:16]
    images = [Image.open(p).convert("RGB") for p in paths]
    with torch.inference_mode():
        top = fast_model(preprocess_effnet(images)).argmax(1)
    # ImageNet 970-980: alp, cliff, coral reef, geyser, lakeside, promontory, sandbar, seashore, valley, volcano
    assert ((top >= 970) & (top <= 980)).float().mean() >= 0.5
