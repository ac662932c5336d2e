"""Split-conformal intervals and quadrant probabilities (sentio.calibration)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from sentio.calibration import ONE_SIGMA, Calibration, conformal_quantile, fit_calibration


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.arange(1, 10, dtype=float)  # n = 9
    assert conformal_quantile(scores, 0.8) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal_quantile(scores, 0.95) == 9.0  # rank 10 > n: the largest
    assert conformal_quantile(scores[::-1], 0.5) == 5.0  # order does not matter


def gaussian_songs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions with a known, varying error scale: label = prediction + N(0, spread^2)."""
    rng = np.random.default_rng(seed)
    pred = rng.uniform(-0.6, 0.6, (n, 2))
    spread = rng.uniform(0.03, 0.25, (n, 2))
    return pred, spread, pred + rng.normal(0.0, spread)


@pytest.mark.parametrize("normalized", [False, True])
def test_intervals_cover_new_songs_at_their_nominal_level(normalized):
    pred, spread, true = gaussian_songs(2000, 0)
    calibration = fit_calibration(pred, true, spread if normalized else None)
    test_pred, test_spread, test_true = gaussian_songs(4000, 1)
    for level, (low, high) in calibration.intervals(test_pred, test_spread if normalized else None).items():
        covered = ((low <= test_true) & (test_true <= high)).mean(axis=0)
        assert np.all(np.abs(covered - level) < 0.02), (level, covered)
    if normalized:  # spread-aware intervals are narrower on average than constant ones at equal coverage
        constant = Calibration(False, calibration.constant_width, calibration.sigma, calibration.songs)
        low, high = calibration.intervals(test_pred, test_spread)[0.9]
        c_low, c_high = constant.intervals(test_pred)[0.9]
        assert (high - low).mean() < 0.95 * (c_high - c_low).mean()


def test_intervals_stay_on_the_label_scale_and_need_spreads_when_normalised():
    calibration = fit_calibration(np.zeros((10, 2)), np.full((10, 2), 0.5), np.ones((10, 2)))
    low, high = calibration.intervals(np.array([[0.9, -0.9]]), np.ones((1, 2)))[0.95]
    assert low.min() >= -1.0 and high.max() <= 1.0
    with pytest.raises(ValueError, match="predicted spreads"):
        calibration.intervals(np.zeros((1, 2)))


def test_quadrant_probabilities_follow_the_calibrated_gaussian(tmp_path):
    calibration = Calibration(False, {"0.9": [0.2, 0.2]}, [0.1, 0.2], 50)
    probs = calibration.quadrant_probabilities(np.array([[0.1, -0.1], [0.0, 0.0]]))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    pv, pa = norm.cdf(0.1 / 0.1), norm.cdf(-0.1 / 0.2)  # P(valence >= 0), P(arousal >= 0)
    np.testing.assert_allclose(probs[0], [pv * pa, (1 - pv) * pa, (1 - pv) * (1 - pa), pv * (1 - pa)])
    np.testing.assert_allclose(probs[1], 0.25)
    calibration.save(tmp_path)
    assert Calibration.load(tmp_path / "calibration.json") == calibration
    assert 0.68 < ONE_SIGMA < 0.69
