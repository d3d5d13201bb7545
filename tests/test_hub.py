"""The hub wrappers on tiny locally built modules with the attribute structure of torchvision's
ResNet, VGG and ViT, and a tiny BERT saved with ``save_pretrained``; nothing is downloaded."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from artlens.errors import ArtlensError
from artlens.features.hub import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ResNetBackbone,
    VGGBackbone,
    ViTBackbone,
    load_bert,
    load_hub_backbone,
    load_resnet50,
    load_vit_b16,
    preprocess_imagenet,
)


class TinyBottleneck(nn.Module):
    def __init__(self, cin: int, mid: int, stride: int = 1):
        super().__init__()
        cout = mid * 4
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(TinyBottleneck(8, 2), TinyBottleneck(8, 2))
        self.layer2 = nn.Sequential(TinyBottleneck(8, 4, 2))
        self.layer3 = nn.Sequential(TinyBottleneck(16, 4, 2))
        self.layer4 = nn.Sequential(TinyBottleneck(16, 8, 2), TinyBottleneck(32, 8))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class TinyVGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )


class TinyEncoder(nn.Module):
    def __init__(self, seq: int, hidden: int, depth: int):
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.randn(1, seq, hidden) * 0.02)
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(*(
            nn.TransformerEncoderLayer(hidden, 2, 2 * hidden, dropout=0.0, batch_first=True) for _ in range(depth)
        ))
        self.ln = nn.LayerNorm(hidden)

    def forward(self, x):
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class TinyViT(nn.Module):
    def __init__(self, image_size: int = 32, patch_size: int = 8, hidden: int = 16, depth: int = 3):
        super().__init__()
        self.image_size, self.patch_size, self.hidden_dim = image_size, patch_size, hidden
        self.conv_proj = nn.Conv2d(3, hidden, patch_size, patch_size)
        self.class_token = nn.Parameter(torch.randn(1, 1, hidden))
        self.encoder = TinyEncoder((image_size // patch_size) ** 2 + 1, hidden, depth)
        self.heads = nn.Linear(hidden, 5)

    def forward(self, x):
        tokens = self.conv_proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        return self.heads(self.encoder(tokens)[:, 0])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_resnet_wrapper_taps_and_pool():
    module = TinyResNet().eval()
    backbone = ResNetBackbone(module)
    assert backbone.layer_channels == {"layer1": 8, "layer2": 16, "layer3": 16, "layer4": 32, "pool": 32}
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        taps = backbone.forward_features(x, backbone.layers)
        assert taps["layer1"].shape == (2, 8, 16, 16) and taps["layer4"].shape == (2, 32, 2, 2)
        torch.testing.assert_close(module.fc(taps["pool"]), module(x))
        torch.testing.assert_close(backbone(x), module(x))
        assert set(backbone.forward_features(x, ["layer2"])) == {"layer2"}
    with pytest.raises(ValueError, match="layer5"):
        backbone.forward_features(x, ["layer5"])


def test_vgg_wrapper_names_relu_outputs_by_block_and_stops_early():
    module = TinyVGG().eval()
    backbone = VGGBackbone(module)
    assert backbone.layers == ("conv1_1", "conv2_1", "conv2_2", "pool")
    assert backbone.layer_channels == {"conv1_1": 4, "conv2_1": 6, "conv2_2": 8, "pool": 8}
    x = torch.randn(2, 3, 16, 16)
    ran = []
    module.features[5].register_forward_hook(lambda *_: ran.append("conv2_2"))
    with torch.inference_mode():
        taps = backbone.forward_features(x, ["conv2_1", "conv1_1"])
        assert ran == [] and set(taps) == {"conv1_1", "conv2_1"}
        torch.testing.assert_close(taps["conv1_1"], torch.relu(module.features[0](x)))
        torch.testing.assert_close(taps["conv2_1"], module.features[:5](x))
        full = backbone.forward_features(x, backbone.layers)
        assert full["conv2_2"].shape == (2, 8, 8, 8)
        torch.testing.assert_close(full["pool"], module.features(x).mean((2, 3)))


def test_vit_wrapper_gives_patch_maps_and_the_cls_token():
    module = TinyViT().eval()
    backbone = ViTBackbone(module)
    assert backbone.layers == ("block0", "block1", "block2", "pool")
    assert backbone.input_size == 32 and backbone.layer_channels["pool"] == 16
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        taps = backbone.forward_features(x, ["block1", "pool"])
        assert taps["block1"].shape == (2, 16, 4, 4)
        torch.testing.assert_close(module.heads(taps["pool"]), module(x))
        only_pool = backbone.forward_features(x, ["pool"])["pool"]
        torch.testing.assert_close(only_pool, taps["pool"])
    with pytest.raises(ValueError, match="32x32"):
        backbone.forward_features(torch.randn(1, 3, 48, 48), ["pool"])


def test_preprocess_imagenet_normalises_with_mean_and_std():
    x = preprocess_imagenet([Image.new("RGB", (100, 40), (255, 0, 128))], size=32)
    assert x.shape == (1, 3, 32, 32)
    expected = [(1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], -IMAGENET_MEAN[1] / IMAGENET_STD[1],
                (128 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    torch.testing.assert_close(x[0, :, 5, 5], torch.tensor(expected))
    assert ViTBackbone(TinyViT()).preprocess([Image.new("L", (10, 10))]).shape == (1, 3, 32, 32)


def test_loaders_name_the_extra_when_torchvision_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    for loader in (load_resnet50, load_vit_b16):
        with pytest.raises(ArtlensError, match=r"artlens\[hub\]"):
            loader()
    with pytest.raises(ArtlensError, match="vgg16"):
        load_hub_backbone("alexnet")


def _save_tiny_bert(folder):
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["a", "the", "painting", "of", "cat", "dog", "on", "hill", "blue", "sky", "##s", "oil"]
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(vocab_file=str(vocab)).save_pretrained(folder)
    config = BertConfig(vocab_size=len(words) + 5, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(folder)


def test_bert_loader_mean_pools_real_tokens_only(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _save_tiny_bert(tmp_path)
    encoder = load_bert(tmp_path)
    texts = ["a cat", "a painting of a dog on the hill , blue skys"]
    vectors = encoder.encode_texts(texts)
    assert vectors.shape == (2, 32) and vectors.dtype == np.float32 and encoder.dim == 32
    alone = encoder.encode_texts(texts[:1])  # no padding this time
    np.testing.assert_allclose(alone[0], vectors[0], atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    assert encoder.encode_texts([]).shape == (0, 32)


def test_bert_loader_explains_an_unavailable_model(monkeypatch, tmp_path):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ArtlensError, match="network"):
        load_bert("artlens-test/no-such-model")
