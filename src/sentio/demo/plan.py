"""The demo corpus's plan: everything decided at corpus level from the seed (ids, true emotion
paths, formats, durations, rater noise and labels), before any audio or file is written."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synth import PATH_RATE

# 2 Hz labels as DEAM writes them: the value at `sample_<T>ms` describes the audio in [T - 0.5 s, T).
# DEAM's first label is at 15 s (raters settle in first); at the demo's scale the first is at 1 s.
DYNAMIC_START_S, DYNAMIC_RATE = 1.0, 2
# Generating parameters. Static truths look like DEAM's static means (mean ~5, sd ~1.2, r ~0.5).
TRUE_MEAN, TRUE_SD, VA_CORRELATION, TRUE_RANGE = 5.0, 1.2, 0.5, (1.5, 8.5)
# Paths around the static truth: clear changes (a logistic transition, 10-90% in CHANGE_WIDTH s)
# in a share of the clips, placed well inside them; gentle drift (peak deviation) elsewhere.
CHANGE_SHARE, CHANGE_SIZE, CHANGE_MIN = 0.4, (2.2, 3.2), 2.0
CHANGE_AT, CHANGE_WIDTH, CHANGE_WOBBLE = (0.35, 0.65), (1.0, 2.0), 0.15
DRIFT_AMPLITUDE, DRIFT_HZ = (0.3, 0.6), (0.03, 0.2)
# Raters: their sd on 1..9 grows with the song's divisiveness d ~ Beta(2, 3) (rms sd ~2.0 over
# songs, noise of the mean of 10 ~0.64: a ceiling CCC of ~0.88). Dynamic raters have the same sd,
# on [-1, 1] (sd / 4), as slowly varying AR(1) noise (correlation per 0.5 s step).
RATERS, DIVISIVENESS_BETA, RATER_SD_BASE, RATER_SD_SLOPE = 10, (2.0, 3.0), 0.9, 2.6
DYNAMIC_NOISE_RHO = 0.9
MAX_CLIPS = 2058  # DEAM's id range
# Clip lengths: excerpts (ids <= 2000) and the longer "2015" songs that exercise multi-window code.
# MP3 encoding costs ~25 ms of CPU per second of stereo audio, most of the generation time.
CLIP_SECONDS, LONG_CLIP_SECONDS = (10.0, 15.0), (20.0, 30.0)  # changing them: bump GENERATOR_VERSION


@dataclass
class CorpusPlan:
    """The demo corpus decided from its seed, one entry (row) per clip in id order."""

    ids: np.ndarray  # DEAM song ids, sorted
    truth: np.ndarray  # (clips, 2) static truth on 1..9: the time-average of `paths`
    rates: np.ndarray  # sample rates
    channels: np.ndarray
    durations: np.ndarray  # seconds, whole path cells
    paths: list[np.ndarray]  # each clip's true path (cells, 2) on 1..9
    change_at: np.ndarray  # the time of each clip's clear change, NaN for none
    divisiveness: np.ndarray
    rater_sd: np.ndarray  # (clips, 2) raters' sd on 1..9
    ratings: np.ndarray  # (clips, 2, RATERS) each rater's static rating
    extremes: np.ndarray  # (clips, 2, 2, RATERS) each rater's max and min over the song
    dynamic_truth: list[np.ndarray]  # each clip's true 2 Hz values (frames, 2) on [-1, 1]
    dynamic: list[np.ndarray]  # each clip's published 2 Hz labels: the raters' mean


def _cell_times(cells: int) -> np.ndarray:
    return (np.arange(cells) + 0.5) / PATH_RATE


def _drift(cells: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, smooth random variation: three slow sines, scaled to a peak of `amplitude`."""
    freq, phase = rng.uniform(*DRIFT_HZ, 3), rng.uniform(0.0, 2 * np.pi, 3)
    x = np.sin(2 * np.pi * freq[:, None] * _cell_times(cells)[None, :] + phase[:, None]).sum(0)
    x -= x.mean()
    return amplitude * x / np.abs(x).max()


def _change(truth: np.ndarray, cells: int, rng: np.random.Generator) -> tuple[float, np.ndarray] | None:
    """A clear change for a clip of static truth (2,): its time and the zero-mean step (cells, 2),
    or None where no step of CHANGE_MIN fits in 1..9 around the truth."""
    at = rng.uniform(*CHANGE_AT) * cells / PATH_RATE
    width = rng.uniform(*CHANGE_WIDTH)
    step = 1.0 / (1.0 + np.exp(-(_cell_times(cells) - at) * 2 * np.log(9) / width))
    step -= step.mean()
    size, rising = rng.uniform(*CHANGE_SIZE, 2), rng.random(2) < 0.5
    wanted = np.array([(1, 0), (0, 1), (1, 1)], bool)[rng.integers(3)]  # valence, arousal or both
    # The largest step each direction allows (the wobble on top included), per dimension.
    room_up, room_down = 9.0 - CHANGE_WOBBLE - truth, truth - 1.0 - CHANGE_WOBBLE
    fit_up = np.minimum(room_up / step.max(), room_down / -step.min())
    fit_down = np.minimum(room_up / -step.min(), room_down / step.max())
    rising = np.where((fit_up >= size) & (fit_down >= size), rising, fit_up > fit_down)
    size = np.minimum(size, np.maximum(fit_up, fit_down))
    fits = size >= CHANGE_MIN
    dims = fits & wanted
    if not dims.any():  # the other dimension, where it has room
        dims = fits & (np.cumsum(fits) == 1)
    if not dims.any():
        return None
    return at, step[:, None] * np.where(dims, np.where(rising, size, -size), 0.0)


def _paths(truth: np.ndarray, durations: np.ndarray, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """Each clip's true path (cells, 2) on 1..9 around its static truth, and its change time (NaN:
    none). A share CHANGE_SHARE of the clips, picked in random order among those with room, change."""
    paths: list[np.ndarray] = [np.empty(0)] * len(truth)
    change_at = np.full(len(truth), np.nan)
    changes_left = round(CHANGE_SHARE * len(truth))
    for i in rng.permutation(len(truth)):
        cells = int(round(durations[i] * PATH_RATE))
        change = _change(truth[i], cells, rng) if changes_left else None
        amplitude = rng.uniform(*DRIFT_AMPLITUDE, 2)
        step = np.zeros((cells, 2))
        if change is not None:
            change_at[i], step = change
            amplitude = np.where(step.any(0), CHANGE_WOBBLE, amplitude)
            changes_left -= 1
        drift = np.stack([_drift(cells, amp, rng) for amp in amplitude], 1)
        paths[i] = np.clip(truth[i] + step + drift, 1.0, 9.0)
    return paths, change_at


def _dynamic_truth(path: np.ndarray) -> np.ndarray:
    """True dynamic values on [-1, 1] at each label time T: the path's mean over [T - 0.5 s, T),
    from DYNAMIC_START_S to the last T within the clip."""
    per = PATH_RATE // DYNAMIC_RATE
    halves = path[: len(path) // per * per].reshape(-1, per, 2).mean(1)
    return (halves[int(DYNAMIC_START_S * DYNAMIC_RATE) - 1 :] - 5.0) / 4.0


def _dynamic_labels(truth: np.ndarray, rater_sd: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The mean of RATERS raters' tracks (frames, 2), each the truth plus stationary AR(1) noise of
    sd rater_sd / 4, clipped to [-1, 1]; rounded to 3 decimals."""
    from scipy.signal import lfilter

    z = rng.standard_normal((RATERS, len(truth), 2))
    gain = np.sqrt(1.0 - DYNAMIC_NOISE_RHO**2)
    z[:, 0] /= gain  # so that the first value already has the stationary sd
    noise = lfilter([gain], [1.0, -DYNAMIC_NOISE_RHO], z, axis=1) * rater_sd / 4.0
    return np.round(np.clip(truth + noise, -1.0, 1.0).mean(0), 3) + 0.0  # + 0.0: no "-0.0"


def plan_corpus(num_clips: int, seed: int) -> CorpusPlan:
    """Everything decided at corpus level (ids, truth paths, formats, durations, labels), from `seed`."""
    rng = np.random.default_rng(seed)
    n15 = min(58, max(1, round(0.05 * num_clips))) if num_clips >= 3 else 0
    n13 = min(1000, (num_clips - n15 + 1) // 2)
    n14 = num_clips - n15 - n13
    n13 += max(0, n14 - 1000)  # only matters near the 2058 maximum
    n14 = min(n14, 1000)
    ids = np.concatenate([rng.choice(np.arange(lo, hi + 1), k, replace=False) for lo, hi, k in
                          ((1, 1000, n13), (1001, 2000, n14), (2001, 2058, n15))])
    ids = np.sort(ids)
    cov = TRUE_SD**2 * np.array([[1.0, VA_CORRELATION], [VA_CORRELATION, 1.0]])
    drawn = np.clip(rng.multivariate_normal([TRUE_MEAN] * 2, cov, num_clips), *TRUE_RANGE)

    # Formats like DEAM's: mostly 44.1 kHz stereo. Shares are rounded up so that even a small
    # corpus has at least one 48 kHz, one 22.05 kHz and one mono clip.
    rates = np.full(num_clips, 44100)
    channels = np.full(num_clips, 2)
    if num_clips >= 4:
        order = rng.permutation(num_clips)
        k48, k22 = int(np.ceil(0.08 * num_clips)), int(np.ceil(0.04 * num_clips))
        rates[order[:k48]] = 48000
        rates[order[k48 : k48 + k22]] = 22050
        channels[rng.permutation(num_clips)[: int(np.ceil(0.08 * num_clips))]] = 1
    durations = np.where(ids > 2000, rng.uniform(*LONG_CLIP_SECONDS, num_clips), rng.uniform(*CLIP_SECONDS, num_clips))
    durations = np.round(durations * PATH_RATE) / PATH_RATE  # whole path cells: exact time-averages

    # The static truth is the time-average of the path (equal to the drawn value unless the path
    # had to be clipped to 1..9).
    paths, change_at = _paths(drawn, durations, rng)
    truth = np.array([p.mean(0) for p in paths])
    divisiveness = rng.beta(*DIVISIVENESS_BETA, num_clips)
    rater_sd = np.repeat((RATER_SD_BASE + RATER_SD_SLOPE * divisiveness)[:, None], 2, 1)  # same for both

    # Raters score on the bounded 1..9 scale; DEAM publishes their mean (1 decimal) and std.
    noise = rng.normal(0.0, 1.0, (num_clips, 2, RATERS)) * rater_sd[:, :, None]
    ratings = np.clip(truth[:, :, None] + noise, 1.0, 9.0)
    spread = np.abs(rng.normal(1.8, 0.6, (num_clips, 2, RATERS, 2)))  # max/min over a whole song
    extremes = np.stack([np.minimum(ratings + spread[..., 0], 9.0), np.maximum(ratings - spread[..., 1], 1.0)], 2)
    dynamic_truth = [_dynamic_truth(p) for p in paths]
    dynamic = [_dynamic_labels(f, sd, rng) for f, sd in zip(dynamic_truth, rater_sd)]
    return CorpusPlan(ids=ids, truth=truth, rates=rates, channels=channels, durations=durations, paths=paths,
                      change_at=change_at, divisiveness=divisiveness, rater_sd=rater_sd, ratings=ratings,
                      extremes=extremes, dynamic_truth=dynamic_truth, dynamic=dynamic)
