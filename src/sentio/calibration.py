"""Calibrated intervals and quadrant probabilities for any run: split-conformal prediction on the
validation songs.

Scores are the absolute residuals |y - prediction| of each validation song, divided by the
predicted spread when the model has one (normalised conformal). For a nominal level a, the
interval is prediction +- q_a (times the spread), where q_a is the ceil((n + 1) a)-th smallest score:
with exchangeable songs it covers a new song's label with probability at least a. Intervals are
clipped to the label range [-1, 1], which can only raise coverage.

Quadrant probabilities read the prediction as a Gaussian per dimension whose standard deviation
is the calibrated 68.27% score quantile (one sigma of a Gaussian), times the spread when there is
one; valence and arousal are taken as independent. They are calibrated in scale, approximate in
shape.

The validation songs also pick the best checkpoint; a separate calibration split would be
cleaner, at the cost of training songs (DEAM has few).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .data.labels import QUADRANTS
from .errors import CheckpointError
from .metrics import DIMENSIONS

CALIBRATION_FILE = "calibration.json"
LEVELS = (0.8, 0.9, 0.95)
ONE_SIGMA = math.erf(1 / math.sqrt(2))  # 0.6827: the level whose Gaussian quantile is 1 sd


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF, elementwise (math.erf: scipy.stats would cost prediction start-up
    almost half a second of imports for this one function)."""
    x = np.asarray(x, np.float64)
    return 0.5 * (1.0 + np.vectorize(math.erf, otypes=[np.float64])(x / math.sqrt(2))) if x.size else x


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ceil((n + 1) level)-th smallest score (the largest one when that exceeds n)."""
    scores = np.sort(np.asarray(scores, np.float64))
    rank = min(math.ceil((len(scores) + 1) * level), len(scores))
    return float(scores[rank - 1])


@dataclass
class Calibration:
    """Per level, the score quantile of each dimension; `normalized`: scores were residual / spread."""

    normalized: bool
    quantiles: dict[str, list[float]]  # "0.9" -> [valence, arousal]
    sigma: list[float]  # the ONE_SIGMA quantile per dimension: the Gaussian scale of quadrant probabilities
    songs: int
    method: str = ""
    constant_width: dict[str, list[float]] = field(default_factory=dict)  # unnormalised, for comparison

    @property
    def levels(self) -> list[float]:
        return sorted(float(k) for k in self.quantiles)

    def _scale(self, spread: np.ndarray | None, count: int) -> np.ndarray:
        if self.normalized:
            if spread is None:
                raise ValueError("this calibration was made with predicted spreads: pass them")
            return np.asarray(spread, np.float64)
        return np.ones((count, len(DIMENSIONS)))

    def intervals(self, mean: np.ndarray, spread: np.ndarray | None = None) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """{level: (low [N, 2], high [N, 2])} on [-1, 1] around predictions `mean` [N, 2]."""
        mean = np.asarray(mean, np.float64).reshape(-1, len(DIMENSIONS))
        scale = self._scale(spread, len(mean)).reshape(mean.shape)
        out = {}
        for level in self.levels:
            half = scale * np.asarray(self.quantiles[f"{level:g}"])[None, :]
            out[level] = (np.clip(mean - half, -1.0, 1.0), np.clip(mean + half, -1.0, 1.0))
        return out

    def quadrant_probabilities(self, mean: np.ndarray, spread: np.ndarray | None = None) -> np.ndarray:
        """[N, 4] probabilities of QUADRANTS (happy, tense, sad, calm) under the predictive Gaussian."""
        mean = np.asarray(mean, np.float64).reshape(-1, len(DIMENSIONS))
        sd = np.maximum(self._scale(spread, len(mean)).reshape(mean.shape) * np.asarray(self.sigma)[None, :], 1e-9)
        positive = normal_cdf(mean / sd)  # P(value >= 0) per dimension
        v, a = positive[:, 0], positive[:, 1]
        return np.stack([v * a, (1 - v) * a, (1 - v) * (1 - a), v * (1 - a)], axis=1)

    def save(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / CALIBRATION_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Calibration":
        """A saved calibration; CheckpointError (one line) for a damaged or foreign file."""
        try:
            calibration = cls(**json.loads(Path(path).read_text()))
            calibration.intervals(np.zeros((1, len(DIMENSIONS))), np.ones((1, len(DIMENSIONS))))
        except (ValueError, TypeError, KeyError, IndexError) as exc:  # JSONDecodeError is a ValueError
            raise CheckpointError(f"{path}: not a Sentio calibration ({type(exc).__name__}: {str(exc)[:120]}); "
                                  "delete it, or recalibrate the run by training it again") from None
        return calibration


def fit_calibration(pred: np.ndarray, true: np.ndarray, spread: np.ndarray | None = None,
                    levels: tuple[float, ...] = LEVELS) -> Calibration:
    """Split-conformal calibration from one prediction per validation song (see the module docstring)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if len(pred) < 2:
        raise ValueError("calibration needs at least 2 validation songs")
    residual = np.abs(true - pred)
    normalized = spread is not None
    scores = residual / np.asarray(spread, np.float64) if normalized else residual

    def quantiles(values: np.ndarray) -> dict[str, list[float]]:
        return {f"{level:g}": [conformal_quantile(values[:, d], level) for d in range(len(DIMENSIONS))]
                for level in levels}

    method = ("split-conformal on validation songs, score |residual| / predicted spread" if normalized
              else "split-conformal on validation songs, score |residual| (constant width)")
    return Calibration(normalized=normalized, quantiles=quantiles(scores),
                       sigma=[conformal_quantile(scores[:, d], ONE_SIGMA) for d in range(len(DIMENSIONS))],
                       songs=len(pred), method=method,
                       constant_width=quantiles(residual) if normalized else {})


def describe_quadrants(probabilities: np.ndarray) -> dict[str, float]:
    """One row of quadrant probabilities as {name: probability}."""
    return {name: float(p) for name, p in zip(QUADRANTS, probabilities)}
