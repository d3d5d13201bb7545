"""`--device`: one resolver, extraction on any device equal to the CPU's, and a GPU asked for where
there is none is a one-line error that writes nothing. The extraction test runs on CUDA too where
torch sees a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_folder

from artlens.catalog.ingest import file_md5
from artlens.cli import main
from artlens.devices import extraction_batch_size, resolve_device
from artlens.errors import ArtlensError
from artlens.features import create_extractor
from artlens.features.cache import FeatureCache
from artlens.features.extract import extract_images, extract_texts, text_key

GPU = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not GPU, reason="torch sees no CUDA GPU"))]
NAMES = ["effnet-lite0", "gram-block4", "colour-hist"]


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    with pytest.raises(ArtlensError, match="torch sees no CUDA GPU") as info:
        resolve_device("cuda")
    assert "--device cpu" in info.value.hint
    with pytest.raises(ArtlensError, match="unknown device 'tpu'") as info:
        resolve_device("tpu")
    assert "cuda:N" in info.value.hint
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda:0")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ArtlensError, match="has 2 CUDA GPUs"):
        resolve_device("cuda:2")


def test_batches_grow_on_a_gpu():
    assert extraction_batch_size("cpu", 32) == 32
    assert extraction_batch_size("cuda:0", 32) == 128
    assert extraction_batch_size("cuda:0", 512) == 512


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    root = make_folder(tmp_path_factory.mktemp("pictures"), per_kind=2)[0]
    (root / "images" / "broken.png").write_bytes(b"not an image")
    paths = sorted((root / "images").iterdir())
    return [(file_md5(p), str(p)) for p in paths]


@pytest.fixture(scope="module")
def default_cache(items, tmp_path_factory):
    cache = FeatureCache(tmp_path_factory.mktemp("default") / "features.sqlite")
    report = extract_images(items, NAMES, cache, batch_size=4)
    assert len(report.failed) == 1 and "broken.png" in report.failed[0][1]
    return cache


def _same_vectors(cache, reference, items, atol):
    keys = [md5 for md5, path in items if not path.endswith("broken.png")]
    for name in NAMES:
        extractor = create_extractor(name)
        got, found = cache.get(extractor.id, keys)
        want, _ = reference.get(extractor.id, keys)
        assert found.all(), name
        np.testing.assert_allclose(got, want, atol=atol, err_msg=name)


@pytest.mark.parametrize("device", DEVICES)
def test_extraction_on_a_device_equals_the_default(device, items, default_cache, tmp_path):
    cache = FeatureCache(tmp_path / "features.sqlite")
    report = extract_images(items, NAMES, cache, batch_size=4, device=str(resolve_device(device)))
    assert report.computed == {name: len(items) - 1 for name in NAMES}
    assert len(report.failed) == 1
    _same_vectors(cache, default_cache, items, atol=1e-5 if device == "cpu" else 2e-3)


def test_decoding_in_worker_processes_gives_the_same_vectors(items, default_cache, tmp_path):
    cache = FeatureCache(tmp_path / "features.sqlite")
    report = extract_images(items, NAMES, cache, batch_size=4, workers=2)
    assert len(report.failed) == 1 and "broken.png" in report.failed[0][1]
    _same_vectors(cache, default_cache, items, atol=1e-6)


@pytest.mark.slow  # loads the sentence encoder
@pytest.mark.parametrize("device", DEVICES)
def test_text_extraction_on_a_device(device, tmp_path):
    texts = ["Blue stripes on a field", "Red dots scattered"]
    default, moved = FeatureCache(tmp_path / "a.sqlite"), FeatureCache(tmp_path / "b.sqlite")
    extract_texts(texts, ["minilm"], default)
    extract_texts(texts, ["minilm"], moved, device=str(resolve_device(device)))
    extract_texts(["again on the CPU"], ["minilm"], moved)  # the encoder moves back
    keys = [text_key(t) for t in texts]
    extractor_id = create_extractor("minilm").id
    np.testing.assert_allclose(moved.get(extractor_id, keys)[0], default.get(extractor_id, keys)[0], atol=1e-4)


@pytest.mark.parametrize("command", [
    ["ingest", "{folder}", "-c", "{target}"],
    ["train", "--label", "style", "-c", "{target}"],
    ["registry", "add", "{folder}", "--owner", "someone", "--registry", "{target}"],
    ["registry", "train", "--registry", "{target}"],
])
def test_a_gpu_that_is_not_there_is_an_error_and_nothing_is_written(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    folder = make_folder(tmp_path / "pictures", per_kind=1)[0] / "images"
    target = tmp_path / "target"
    code = main([a.format(folder=folder, target=target) for a in command] + ["--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error: --device cuda: torch sees no CUDA GPU on this machine" in err
    assert "hint: run with --device cpu" in err
    assert len(err.strip().splitlines()) == 2  # the error and its hint
    assert not target.exists()
