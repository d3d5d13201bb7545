"""The training loop, splits and `artlens train` on tiny data (a CPU smoke test of the whole path)."""

import json
import shutil

import numpy as np
import pytest
import torch

from artlens.cli import main
from artlens.errors import ArtlensError
from artlens.files import pyplot, save_figure, write_json
from artlens.metrics import leave_self_out_map
from artlens.models import HeadConfig, HeadShape, InputSpec, create_head, load_head
from artlens.models.inputs import FeatureSet
from artlens.train import TrainConfig, fit_local_epochs, stratified_split, train_head
from artlens.train.curves import plot_curves, write_metrics
from artlens.train.split import column_split

SPECS = (InputSpec("img", "img/v1", "image", 32), InputSpec("txt", "txt/v1", "text", 8, optional=True))


def clustered(n_per_class=40, classes=4, seed=0, noise=1.0) -> FeatureSet:
    """Classes told apart by 4 of 32 dimensions, the other 28 loud noise: cosine on the raw vectors
    ranks them poorly, a head learns which dimensions matter."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, 4))
    codes = np.repeat(np.arange(classes), n_per_class)
    signal = centres[codes] + 0.3 * noise * rng.normal(size=(len(codes), 4))
    img = np.hstack([signal, 3 * noise * rng.normal(size=(len(codes), 28))]).astype(np.float32)
    txt = rng.normal(size=(len(codes), 8)).astype(np.float32)
    present = rng.random(len(codes)) > 0.3
    txt[~present] = 0
    keys = [f"{i:032x}" for i in range(len(codes))]
    return FeatureSet(np.arange(len(codes)), keys, {"img": img, "txt": txt}, {"txt": present}, codes[:, None])


def new_head(classes=4, loss="ce", seed=0):
    torch.manual_seed(seed)
    return create_head("fusion", HeadConfig(SPECS, hidden=(32,), dim=16, dropout=0.1, label="y",
                                            classes=tuple(map(str, range(classes))),
                                            classifier="cosine" if loss == "proxy" else "linear"))


def fitted_head(train, **kw):
    head = new_head(**kw)
    head.fit_inputs(train.inputs, train.present)
    return head


FAST = dict(epochs=20, batch_size=32, patience=20, head=HeadShape(hidden=(32,), dim=16))


@pytest.mark.parametrize("loss", ["ce", "proxy", "triplet", "supcon"])
def test_every_loss_learns_a_better_embedding_than_the_inputs(loss):
    data = clustered(n_per_class=60)
    rows = np.random.default_rng(0).permutation(len(data))
    train, val = data.subset(np.sort(rows[:160])), data.subset(np.sort(rows[160:]))
    raw = val.inputs["img"] / np.linalg.norm(val.inputs["img"], axis=1, keepdims=True)
    before = leave_self_out_map(raw, val.labels[:, 0])
    head = fitted_head(train, loss=loss)
    history = train_head(head, train, val, TrainConfig(loss=loss, **FAST))
    assert history.epochs and history.best_epoch >= 1
    assert history.best["val_map"] > before + 0.15
    assert {"train_loss", "val_loss", "val_map", "val_acc", "train_acc"} <= set(history.epochs[0])
    proba = head.predict_proba(head.embed(val.inputs, val.present))
    assert np.mean(proba.argmax(1) == val.labels[:, 0]) > 0.5  # a classifier exists for every loss


def test_training_is_deterministic():
    data = clustered()
    train, val = data.subset(np.arange(0, 160, 2)), data.subset(np.arange(1, 160, 2))
    runs = []
    for _ in range(2):
        head = fitted_head(train, loss="triplet")
        train_head(head, train, val, TrainConfig(loss="triplet", **dict(FAST, epochs=3)))
        runs.append(head)
    assert runs[0].id == runs[1].id
    np.testing.assert_array_equal(runs[0].embed(val.inputs, val.present), runs[1].embed(val.inputs, val.present))


def test_early_stopping_keeps_the_best_epoch():
    data = clustered(noise=3.0)
    train, val = data.subset(np.arange(0, 160, 2)), data.subset(np.arange(1, 160, 2))
    head = fitted_head(train)
    history = train_head(head, train, val, TrainConfig(loss="ce", **dict(FAST, epochs=40, patience=2)))
    assert history.stopped_early and len(history.epochs) < 40
    assert len(history.epochs) == history.best_epoch + 2
    kept = leave_self_out_map(head.embed(val.inputs, val.present), val.labels[:, 0])
    assert kept == pytest.approx(history.best["val_map"], abs=1e-6)


def test_feature_augmentation_mixes_within_classes_and_leaves_optional_inputs():
    from artlens.train.objectives import augment_features

    data = clustered()
    head = fitted_head(data)
    x = head.transform({k: torch.from_numpy(v) for k, v in data.inputs.items()})
    codes = data.labels[:, 0]
    same = augment_features(head, x, codes, TrainConfig())
    assert same is x  # off by default: nothing changes
    torch.manual_seed(0)
    mixed = augment_features(head, x, codes, TrainConfig(mixup=0.4))
    assert torch.equal(mixed["txt"], x["txt"])  # an optional input may be missing: never blended
    moved = (mixed["img"] - x["img"]).abs().sum(dim=1) > 0
    assert moved.float().mean() > 0.8
    # each row lies between itself and a row of its own class, closer to itself
    for r in np.flatnonzero(moved.numpy())[:20]:
        others = x["img"][torch.from_numpy(codes == codes[r])]
        d = mixed["img"][r] - x["img"][r]
        weights = [float((d @ (o - x["img"][r])) / max(float((o - x["img"][r]).pow(2).sum()), 1e-9)) for o in others]
        assert any(0 < w <= 0.5 + 1e-5 and torch.allclose(x["img"][r] + w * (o - x["img"][r]), mixed["img"][r], atol=1e-4)
                   for w, o in zip(weights, others))
    noisy = augment_features(head, x, codes, TrainConfig(feature_noise=0.5))
    assert float((noisy["img"] - x["img"]).std()) == pytest.approx(0.5, rel=0.1)
    history = train_head(head, data.subset(np.arange(0, 160, 2)), data.subset(np.arange(1, 160, 2)),
                         TrainConfig(loss="supcon", mixup=0.4, feature_noise=0.2, **dict(FAST, epochs=3)))
    assert len(history.epochs) == 3


def test_fit_local_epochs_trains_in_place_for_the_federated_wrapper():
    data = clustered()
    head = fitted_head(data)
    before = head.id
    stats = fit_local_epochs(head, data, TrainConfig(loss="ce", **FAST), epochs=2)
    assert set(stats) == {"loss", "acc"} and stats["loss"] > 0
    assert head.id != before
    assert set(fit_local_epochs(head, data, TrainConfig(loss="supcon", **FAST))) == {"loss"}  # no classifier to score


def test_metrics_json_and_curves_png(tmp_path):
    data = clustered()
    train, val = data.subset(np.arange(0, 160, 2)), data.subset(np.arange(1, 160, 2))
    history = train_head(fitted_head(train), train, val, TrainConfig(**dict(FAST, epochs=3)))
    path = write_metrics(history, tmp_path / "m.metrics.json", {"test": {"map": 0.5}})
    saved = json.loads(path.read_text())
    assert len(saved["epochs"]) == 3 and saved["test"]["map"] == 0.5 and saved["best_epoch"] == history.best_epoch
    png = plot_curves(history, tmp_path / "m.curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_files_are_written_whole_with_numpy_values(tmp_path):
    out = tmp_path / "new" / "folder"
    path = write_json({"n": np.int64(3), "x": np.float32(0.5), "v": np.arange(3)}, out / "r.json")
    assert json.loads(path.read_text()) == {"n": 3, "x": 0.5, "v": [0, 1, 2]}
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json({"bad": object()}, out / "bad.json")
    fig, ax = pyplot().subplots()
    ax.plot([0, 1], [1, 0])
    assert save_figure(fig, out / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not pyplot().fignum_exists(fig.number)  # closed once saved
    assert sorted(p.name for p in out.iterdir()) == ["f.png", "r.json"]  # no temporary files left


def test_stratified_split_is_seeded_stratified_and_keyed_by_md5():
    keys = [f"{i:04d}" for i in range(100)]
    labels = ["a"] * 60 + ["b"] * 40
    split = stratified_split(keys, labels, seed=3)
    assert split.tolist() == stratified_split(keys, labels, seed=3).tolist()
    assert split.tolist() != stratified_split(keys, labels, seed=4).tolist()
    assert sum((split == "test") & (np.array(labels) == "a")) == 9 and sum((split == "test") & (np.array(labels) == "b")) == 6
    # the same artworks listed in another order get the same split
    order = np.random.default_rng(0).permutation(100)
    again = stratified_split([keys[i] for i in order], [labels[i] for i in order], seed=3)
    assert again.tolist() == split[order].tolist()
    with pytest.raises(ArtlensError, match="at least 3"):
        stratified_split(keys[:4], ["a", "a", "a", "b"])
    no_test = stratified_split(keys, labels, (0.85, 0.15, 0.0))
    assert "test" not in set(no_test) and sum(no_test == "val") == 15


def test_split_column_is_normalised_and_val_carved_from_train():
    labels = {i: "ab"[i % 2] for i in range(40)}
    values = {i: ("Test" if i < 10 else "training") for i in range(40)}
    split = column_split(values, labels)
    assert sum(s == "test" for s in split.values()) == 10
    assert sum(s == "val" for s in split.values()) >= 2 and set(split.values()) == {"train", "val", "test"}
    with pytest.raises(ArtlensError, match="train, val or test"):
        column_split({0: "holdout"}, {0: "a"})


# -- the whole path through the CLI, on the tiny collection ------------------------------------------
def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def own_collection(tiny_collection, tmp_path):
    """A private copy of the tiny collection, without any head an earlier test trained into the shared
    one, that tests may write heads into."""
    path = tmp_path / "coll"
    shutil.copytree(tiny_collection.root, path, ignore=shutil.ignore_patterns("heads", "learned"))
    return path


def test_cli_train_then_search_eval_and_apply_elsewhere(own_collection, tiny_collection, tmp_path, capsys):
    out = tmp_path / "exported" / "style.pt"
    code, stdout, err = run_cli(capsys, "train", "--collection", own_collection, "--label", "style", "--epochs", 4,
                                "--out", out, "--json", "-q")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["counts"] == {"train": 6, "val": 3, "test": 3} and summary["indexed"] == 12
    aspects = tiny_collection.config.aspects
    assert summary["inputs"] == [aspects["content"].extractor, aspects["style"].extractor, "minilm"]
    for path in (own_collection / "heads" / "learned.pt", out):
        assert path.exists() and path.with_suffix(".metrics.json").exists() and path.with_suffix(".curves.png").exists()
    assert (own_collection / "index" / "learned" / "manifest.json").exists()
    head = load_head(out)
    assert head.id == summary["head"] and sorted(sum(head.split.values(), [])) == sorted(
        a.md5 for a in tiny_collection.catalog.get_many(tiny_collection.catalog.ids()).values())

    code, stdout, err = run_cli(capsys, "search", "--collection", own_collection, "--id", 1, "--aspect", "learned",
                                "-k", 3, "--json")
    assert code == 0, err
    assert list(json.loads(stdout)["weights"]) == ["learned"]
    code, stdout, err = run_cli(capsys, "eval", "retrieval", "--collection", own_collection, "--label", "style",
                                "--aspect", "learned", "--split", "test", "--json")
    assert code == 0, err
    assert json.loads(stdout)["n_queries"] == 3
    # a head from elsewhere applies to a collection with the same extractors, writing nothing there
    before = sorted(p.name for p in tiny_collection.root.rglob("*") if "sqlite" not in p.name)
    code, stdout, err = run_cli(capsys, "eval", "retrieval", "--collection", tiny_collection.root, "--label", "style",
                                "--aspect", "learned", "--head", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["n_queries"] == 12
    assert sorted(p.name for p in tiny_collection.root.rglob("*") if "sqlite" not in p.name) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--label", "genre"], "label column 'genre' not found"),
        (["--label", "title"], "at least 3"),
        (["--label", "style", "--features", "gram-block3"], "gram-block3 features are not extracted"),
        (["--label", "style", "--features", "nope"], "unknown extractor"),
        (["--label", "style", "--loss", "hinge"], "unknown loss"),
    ],
)
def test_cli_train_bad_input_writes_nothing(args, message, own_collection, capsys):
    before = sorted(str(p) for p in own_collection.rglob("*") if "sqlite" not in p.name)
    code, _, err = run_cli(capsys, "train", "--collection", own_collection, "--epochs", 1, "-q", *args)
    assert code == 2 and message in err and "hint:" in err
    assert not (own_collection / "heads" / "learned.pt").exists() and not (own_collection / "index" / "learned").exists()
    assert sorted(str(p) for p in own_collection.rglob("*") if "sqlite" not in p.name) == before


def test_head_on_mismatched_extractors_is_a_clear_error(own_collection, tmp_path, capsys):
    head = new_head()  # trained on extractors "img" and "txt", which this collection never computed
    head.save(tmp_path / "foreign.pt")
    code, _, err = run_cli(capsys, "eval", "retrieval", "--collection", own_collection, "--label", "style",
                           "--aspect", "learned", "--head", tmp_path / "foreign.pt")
    assert code == 2 and "unknown extractor 'img'" in err
    spec = InputSpec("effnet-lite0", "effnet-lite0/v0", "image", 1280)
    torch.manual_seed(0)
    old = create_head("fusion", HeadConfig((spec,), hidden=(8,), dim=4, dropout=0.0))
    old.save(tmp_path / "old.pt")
    code, _, err = run_cli(capsys, "search", "--collection", own_collection, "--id", 1, "--aspect", "learned",
                           "--head", tmp_path / "old.pt")
    assert code == 2 and "trained on effnet-lite0/v0" in err and "artlens train" in err


def test_head_on_inputs_a_collection_lacks_extracts_them_when_applied(own_collection, tiny_folder, tmp_path, capsys):
    out = tmp_path / "gram4.pt"
    code, _, err = run_cli(capsys, "train", "--collection", own_collection, "--label", "style", "--features",
                           "gram-block4", "--extract", "--epochs", 2, "--out", out, "-q")
    assert code == 0, err
    other = tmp_path / "other"
    shutil.copytree(own_collection, other, ignore=shutil.ignore_patterns("heads", "learned"))
    from artlens.collection import Collection

    coll = Collection.open(other)
    gram4 = load_head(out).config.inputs[0].extractor_id
    coll.cache.delete(gram4, coll.cache.keys(gram4))  # as if freshly ingested with the default aspects
    assert coll.cache.count(gram4) == 0
    coll.close()
    code, stdout, err = run_cli(capsys, "search", "--collection", other, "--id", 1, "--aspect", "learned",
                                "--head", out, "-k", 3, "--json")
    assert code == 0, err
    assert "gram-block4" in err and "extracting" in err and len(json.loads(stdout)["results"]) == 3
    coll = Collection.open(other)
    assert coll.cache.count(gram4) == 12  # cached: applying the head again computes nothing
    coll.close()
    code, _, err = run_cli(capsys, "search", "--collection", other, "--id", 1, "--aspect", "learned", "--head", out)
    assert code == 0 and "extracting" not in err

    # the image files are gone: the error names the extractor and what to do
    coll = Collection.open(other)
    coll.cache.delete(gram4, coll.cache.keys(gram4))
    coll.close()
    moved = tmp_path / "moved"
    shutil.copytree(tiny_folder[0], moved)
    shutil.rmtree(tiny_folder[0] / "images")
    try:
        code, _, err = run_cli(capsys, "search", "--collection", other, "--id", 1, "--aspect", "learned",
                               "--head", out)
    finally:
        shutil.copytree(moved / "images", tiny_folder[0] / "images")
    assert code == 2 and "gram-block4" in err and "could not be read" in err and "hint:" in err
