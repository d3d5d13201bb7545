"""The paper's CVAE keys and the robust head, on synthetic data (no backbone)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from artlens.copyright.config import CopyrightConfig, CVAEConfig, RobustConfig
from artlens.copyright.cvae import (
    ConvVAE,
    CVAEKeyDetector,
    first_key,
    second_key,
    thumbnail_extractor,
    train_cvae,
)
from artlens.copyright.extractors import register_extractors
from artlens.copyright.robust import (
    ProjectionHead,
    RobustDetector,
    calibrate_threshold,
    calibration_folds,
    train_calibrated_head,
    train_head,
)
from artlens.copyright.taps import COPY_TAPS
from artlens.errors import ArtifactMismatchError, ArtlensError, CollectionError
from artlens.features import create_extractor
from artlens.settings import with_changes

SRC = Path(__file__).resolve().parents[1] / "src"

TINY_CVAE = CVAEConfig(image_size=32, channels=(4, 8, 8, 16, 16), hidden=32, latent=16, epochs=1, batch_size=4)


def test_paper_architecture_is_five_convolutions_to_8192_then_2048_then_64():
    model = ConvVAE()  # the defaults are the paper's
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in model.encoder if isinstance(m, torch.nn.Linear)]
    assert len(convs) == 5 and dense[0].in_features == 8192 and dense[0].out_features == 2048
    assert model.to_mu.out_features == 64 and model.to_logvar.out_features == 64
    with pytest.raises(ArtlensError):
        ConvVAE(image_size=100)


def test_keys_follow_the_paper():
    mu = np.array([[0.12345, -0.5, 2.0, 0.0, 0.3, 0.3, 0.3, 0.3]], np.float32)
    mean = np.full(8, 0.2, np.float32)
    assert np.unpackbits(first_key(mu, mean)).tolist() == [0, 0, 1, 0, 1, 1, 1, 1]
    assert second_key(mu).tolist() == [[123, -500, 2000, 0, 300, 300, 300, 300]]


def _detector(mu: np.ndarray, config: CVAEConfig = TINY_CVAE) -> CVAEKeyDetector:
    model = ConvVAE(config.image_size, config.channels, config.hidden, config.latent)
    detector = CVAEKeyDetector(model, config, np.zeros(config.latent, np.float32))
    detector.set_works(np.arange(10, 10 + len(mu)), mu)
    return detector


def test_cvae_search_stages():
    rng = np.random.default_rng(0)
    works = rng.normal(size=(6, 16)).astype(np.float32)
    works[1] = works[0] * 1.02  # same sign pattern as work 0: two Hamming candidates
    detector = _detector(works, CVAEConfig(**{**TINY_CVAE.__dict__, "hamming_radius": 3}))
    unique = detector.match(works[3:4] * 1.01)[0]
    assert (unique.work_id, unique.stage, unique.registered, unique.candidates) == (13, "hamming", True, 1)
    several = detector.match(works[1:2] * 1.0)[0]
    assert several.candidates == 2 and several.stage == "cosine" and several.work_id == 11 and several.registered
    far = detector.match(-works[2:3])[0]  # every bit flipped: no candidate, cosine over all works, rejected
    assert far.candidates == 0 and far.stage == "cosine" and not far.registered
    strict = _detector(works, CVAEConfig(**{**TINY_CVAE.__dict__, "hamming_radius": 0, "cosine_threshold": 1.01}))
    assert not strict.match(-works[2:3])[0].registered


def test_cvae_trains_saves_loads_and_syncs(tmp_path):
    images = np.random.default_rng(1).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    model = train_cvae(images, TINY_CVAE)
    detector = _detector(np.zeros((0, 16), np.float32))
    detector.model = model
    mu = detector.describe(images)
    detector.set_works(np.arange(6), mu, refit_mean=True)
    detector.save(tmp_path / "cvae")
    loaded = CVAEKeyDetector.load(tmp_path / "cvae", TINY_CVAE)
    assert [m.work_id for m in loaded.match(mu)] == [m.work_id for m in detector.match(mu)]
    assert loaded.sync(np.array([0, 2, 7]), lambda new: mu[:1]) and loaded.ids.tolist() == [0, 2, 7]
    assert np.array_equal(loaded.keys2[0], detector.keys2[0])
    with pytest.raises(ArtifactMismatchError, match="another architecture"):
        CVAEKeyDetector.load(tmp_path / "cvae", CVAEConfig(**{**TINY_CVAE.__dict__, "latent": 8}))


def _views(n_works=40, n_views=4, dim=24, noise=0.4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_works, 1, dim))
    return (centres + noise * rng.normal(size=(n_works, n_views, dim))).astype(np.float32)


def test_robust_head_learns_to_match_edited_views_and_calibrates():
    config = RobustConfig(hidden=64, dim=16, epochs=30, batch_works=32, lr=3e-3, dropout=0.0)
    views = _views()
    head = train_head(views[:32], config)
    index = head.encode(views[:32, 0])
    queries = head.encode(views[:32, 3])
    assert (np.argmax(queries @ index.T, 1) == np.arange(32)).mean() > 0.9
    calibration = calibrate_threshold(head, views[:32, :3], views[:32, 3], views[32:], config)
    assert calibration.threshold > calibration.max_negative
    assert calibration.negatives == 8 * 4 and calibration.positives == 32


def test_small_registries_calibrate_on_several_disjoint_folds():
    config = RobustConfig()
    folds = calibration_folds(60, config)
    assert len(folds) == 10 and all(len(held) == 6 and len(kept) == 54 for held, kept in folds)
    assert sorted(np.concatenate([held for held, _ in folds]).tolist()) == list(range(60))
    assert all(not set(held) & set(kept) for held, kept in folds)
    assert len(calibration_folds(403, config)) == 3 and len(calibration_folds(1150, config)) == 1
    order = np.random.default_rng(config.seed).permutation(403)  # the first fold is the one-split holdout
    assert folds and np.array_equal(calibration_folds(403, config)[0][0], np.sort(order[:40]))


def test_calibration_pools_the_folds_and_counts_unedited_originals():
    config = RobustConfig(hidden=32, dim=8, epochs=5, batch_works=32, dropout=0.0, calibration_works=12,
                          holdout=0.1)
    views = _views(n_works=40, n_views=4)
    head, calibration = train_calibrated_head(views[:, :3], views[:, 3:], config)
    held, kept = calibration_folds(40, config)[0]
    assert calibration.folds == 3 and calibration.heldout_works == 12
    assert calibration.negatives == 12 * 4 and calibration.positives == 3 * 36  # originals, 2 views, 1 edit
    assert head.fingerprint() == train_head(views[kept, :3], config).fingerprint()  # the first fold's head
    one = calibrate_threshold(head, views[kept, :3], views[kept, 3], views[held], config)
    assert calibration.max_negative >= one.max_negative and calibration.threshold > calibration.max_negative
    assert -1.0 < calibration.max_unedited_negative <= calibration.max_negative


def test_robust_detector_save_load_sync_and_mismatch(tmp_path):
    head = ProjectionHead(24, 32, 8)
    detector = RobustDetector(head, "copy-taps/v1", 0.7)
    taps = _views(5, 1)[:, 0]
    detector.set_works(np.arange(5) + 1, taps)
    scores, ids = detector.search(detector.describe(taps), 2)
    assert ids[:, 0].tolist() == [1, 2, 3, 4, 5] and np.allclose(scores[:, 0], 1, atol=1e-5)
    detector.save(tmp_path / "robust")
    loaded = RobustDetector.load(tmp_path / "robust", "copy-taps/v1")
    assert loaded.threshold == 0.7 and loaded.descriptor_id == detector.descriptor_id
    assert loaded.sync(np.array([2, 9]), lambda new: taps[:1]) and loaded.ids.tolist() == [2, 9]
    with pytest.raises(ArtifactMismatchError, match="copy-taps/v2"):
        RobustDetector.load(tmp_path / "robust", "copy-taps/v2")


def test_config_round_trip_and_validation(tmp_path):
    config = with_changes(CopyrightConfig(), {"robust__views": 3, "cvae__epochs": 2, "detectors": ("cvae",)})
    config.save(tmp_path / "c.toml")
    assert CopyrightConfig.load(tmp_path / "c.toml") == config
    with pytest.raises(CollectionError, match="unknown detectors"):
        CopyrightConfig.from_dict({"detectors": ["sift"]})
    with pytest.raises(CollectionError, match="bad copyright settings"):
        CopyrightConfig.from_dict({"robust": {"nope": 1}})


def test_detector_extractors_are_registered_explicitly_and_once():
    code = ("import artlens.copyright.check, artlens.copyright.evaluate\n"
            "from artlens.features import list_extractors\n"
            "assert 'copy-taps' not in list_extractors(), 'registered at import'\n")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    register_extractors([32])
    taps, thumbs = create_extractor(COPY_TAPS), create_extractor("thumb-32")
    register_extractors([32])  # again: the same instances
    assert create_extractor(COPY_TAPS) is taps and create_extractor("thumb-32") is thumbs
    assert thumbs.dim == 32 * 32 * 3 and thumbnail_extractor(32) is thumbs
