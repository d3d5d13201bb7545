"""The extractor registry: names, dimensions, and the papers' hub backbones wired through it
(tested on locally built models of the same structure; nothing is downloaded)."""

import numpy as np
import pytest
import torch
from conftest import draw_picture
from torch import nn

from artlens.errors import ArtlensError
from artlens.features import backbone as backbone_mod
from artlens.features import create_extractor, list_extractors
from artlens.features.extract import encode_images
from artlens.features.style import style_matrices


def test_registry_names_and_dims():
    assert create_extractor("gram-block4").dim == 112 * 113 // 2
    assert create_extractor("gram-block4+block5").dim == 112 * 113 // 2 + 192 * 193 // 2
    assert create_extractor("effnet-lite0").dim == 1280
    assert "gram-block4+block5" in list_extractors()
    with pytest.raises(ArtlensError, match="unknown extractor"):
        create_extractor("gram-block99")


def test_style_matrices_hand_computed():
    fmap = torch.tensor([[[[1.0, 0.0]], [[1.0, 1.0]]]])  # (1, C=2, H=1, W=2)
    gram = style_matrices(fmap, "gram")[0]
    np.testing.assert_allclose(gram.numpy(), [[0.5, 0.5], [0.5, 1.0]])
    cosine = style_matrices(fmap, "cosine")[0]
    np.testing.assert_allclose(cosine.numpy(), [[1.0, 0.5 / np.sqrt(0.5)], [0.5 / np.sqrt(0.5), 1.0]], rtol=1e-6)
    np.testing.assert_allclose(style_matrices(fmap, "gramcos")[0].numpy(), (gram * cosine).numpy(), rtol=1e-6)


def test_image_extractors_share_one_forward_pass(monkeypatch):
    calls = []
    real = backbone_mod.Backbone.taps

    def counting(self, images, layers):
        calls.append(tuple(layers))
        return real(self, images, layers)

    monkeypatch.setattr(backbone_mod.Backbone, "taps", counting)
    images = [draw_picture("dots", 1), draw_picture("rings", 2)]
    names = ["effnet-lite0", "gram-block4", "cosine-block3", "colour-hist"]
    out = encode_images(images, [create_extractor(n) for n in names])
    assert calls == [("block3", "block4", "pool")]
    for name in names:
        assert out[name].shape == (2, create_extractor(name).dim)
        np.testing.assert_allclose(np.linalg.norm(out[name], axis=1), 1.0, rtol=1e-5)


def _tiny_vgg19() -> nn.Module:
    """The layout of torchvision's VGG-19 ``features`` (real widths), random weights."""
    layers, c_in = [], 3
    for width, convs in zip((64, 128, 256, 512, 512), (2, 2, 4, 4, 4)):
        for _ in range(convs):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = width
        layers.append(nn.MaxPool2d(2))
    module = nn.Module()
    module.features = nn.Sequential(*layers)
    return module


def test_hub_backbone_through_the_registry(monkeypatch):
    from artlens.features import hub

    torch.manual_seed(0)
    monkeypatch.setitem(hub.HUB_IMAGE_BACKBONES, "vgg19", lambda: hub.VGGBackbone(_tiny_vgg19()))
    monkeypatch.setattr(hub, "preprocess_imagenet", lambda images, size=224: torch.stack(
        [torch.from_numpy(np.asarray(im.resize((32, 32)), dtype=np.float32)).permute(2, 0, 1) / 255 for im in images]))
    backbone_mod._LOADED.pop("vgg19", None)
    try:
        extractors = [create_extractor("vgg19"), create_extractor("vgg19-gram-conv5_1")]
        out = encode_images([draw_picture("dots", 1)], extractors)
        assert out["vgg19"].shape == (1, 512)
        assert out["vgg19-gram-conv5_1"].shape == (1, 512 * 513 // 2)
    finally:
        backbone_mod._LOADED.pop("vgg19", None)


def test_hub_backbone_without_torchvision_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise ImportError("No module named 'torchvision'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    backbone_mod._LOADED.pop("resnet50", None)
    with pytest.raises(ArtlensError, match="torchvision") as info:
        backbone_mod.get_backbone("resnet50")
    assert "artlens[hub]" in info.value.hint


def test_text_encoder_loads_without_progress_bars_or_deprecation_warnings(capfd):
    import warnings

    from transformers.utils import logging as hf_logging

    from artlens.features.text import SentenceEncoderExtractor

    encoder = SentenceEncoderExtractor("minilm")  # a fresh instance: its model loads here
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        vectors = encoder.encode_texts(["a stormy sea"])
    assert vectors.shape == (1, 384) and encoder.dim == 384
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # the setting is restored for other users of transformers
