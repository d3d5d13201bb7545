"""Heads, losses and triplet sampling on tiny random vectors."""

import numpy as np
import pytest
import torch
from PIL import Image

from artlens.errors import ArtifactMismatchError, ArtlensError
from artlens.models import HeadConfig, InputSpec, create_head, list_heads, load_head
from artlens.models.inputs import check_extractors
from artlens.models.losses import cosine_triplet_loss, supervised_contrastive_loss
from artlens.models.sampling import TwoStageTripletSampler, relevance

SPECS = (InputSpec("img", "img/v1", "image", 24), InputSpec("wide", "wide/v1", "image", 40, reduce_dims=8),
         InputSpec("txt", "txt/v1", "text", 12, optional=True))


def make_head(classes=("a", "b", "c"), classifier="linear", seed=0):
    torch.manual_seed(seed)
    return create_head("fusion", HeadConfig(SPECS, hidden=(16,), dim=8, dropout=0.1, label="style",
                                            classes=classes, classifier=classifier))


def random_inputs(n=30, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {s.extractor: rng.normal(size=(n, s.raw_dim)).astype(np.float32) for s in SPECS}
    present = {"txt": rng.random(n) > 0.5}
    inputs["txt"][~present["txt"]] = 0
    return inputs, present


def test_registry_lists_and_rejects_unknown():
    assert "fusion" in list_heads()
    with pytest.raises(ArtlensError, match="unknown head"):
        create_head("nope", None)


def test_embeddings_are_unit_vectors_and_missing_text_is_fine():
    head = make_head()
    inputs, present = random_inputs()
    head.fit_inputs(inputs, present)
    emb = head.embed(inputs, present)
    assert emb.shape == (30, 8)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    none = head.embed(inputs, {"txt": np.zeros(30, dtype=bool)})
    assert np.isfinite(none).all()
    # without text the text vector is ignored: changing it does not move the embedding
    inputs2 = dict(inputs, txt=inputs["txt"] + 5)
    np.testing.assert_allclose(head.embed(inputs2, {"txt": np.zeros(30, dtype=bool)}), none, atol=1e-6)
    proba = head.predict_proba(emb)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_input_transform_reduces_and_standardises():
    head = make_head()
    inputs, present = random_inputs(n=50)
    head.fit_inputs(inputs, present)
    out = head.transform({k: torch.from_numpy(v) for k, v in inputs.items()})
    assert out["wide"].shape == (50, 8)
    np.testing.assert_allclose(out["img"].mean(0).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(out["img"].std(0, unbiased=False).numpy(), 1.0, atol=1e-3)


def test_save_load_roundtrip_keeps_weights_config_split_and_id(tmp_path):
    head = make_head(classifier="cosine")
    inputs, present = random_inputs()
    head.fit_inputs(inputs, present)
    head.split = {"train": ["a" * 32], "val": [], "test": ["b" * 32]}
    head.info = {"loss": "proxy"}
    path = head.save(tmp_path / "heads" / "h.pt")
    loaded = load_head(path)
    assert loaded.id == head.id and loaded.config == head.config
    assert loaded.split == head.split and loaded.info == head.info
    assert loaded.extractor_ids == {"img": "img/v1", "wide": "wide/v1", "txt": "txt/v1"}
    np.testing.assert_allclose(loaded.embed(inputs, present), head.embed(inputs, present), atol=1e-6)
    assert not list(tmp_path.glob("heads/.*"))  # no temporary file left behind


def test_id_changes_with_weights():
    a, b = make_head(seed=0), make_head(seed=1)
    assert a.id != b.id
    before = a.id
    with torch.no_grad():
        a.classifier.weight.add_(1.0)
    a.weights_changed()
    assert a.id != before


def test_load_rejects_foreign_and_missing_files(tmp_path):
    with pytest.raises(ArtlensError, match="no head file"):
        load_head(tmp_path / "missing.pt")
    (tmp_path / "x.pt").write_text("not a head")
    with pytest.raises(ArtlensError, match="is not an artlens head file .not a PyTorch file") as bad:
        load_head(tmp_path / "x.pt")
    assert "artlens train" in bad.value.hint and ": 1" not in bad.value.message
    Image.new("RGB", (8, 8)).save(tmp_path / "picture.jpg")
    with pytest.raises(ArtlensError, match="picture.jpg is not an artlens head file"):
        load_head(tmp_path / "picture.jpg")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ArtlensError, match="a PyTorch file without a head"):
        load_head(tmp_path / "other.pt")
    torch.save({"schema_version": 99}, tmp_path / "old.pt")
    with pytest.raises(ArtifactMismatchError, match="schema version"):
        load_head(tmp_path / "old.pt")


def test_head_on_other_extractor_versions_is_refused():
    with pytest.raises(ArtifactMismatchError, match="trained on effnet-lite0/v0"):
        check_extractors([InputSpec("effnet-lite0", "effnet-lite0/v0", "image", 1280)])
    check_extractors([InputSpec("effnet-lite0", "effnet-lite0/v1", "image", 1280)])


def test_triplet_loss_on_cosine_distance():
    a = torch.tensor([[1.0, 0.0]])
    close, far = torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]])
    assert cosine_triplet_loss(a, close, far, margin=0.6).item() == pytest.approx(0.0)
    assert cosine_triplet_loss(a, far, close, margin=0.6).item() == pytest.approx(2.6)
    orth = torch.tensor([[0.0, 1.0]])
    assert cosine_triplet_loss(a, close, orth, margin=0.6).item() == pytest.approx(0.0)  # 0 - 1 + 0.6 < 0
    assert cosine_triplet_loss(a, orth, close, margin=0.6).item() == pytest.approx(1.6)


def test_supcon_prefers_clustered_embeddings():
    labels = np.array([0, 0, 1, 1])
    pos = torch.from_numpy(labels[:, None] == labels[None, :])
    clustered = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [-1.0, 0.1], [-1.0, -0.1]]), dim=1)
    mixed = clustered[[0, 2, 1, 3]]
    assert supervised_contrastive_loss(clustered, pos).item() < supervised_contrastive_loss(mixed, pos).item()
    alone = torch.eye(2, dtype=torch.bool)
    assert supervised_contrastive_loss(clustered[:2], alone).item() == 0.0


def test_relevance_with_several_columns_needs_more_than_half_shared():
    labels = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 1], [-1, -1, -1]])
    rel = relevance(labels, labels)
    assert rel[0].tolist() == [True, True, False, False]
    assert not rel[3].any()  # unknown labels never match
    assert relevance(np.array([[1]]), np.array([[1], [2]])).tolist() == [[True, False]]


def test_two_stage_sampler_draws_relevant_positives_and_hard_negatives():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)[:, None]
    pretrained = rng.normal(size=(60, 6)).astype(np.float32)
    pretrained /= np.linalg.norm(pretrained, axis=1, keepdims=True)
    sampler = TwoStageTripletSampler(labels, pretrained, hard_pool=5, hard_fraction=1.0)
    a, p, n = sampler.sample(np.random.default_rng(1))
    assert len(a) == 60 and set(a.tolist()) == set(range(60))
    assert (labels[a, 0] == labels[p, 0]).all() and (a != p).all()
    assert (labels[a, 0] != labels[n, 0]).all()
    for i in range(60):  # hard pool = the 5 most similar artworks of another class
        others = np.flatnonzero(labels[:, 0] != labels[i, 0])
        best = others[np.argsort(-(pretrained[others] @ pretrained[i]))[:5]]
        assert set(sampler.hard[i].tolist()) == set(best.tolist())
    hard_only = dict(zip(a.tolist(), n.tolist()))
    assert all(hard_only[i] in sampler.hard[i] for i in range(60))
