"""Regression metrics for valence/arousal: one implementation, used by training and evaluation.

All on the [-1, 1] label scale unless a caller rescales. CCC (Lin's concordance correlation) uses
population (1/N) moments, as in the emotion-recognition literature.
"""

from __future__ import annotations

from typing import Sequence

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
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    sx, sy = pred.std(), true.std()
    if sx == 0 or sy == 0:
        return 0.0
    return float(((pred - pred.mean()) * (true - true.mean())).mean() / (sx * sy))


def r2_score(pred: np.ndarray, true: np.ndarray) -> float:
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    ss_tot = ((true - true.mean()) ** 2).sum()
    return float(1 - ((true - pred) ** 2).sum() / ss_tot) if ss_tot > 0 else 0.0


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - np.asarray(true, np.float64)) ** 2)))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(true, np.float64))))


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
