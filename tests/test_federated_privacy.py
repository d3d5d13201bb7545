"""The differential-privacy accountant and noise calibration."""

import math

import numpy as np
import pytest

from artlens.errors import ArtlensError
from artlens.federated.privacy import (
    DEFAULT_ORDERS,
    RdpAccountant,
    calibrate_noise,
    epsilon_after,
    rdp_gaussian,
    rdp_to_epsilon,
)


def test_gaussian_mechanism_rdp_closed_form():
    orders = np.array([2.0, 4.0, 16.0])
    np.testing.assert_allclose(rdp_gaussian(2.0, 1.0, orders), orders / 8)
    # Poisson subsampling at rate 1 and integer orders agrees with the closed form
    np.testing.assert_allclose(rdp_gaussian(2.0, 0.999999, orders), orders / 8, rtol=1e-4)
    assert np.all(rdp_gaussian(2.0, 0.01, orders) < orders / 8)


def test_epsilon_grows_with_rounds_and_shrinks_with_noise():
    assert epsilon_after(1.0, 10, 1e-5) < epsilon_after(1.0, 50, 1e-5)
    assert epsilon_after(4.0, 50, 1e-5) < epsilon_after(2.0, 50, 1e-5)
    accountant = RdpAccountant(1e-5)
    assert accountant.epsilon() == 0.0
    for _ in range(5):
        accountant.compose(3.0)
    assert accountant.releases == 5
    assert accountant.epsilon() == pytest.approx(epsilon_after(3.0, 5, 1e-5))


def test_conversion_is_no_worse_than_the_classic_bound():
    rdp = 50 * rdp_gaussian(4.0)
    orders = np.asarray(DEFAULT_ORDERS)
    classic = float(np.min(rdp + math.log(1 / 1e-5) / (orders - 1)))
    eps, order = rdp_to_epsilon(rdp, 1e-5)
    assert eps <= classic and order in DEFAULT_ORDERS


def test_dp_sgd_reference_point():
    """Abadi et al.'s MNIST setting (q = 256/60000, sigma 1.1, 60 epochs, delta 1e-5): the classic RDP
    conversion gives epsilon ~3.0 in TF Privacy; the tighter conversion a bit less."""
    steps, q = 60 * 60000 // 256, 256 / 60000
    rdp = steps * rdp_gaussian(1.1, q, [float(a) for a in range(2, 64)])
    classic = float(np.min(rdp + math.log(1e5) / (np.arange(2, 64) - 1)))
    assert classic == pytest.approx(3.0, abs=0.1)
    assert 2.3 < epsilon_after(1.1, steps, 1e-5, q) < classic


def test_calibration_meets_the_target_tightly():
    for target, rounds in ((8.0, 50), (1.0, 10), (8.0, 1)):
        sigma = calibrate_noise(target, 1e-5, rounds)
        assert epsilon_after(sigma, rounds, 1e-5) <= target
        assert epsilon_after(sigma * 0.99, rounds, 1e-5) > target
    with pytest.raises(ArtlensError, match="positive"):
        calibrate_noise(0, 1e-5, 10)
