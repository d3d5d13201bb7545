"""`--device`: one resolver, extraction and head training (central and federated) on any device
equal to the CPU's, heads saved as CPU tensors whatever trained them, and a GPU asked for where there
is none is a one-line error that writes nothing. The equality tests run on CUDA too where torch sees
a GPU."""

from __future__ import annotations

import os

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
from artlens.models import HeadConfig, HeadShape, InputSpec, create_head, load_head
from artlens.models.inputs import FeatureSet
from artlens.train import TrainConfig, train_head

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
    ["federate", "simulate", "--collection", "{target}"],
    ["federate", "client", "--collection", "{target}", "--institution", "a", "--server", "127.0.0.1:9"],
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


# -- head training ----------------------------------------------------------------------------------
SPECS = (InputSpec("img", "img/v1", "image", 24), InputSpec("txt", "txt/v1", "text", 6, optional=True))
# no dropout: its masks come from the device's random stream, which differs between CPU and GPU
SHAPE = HeadShape(hidden=(16,), dim=8, dropout=0.0)


def labelled(n_per_class=12, classes=3, seed=0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(classes), n_per_class)
    img = (rng.normal(size=(classes, 24))[codes] + rng.normal(size=(len(codes), 24))).astype(np.float32)
    txt = rng.normal(size=(len(codes), 6)).astype(np.float32)
    present = rng.random(len(codes)) > 0.3  # some artworks without text: the presence masks travel too
    keys = [f"{i:032x}" for i in range(len(codes))]
    return FeatureSet(np.arange(len(codes)), keys, {"img": img, "txt": txt}, {"txt": present}, codes[:, None])


def trained(device: str, loss: str = "ce", **changes):
    data = labelled()
    train, val = data.subset(np.arange(len(data)) % 4 != 0), data.subset(np.arange(len(data)) % 4 == 0)
    config = TrainConfig(**{"loss": loss, "epochs": 4, "batch_size": 8, "patience": 10, "head": SHAPE,
                            "device": device, **changes})
    torch.manual_seed(0)
    head = create_head("fusion", config.head_config(SPECS, "y", ("a", "b", "c")))
    head.fit_inputs(train.inputs, train.present)
    history = train_head(head, train, val, config)
    return head, history, val


@pytest.mark.parametrize("loss", ["ce", "supcon", "triplet"])
def test_training_on_auto_gives_the_cpu_head_on_this_machine(loss):
    reference, _, val = trained("cpu", loss)
    head, _, _ = trained("auto", loss)
    atol = 0.0 if not GPU else 2e-3
    for name, tensor in reference.state_dict().items():
        np.testing.assert_allclose(head.state_dict()[name].numpy(), tensor.numpy(), atol=atol, err_msg=name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("loss", ["ce", "proxy", "supcon", "triplet"])
def test_a_head_trained_on_a_device_equals_the_cpu_head(device, loss):
    reference, ref_history, val = trained("cpu", loss)
    head, history, _ = trained(str(resolve_device(device)), loss)
    assert head.device == torch.device("cpu")  # back on the CPU: embedding and saving need no device
    atol = 0.0 if device == "cpu" else 2e-3
    for name, tensor in reference.state_dict().items():
        np.testing.assert_allclose(head.state_dict()[name].numpy(), tensor.numpy(), atol=atol, err_msg=name)
    np.testing.assert_allclose(head.embed(val.inputs, val.present), reference.embed(val.inputs, val.present),
                               atol=max(atol, 1e-6))
    assert [e["epoch"] for e in history.epochs] == [e["epoch"] for e in ref_history.epochs]


@pytest.mark.parametrize("device", DEVICES)
def test_a_head_trained_on_a_device_is_saved_as_cpu_tensors(device, tmp_path):
    head, _, val = trained(str(resolve_device(device)))
    path = head.save(tmp_path / "head.pt")
    payload = torch.load(path, map_location=None, weights_only=True)  # no map_location: as it was written
    assert {t.device.type for t in payload["state_dict"].values()} == {"cpu"}
    np.testing.assert_allclose(load_head(path).embed(val.inputs, val.present), head.embed(val.inputs, val.present))


@pytest.mark.parametrize("device", DEVICES)
def test_record_level_dp_trains_on_a_device(device):
    head, history, _ = trained(str(resolve_device(device)), "ce", dp_records=8.0, batch_size=1_000_000)
    assert head.device == torch.device("cpu")
    assert history.privacy["steps"] == len(history.epochs) and 0 < history.privacy["epsilon"] <= 8.0
    assert all(torch.isfinite(t).all() for t in head.state_dict().values())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("strategy", ["fedavg", "fedprox", "fedstyle"])
def test_an_institutions_local_epochs_on_a_device_equal_the_cpus(device, strategy):
    from artlens.federated.config import FederatedConfig
    from artlens.federated.local import VirtualStyles, train_locally
    from artlens.federated.transforms import STYLE_COUNT, STYLE_FACTOR, STYLE_MEAN

    data = labelled()
    config = FederatedConfig(strategy=strategy, local_epochs=2,
                             training=TrainConfig(loss="ce", batch_size=8, head=SHAPE))
    anchors = present = None
    if strategy == "fedstyle":
        anchors = np.random.default_rng(1).normal(size=(3, SHAPE.dim)).astype(np.float32)
        anchors /= np.linalg.norm(anchors, axis=1, keepdims=True)
        present = np.array([True, True, False])
    rng = np.random.default_rng(2)  # the federation's style statistics: virtual artworks of every style
    styles = {STYLE_MEAN: rng.normal(size=(3, 24)), STYLE_FACTOR: 0.1 * rng.normal(size=(24, 24)),
              STYLE_COUNT: np.array([5, 5, 5])}
    heads = {}
    for name in ("cpu", str(resolve_device(device))):
        torch.manual_seed(0)
        head = create_head("fusion", config.training.head_config(SPECS, "y", ("a", "b", "c")))
        head.fit_inputs(data.inputs, data.present)
        virtual = VirtualStyles(head, styles) if strategy == "fedstyle" else None
        stats = train_locally(head, data, config.on_device(name), server_round=1, salt=7,
                              anchors=anchors, present=present, virtual=virtual)
        assert head.device == torch.device("cpu") and np.isfinite(stats["loss"])
        heads[name] = head
    reference, moved = heads["cpu"], heads[str(resolve_device(device))]
    atol = 0.0 if device == "cpu" else 2e-3
    for name, tensor in reference.state_dict().items():
        np.testing.assert_allclose(moved.state_dict()[name].numpy(), tensor.numpy(), atol=atol, err_msg=name)


def test_simulated_institutions_share_the_gpu_ray_shows_them(monkeypatch):
    pytest.importorskip("flwr")
    from artlens.federated.simulation import gpu_share, visible_gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_share("cpu", 3) is None and gpu_share("auto", 3) is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert gpu_share("auto", 4) == (0, 0.25) and gpu_share("cuda:1", 2) == (1, 0.5)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    with visible_gpu(1):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"  # the second GPU this process sees
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3,5"


def test_a_deployed_institution_trains_on_its_own_device():
    pytest.importorskip("flwr")
    from types import SimpleNamespace

    from artlens.federated.client_app import _on_node_device
    from artlens.federated.config import FederatedConfig
    from artlens.federated.deploy import supernode_args
    from artlens.federated.participant import Settings

    args = supernode_args("127.0.0.1:9093", "/tmp/c", "Louvre", 9100, device="cuda:1")
    assert 'device="cuda:1"' in args[args.index("--node-config") + 1]
    plain = supernode_args("127.0.0.1:9093", "/tmp/c", "Louvre", 9100)
    assert "device" not in plain[plain.index("--node-config") + 1]
    settings = Settings("{}", FederatedConfig())
    assert settings.federation.training.device == "auto"  # the run's setting, resolved on each machine
    node = SimpleNamespace(node_config={"collection": "/tmp/c", "device": "cuda:1"})
    assert _on_node_device(settings, node).federation.training.device == "cuda:1"
    assert _on_node_device(settings, SimpleNamespace(node_config={})).federation.training.device == "auto"
