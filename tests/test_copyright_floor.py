"""The robust detector's threshold floor: generated distractors (flat fields, noise, gradients,
stripes) never pass as registered works, even on a registry too small to calibrate."""

import json

import pytest
from registry_support import tiny_registry

from artlens.copyright.check import CopyrightChecker
from artlens.copyright.config import RobustConfig
from artlens.copyright.registry import CopyrightRegistry
from artlens.copyright.distractors import distractor_images, distractor_taps, raise_to_floor


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_folder):
    return CopyrightRegistry.open(tiny_registry(tmp_path_factory, tiny_folder))


def test_a_small_registry_keeps_its_threshold_above_every_distractor(registry):
    detector = registry.detector("robust")
    assert len(detector) < RobustConfig.min_calibration_works  # not calibrated: the fixed default applied before
    floor = detector.info["distractor_floor"]
    assert detector.threshold == pytest.approx(min(max(RobustConfig.threshold, floor), 1.0))
    saved = json.loads((registry.folder / "robust" / "detector.json").read_text())
    assert saved["distractor_floor"] == pytest.approx(floor) and saved["threshold"] == pytest.approx(detector.threshold)
    # fresh distractors, not those the floor was set on
    fresh = distractor_images(seed=11)
    results = CopyrightChecker(registry).check_images(fresh, [f"d{i}" for i in range(len(fresh))])
    assert [r.verdict for r in results] == ["not-registered"] * len(fresh)


def test_the_floor_raises_a_threshold_and_never_lowers_it(registry):
    detector = registry.detector("robust")
    kept = detector.threshold
    taps = distractor_taps(0)
    try:
        detector.threshold = -1.0
        floor = raise_to_floor(detector, taps, margin=0.02)
        scores, _ = detector.search(detector.describe(taps), 1)
        assert floor == pytest.approx(float(scores.max()) + 0.02) and detector.threshold == pytest.approx(min(floor, 1.0))
        detector.threshold = 0.999
        raise_to_floor(detector, taps, margin=0.0)
        assert detector.threshold >= 0.999
    finally:
        detector.threshold = kept
