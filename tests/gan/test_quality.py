"""Quality statistics on sets whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from sentio.gan.quality import (
    embedding_metrics,
    fd_infinity,
    frechet_distance,
    kid,
    label_consistency,
    mean_spectrum_correlation,
    prdc,
    spectral_statistics,
    temporal_smoothness,
)


@pytest.fixture
def sets():
    rng = np.random.default_rng(0)
    return rng.standard_normal((400, 8)), rng.standard_normal((400, 8))


def test_frechet_distance_is_zero_on_itself_and_grows_with_a_shift(sets):
    a, b = sets
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifts = [frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    # a pure mean shift of s in each of 8 dimensions adds 8 s^2
    assert shifts == pytest.approx([8 * 0.25, 8 * 1.0, 8 * 4.0], rel=1e-6)
    assert frechet_distance(a, b) < 0.5  # two samples of one distribution


def test_fd_infinity_removes_the_small_sample_bias(sets):
    a, b = sets
    assert fd_infinity(a, b) < frechet_distance(a, b[:100])
    assert fd_infinity(a, a + 1.0) == pytest.approx(8.0, rel=0.1)


def test_kid_near_zero_for_one_distribution_and_positive_for_a_shift(sets):
    a, b = sets
    same, _ = kid(a, b)
    shifted, _ = kid(a, b + 1.0)
    assert abs(same) < 0.05 and shifted > 10 * max(abs(same), 1e-3)


def test_prdc_on_identical_and_disjoint_sets(sets):
    a, _ = sets
    same = prdc(a, a)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(a, a + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    metrics = embedding_metrics(a, a + 100.0)
    assert set(metrics) == {"fd", "fd_inf", "kid", "kid_std", "precision", "recall", "density", "coverage"}


def test_spectral_statistics():
    rng = np.random.default_rng(1)
    spectra = rng.standard_normal((20, 16, 32)) + np.linspace(0, 4, 16)[None, :, None]
    assert mean_spectrum_correlation(spectra, spectra[::-1]) == pytest.approx(1.0)
    assert mean_spectrum_correlation(spectra, spectra[:, ::-1]) < -0.9  # spectrum upside down
    smooth = np.cumsum(rng.standard_normal((4, 16, 32)), axis=2) * 0.1
    assert temporal_smoothness(smooth) < temporal_smoothness(rng.standard_normal((4, 16, 32)))
    labels = rng.uniform(-1, 1, (20, 2))
    stats = spectral_statistics(spectra, labels, spectra, labels)
    assert stats["mean_spectrum_correlation"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in stats["mean_spectrum_correlation_by_region"].values())


def test_label_consistency():
    labels = np.array([[0.5, -0.5], [-0.5, 0.5], [0.0, 0.2]])
    perfect = label_consistency(labels, labels)
    assert perfect["ccc_mean"] == pytest.approx(1.0) and perfect["mae_mean"] == 0.0
    off = label_consistency(labels + 0.1, labels)
    assert off["mae_valence"] == pytest.approx(0.1) and off["ccc_mean"] < 1.0
