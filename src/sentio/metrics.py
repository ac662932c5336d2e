"""Regression metrics for valence/arousal on numpy arrays: one implementation for training,
evaluation, the demo corpus and the benches.

All on the [-1, 1] label scale unless a caller rescales. Pearson r comes from scipy and R2, RMSE,
MAE from scikit-learn; CCC (Lin's concordance correlation coefficient) is written here because
neither library has it. CCC uses population (1/N) moments, as in the emotion-recognition
literature. The torch CCC used as a training loss is `sentio.models.loss.torch_concordance_cc`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

DIMENSIONS = ("valence", "arousal")
METRICS = ("ccc", "pearson", "r2", "rmse", "mae")


def concordance_cc(pred: np.ndarray, true: np.ndarray) -> float:
    """2 cov(x, y) / (var x + var y + (mean x - mean y)^2); 0 for a degenerate (constant) pair."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    mx, my = pred.mean(), true.mean()
    cov = ((pred - mx) * (true - my)).mean()
    denom = pred.var() + true.var() + (mx - my) ** 2
    return float(2 * cov / denom) if denom > 0 else 0.0


def pearson_r(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson's r; 0 when either side is constant (undefined, and scipy would warn and give NaN)."""
    from scipy.stats import pearsonr

    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if len(pred) < 2 or np.ptp(pred) == 0 or np.ptp(true) == 0:
        return 0.0
    return float(pearsonr(pred, true).statistic)


def r2_score(pred: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination of `pred` for `true`; 0 when `true` is constant."""
    from sklearn.metrics import r2_score as sk_r2

    true = np.asarray(true, np.float64)
    if len(true) < 2 or np.ptp(true) == 0:
        return 0.0
    return float(sk_r2(true, np.asarray(pred, np.float64)))


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(np.asarray(true, np.float64), np.asarray(pred, np.float64)))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(np.asarray(true, np.float64), np.asarray(pred, np.float64)))


_FUNCS = {"ccc": concordance_cc, "pearson": pearson_r, "r2": r2_score, "rmse": rmse, "mae": mae}


def regression_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """`{metric}_{dim}` for each dimension and `{metric}_mean` over dimensions; pred/true are [N, 2]."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape or pred.ndim != 2 or pred.shape[1] != len(DIMENSIONS):
        raise ValueError(f"expected predictions and labels of shape [N, 2], got {pred.shape} and {true.shape}")
    out: dict[str, float] = {}
    for name, func in _FUNCS.items():
        values = [func(pred[:, d], true[:, d]) for d in range(len(DIMENSIONS))]
        out.update({f"{name}_{dim}": v for dim, v in zip(DIMENSIONS, values)})
        out[f"{name}_mean"] = float(np.mean(values))
    return out


def average_by_song(values: np.ndarray, song_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Mean of the rows of `values` per song (window predictions -> one per song), songs in first-seen order."""
    values = np.asarray(values, np.float64)
    order: dict[str, int] = {}
    index = np.array([order.setdefault(str(s), len(order)) for s in song_ids])
    sums = np.zeros((len(order),) + values.shape[1:])
    np.add.at(sums, index, values)
    counts = np.bincount(index, minlength=len(order)).reshape(-1, *([1] * (values.ndim - 1)))
    return sums / counts, list(order)


def curve_metrics(pred: Mapping[str, np.ndarray], true: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Time-resolved scores, MediaEval's "Emotion in Music" protocol, from per-song curves [K, 2]
    of predictions and labels at the same label times.

    `song_pearson_*` and `song_rmse_*`: Pearson r and RMSE within each song, averaged over songs
    (r is left out for a song whose curve is constant on either side: it is undefined there);
    the rest (`ccc_*`, `pearson_*`, `r2_*`, `rmse_*`, `mae_*`): over all frames of all songs.
    """
    songs = [s for s in pred if len(pred[s])]
    return curve_list_metrics([pred[s] for s in songs], [true[s] for s in songs])


def curve_list_metrics(pred: Sequence[np.ndarray], true: Sequence[np.ndarray]) -> dict[str, float]:
    """curve_metrics over aligned lists of curves (a song may appear twice, as in a bootstrap draw)."""
    if not pred:
        raise ValueError("no labelled frame to score")
    out = regression_metrics(np.concatenate(pred), np.concatenate(true))
    for d, dim in enumerate(DIMENSIONS):
        rs = [pearson_r(p[:, d], t[:, d]) for p, t in zip(pred, true)
              if len(p) > 1 and np.ptp(p[:, d]) > 0 and np.ptp(t[:, d]) > 0]
        out[f"song_pearson_{dim}"] = float(np.mean(rs)) if rs else 0.0
        out[f"song_rmse_{dim}"] = float(np.mean([rmse(p[:, d], t[:, d]) for p, t in zip(pred, true)]))
    for name in ("song_pearson", "song_rmse"):
        out[f"{name}_mean"] = float(np.mean([out[f"{name}_{dim}"] for dim in DIMENSIONS]))
    out["num_curves"] = float(len(pred))
    out["num_frames"] = float(sum(len(p) for p in pred))
    return out
