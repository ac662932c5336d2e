"""Label scales: everything inside Sentio lives on [-1, 1]; DEAM's 1..9 maps by (x - 5) / 4."""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentError

# name -> (low, high) of the scale as written in the source file
SCALES: dict[str, tuple[float, float]] = {"1-9": (1.0, 9.0), "-1-1": (-1.0, 1.0), "0-1": (0.0, 1.0)}


def check_scale(scale: str) -> tuple[float, float]:
    """(low, high) of a scale name; an unknown name is an ArgumentError."""
    if scale not in SCALES:
        raise ArgumentError(f"unknown label scale {scale!r}; choose one of {', '.join(SCALES)}")
    return SCALES[scale]


def to_unit(values, scale: str) -> np.ndarray:
    """Map labels written on `scale` linearly onto [-1, 1] (1..9: (x - 5) / 4)."""
    low, high = check_scale(scale)
    values = np.asarray(values, dtype=np.float64)
    return (2.0 * values - (low + high)) / (high - low)  # exact for 1..9: (x - 5) / 4


def std_to_unit(values, scale: str) -> np.ndarray:
    """Map a spread (standard deviation) written on `scale` onto [-1, 1]'s width: std * 2 / width (1..9: std / 4)."""
    low, high = check_scale(scale)
    return np.asarray(values, dtype=np.float64) * 2.0 / (high - low)


def from_unit(values, scale: str = "1-9") -> np.ndarray:
    """Inverse of to_unit: [-1, 1] back onto `scale` (for reports on DEAM's 1..9 scale)."""
    low, high = check_scale(scale)
    values = np.asarray(values, dtype=np.float64)
    return (values * (high - low) + (low + high)) / 2.0


# Russell's circumplex quadrants on [-1, 1]; 0 on an axis counts as positive.
QUADRANTS = ("happy", "tense", "sad", "calm")  # (V+,A+), (V-,A+), (V-,A-), (V+,A-)


def quadrant(valence, arousal) -> np.ndarray:
    """Quadrant names for values on [-1, 1]: happy (V+A+), tense (V-A+), sad (V-A-), calm (V+A-)."""
    v, a = np.asarray(valence) >= 0, np.asarray(arousal) >= 0
    index = np.where(a, np.where(v, 0, 1), np.where(v, 3, 2))
    return np.asarray(QUADRANTS, dtype=object)[index]
