import numpy as np
import pytest

from sentio.metrics import average_by_song, concordance_cc, mae, pearson_r, r2_score, regression_metrics, rmse


def test_ccc_by_hand():
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([2.0, 2.0, 5.0])
    # means 2 and 3; population var(x)=2/3, var(y)=2, cov=(-1*-1 + 0 + 1*2)/3=1 -> 2*1/(2/3+2+1)
    assert concordance_cc(x, y) == pytest.approx(2 / (2 / 3 + 2 + 1))
    assert concordance_cc(x, x) == pytest.approx(1.0)
    assert concordance_cc(x - 2, 2 - x) == pytest.approx(-1.0)  # mirrored around a shared mean
    assert concordance_cc(x, x + 1) < pearson_r(x, x + 1) == pytest.approx(1.0)  # CCC punishes bias, r does not
    assert concordance_cc(np.ones(3), np.ones(3)) == 0.0


def test_other_metrics_by_hand():
    pred, true = np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0])
    assert rmse(pred, true) == pytest.approx(np.sqrt(0.25 / 3))
    assert mae(pred, true) == pytest.approx(0.5 / 3)
    # ss_res = 0.25, ss_tot = sum((t - 2/3)^2) = 4/9 + 1/9 + 1/9 = 6/9
    assert r2_score(pred, true) == pytest.approx(1 - 0.25 / (6 / 9))
    assert pearson_r(pred, true) == pytest.approx(np.corrcoef(pred, true)[0, 1])


def test_regression_metrics_names_and_means():
    rng = np.random.default_rng(0)
    true = rng.uniform(-1, 1, (20, 2))
    pred = true + rng.normal(0, 0.1, (20, 2))
    m = regression_metrics(pred, true)
    for name in ("ccc", "pearson", "r2", "rmse", "mae"):
        assert m[f"{name}_mean"] == pytest.approx((m[f"{name}_valence"] + m[f"{name}_arousal"]) / 2)
    assert m["ccc_valence"] == pytest.approx(concordance_cc(pred[:, 0], true[:, 0]))
    with pytest.raises(ValueError, match=r"shape \[N, 2\]"):
        regression_metrics(pred[:, :1], true[:, :1])


def test_average_by_song():
    values = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    means, songs = average_by_song(values, ["b", "a", "b"])
    assert songs == ["b", "a"]
    assert means.tolist() == [[3.0, 2.5], [3.0, 2.0]]
