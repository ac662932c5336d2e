"""The demo corpus: a deterministic mini-DEAM whose emotions are known.

Each clip is synthesised music (see demo_synth) whose cues follow a true path of (valence,
arousal) over time on DEAM's 1..9 scale: about 40% of clips change clearly at a known time, the
others drift gently. A clip's static truth is the time-average of its path. Labels are the true
values plus simulated rater noise, so no model can reach a CCC of 1: `ceiling.json` says how close
the best possible model gets. How much raters disagree varies per song with its divisiveness,
which the music lets one hear. Files are written exactly in DEAM's layout and formats (as
unpacked on Kaggle), so the DEAM reader is exercised as is:

    <out>/DEAM_audio/MEMD_audio/<song_id>.mp3
    <out>/DEAM_Annotations/annotations/annotations averaged per song/song_level/
        static_annotations_averaged_songs_1_2000.csv      (ids <= 2000)
        static_annotations_averaged_songs_2000_2058.csv   (ids 2001..2058, longer clips)
    <out>/DEAM_Annotations/annotations/annotations averaged per song/dynamic (per second annotations)/
        valence.csv  arousal.csv                          (2 Hz, on [-1, 1], NaN-padded rows)
    <out>/truth.csv  <out>/truth_dynamic.csv  <out>/ceiling.json
    <out>/demo.json (written last: the corpus is complete)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sentio.data.demo_synth import PATH_RATE, ClipSpec, write_clip
from sentio.metrics import DIMENSIONS, concordance_cc, pearson_r, rmse

GENERATOR_VERSION = 2


DEFAULT_DEMO_DIR = "data/demo"  # relative to the repo root / cwd
AUDIO_SUBDIR = Path("DEAM_audio", "MEMD_audio")
ANNOTATION_SUBDIR = Path("DEAM_Annotations", "annotations", "annotations averaged per song", "song_level")
CSV_1_2000 = "static_annotations_averaged_songs_1_2000.csv"
CSV_2000_2058 = "static_annotations_averaged_songs_2000_2058.csv"
HEADER_1_2000 = "song_id, valence_mean, valence_std, arousal_mean, arousal_std"
HEADER_2000_2058 = (  # sic: the real file has a stray space in "valence_ max_mean"
    "song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, valence_min_mean, "
    "valence_min_std, arousal_mean, arousal_std, arousal_max_mean, arousal_max_std, "
    "arousal_min_mean, arousal_min_std"
)
DYNAMIC_SUBDIR = Path("DEAM_Annotations", "annotations", "annotations averaged per song",
                      "dynamic (per second annotations)")
DYNAMIC_FILES = {"valence": "valence.csv", "arousal": "arousal.csv"}
# The value at `sample_<T>ms` describes the audio in [T - 0.5 s, T). DEAM's first label is at 15 s
# (raters settle in first); at the demo's scale the first is at 1 s.
DYNAMIC_START_S, DYNAMIC_RATE = 1.0, 2
TRUTH_DYNAMIC = "truth_dynamic.csv"
MARKER = "demo.json"
_OWN_NAMES = {"DEAM_audio", "DEAM_Annotations", "truth.csv", TRUTH_DYNAMIC, "ceiling.json", MARKER}

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
# Per demo_synth.VARIANTS: the raters of a variant corpus rate (valence, arousal) this much higher on
# 1..9 than the truth (a panel's bias, as datasets' raters differ), their 2 Hz values by the same / 4.
RATER_BIAS = {0: (0.0, 0.0), 1: (0.8, -0.6)}
# Clip lengths: excerpts (ids <= 2000) and the longer "2015" songs that exercise multi-window code.
# MP3 encoding costs ~25 ms of CPU per second of stereo audio, most of the generation time.
CLIP_SECONDS, LONG_CLIP_SECONDS = (10.0, 15.0), (20.0, 30.0)  # changing them: bump GENERATOR_VERSION


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


def _biased(plan: dict, variant: int) -> dict:
    """The plan with variant's rater bias added to its ratings and 2 Hz labels (the truth unchanged)."""
    bias = np.asarray(RATER_BIAS[variant], np.float64)
    if not bias.any():
        return plan
    plan["ratings"] = np.clip(plan["ratings"] + bias[None, :, None], 1.0, 9.0)
    plan["extremes"] = np.clip(plan["extremes"] + bias[None, :, None, None], 1.0, 9.0)
    plan["dynamic"] = [np.round(np.clip(f + bias / 4.0, -1.0, 1.0), 3) + 0.0 for f in plan["dynamic"]]
    return plan


def _plan(num_clips: int, seed: int) -> dict:
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
    return {"ids": ids, "truth": truth, "rates": rates, "channels": channels, "durations": durations,
            "paths": paths, "change_at": change_at, "divisiveness": divisiveness, "rater_sd": rater_sd,
            "ratings": ratings, "extremes": extremes, "dynamic_truth": dynamic_truth, "dynamic": dynamic}


def _fmt(x: float, decimals: int, whole_as_int: bool) -> str:
    """Shortest decimal form, as the real files: `3` (1_2000 file) or `3.0` (2000_2058 file)."""
    s = repr(round(float(x), decimals))
    return s[:-2] if whole_as_int and s.endswith(".0") else s


def _write_csv(path: Path, header: str, rows: list[list[str]]) -> None:
    lines = [header] + [",".join(r) for r in rows]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("ascii"))  # CRLF, as DEAM's files


def _label_columns(ratings: np.ndarray, whole_as_int: bool) -> list[str]:
    """Mean (1 decimal) and sample std (2 decimals) of one dimension's ratings."""
    return [_fmt(ratings.mean(), 1, whole_as_int), _fmt(ratings.std(ddof=1), 2, whole_as_int)]


def _label_times(frames: int) -> np.ndarray:
    return DYNAMIC_START_S + np.arange(frames) / DYNAMIC_RATE


def _write_static(out: Path, plan: dict) -> None:
    """The two static annotation CSVs, bytes and quirks as DEAM's."""
    ann = out / ANNOTATION_SUBDIR
    ann.mkdir(parents=True)
    rows_a, rows_b = [], []
    for i, sid in enumerate(plan["ids"]):
        r, e = plan["ratings"][i], plan["extremes"][i]
        if sid <= 2000:
            rows_a.append([str(sid)] + _label_columns(r[0], True) + _label_columns(r[1], True))
        else:
            rows_b.append([str(sid)] + [s for d in (0, 1) for x in (r[d], e[d, 0], e[d, 1])
                                        for s in _label_columns(x, False)])
    _write_csv(ann / CSV_1_2000, HEADER_1_2000, rows_a)
    _write_csv(ann / CSV_2000_2058, HEADER_2000_2058, rows_b)


def _write_dynamic(out: Path, plan: dict) -> None:
    """valence.csv and arousal.csv as DEAM's dynamic files (one row per song, cells after the
    song's end empty, LF endings as pandas writes them), and truth_dynamic.csv in long format."""
    folder = out / DYNAMIC_SUBDIR
    folder.mkdir(parents=True)
    width = max(len(f) for f in plan["dynamic"])
    header = ",".join(["song_id"] + [f"sample_{round(1000 * t)}ms" for t in _label_times(width)])
    for d, name in enumerate(DYNAMIC_FILES.values()):
        lines = [header] + [",".join([str(sid)] + [_fmt(x, 3, False) for x in f[:, d]] + [""] * (width - len(f)))
                            for sid, f in zip(plan["ids"], plan["dynamic"])]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="ascii")
    lines = ["song_id,time,valence,arousal"]
    for sid, f in zip(plan["ids"], plan["dynamic_truth"]):
        f = np.round(f, 4) + 0.0  # + 0.0: no "-0.0000"
        lines += [f"{sid},{t:.1f},{v:.4f},{a:.4f}" for t, (v, a) in zip(_label_times(len(f)), f)]
    (out / TRUTH_DYNAMIC).write_text("\n".join(lines) + "\n", encoding="ascii")


def _truth_cell(x) -> str:
    """Floats with 4 decimals, NaN (no change) empty."""
    if not isinstance(x, float):
        return str(x)
    return "" if np.isnan(x) else f"{x:.4f}"


def _write_truth(out: Path, plan: dict, cues: list[dict]) -> None:
    """truth.csv: the static truth, the cues (time-averages over the clip, see clip_cues), the
    format, the song's divisiveness and true rater sd, and the time of its clear change if any."""
    cols = ["song_id", "valence", "arousal", "tempo_bpm", "mode", "mode_index", "register",
            "dissonance", "note_density", "tilt", "loudness_dbfs", "sample_rate", "channels", "duration",
            "divisiveness", "rater_sd_valence", "rater_sd_arousal", "change_time"]
    lines = [",".join(cols)]
    for i, c in enumerate(cues):
        vals = {"valence": plan["truth"][i, 0], "arousal": plan["truth"][i, 1], **c,
                "divisiveness": plan["divisiveness"][i], "rater_sd_valence": plan["rater_sd"][i, 0],
                "rater_sd_arousal": plan["rater_sd"][i, 1], "change_time": plan["change_at"][i]}
        lines.append(",".join(_truth_cell(vals[k]) for k in cols))
    (out / "truth.csv").write_text("\n".join(lines) + "\n", encoding="ascii")


def _dynamic_scores(truth: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    """A prediction (the true values) against the dynamic labels, per song arrays (frames, 2):
    CCC over all frames, Pearson r and RMSE per song averaged over songs; flat, with means."""
    true_all, label_all = np.concatenate(truth), np.concatenate(labels)
    out = {}
    for d, dim in enumerate(DIMENSIONS):
        out[f"ccc_{dim}"] = concordance_cc(true_all[:, d], label_all[:, d])
        out[f"pearson_{dim}"] = float(np.mean([pearson_r(t[:, d], y[:, d]) for t, y in zip(truth, labels)]))
        out[f"rmse_{dim}"] = float(np.mean([rmse(t[:, d], y[:, d]) for t, y in zip(truth, labels)]))
    for metric in ("ccc", "pearson", "rmse"):
        out[f"{metric}_mean"] = (out[f"{metric}_valence"] + out[f"{metric}_arousal"]) / 2
    return out


def _mean_rater_variance() -> float:
    """E[(base + slope d)^2] over d ~ Beta(a, b): (base + slope E[d])^2 + slope^2 Var[d]."""
    a, b = DIVISIVENESS_BETA
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    return (RATER_SD_BASE + RATER_SD_SLOPE * mean) ** 2 + RATER_SD_SLOPE**2 * var


def _ceiling(plan: dict, num_clips: int, seed: int) -> dict:
    """The best scores any model can reach: those of the true values against the noisy labels."""
    labels = np.round(plan["ratings"].mean(-1), 1)
    rater_var = _mean_rater_variance()  # per-song noise: the mean variance sets the ceiling
    noise_var = rater_var / RATERS + 0.1**2 / 12  # rater noise of the mean + 1-decimal rounding
    theory = 2 * TRUE_SD**2 / (2 * TRUE_SD**2 + noise_var)
    emp = [concordance_cc(plan["truth"][:, d], labels[:, d]) for d in (0, 1)]
    scores = _dynamic_scores(plan["dynamic_truth"], plan["dynamic"])
    return {
        "note": "Highest CCC any model can reach on these labels: a perfect model predicts the true "
                "values, which differ from the labels by rater noise. Compare a model's test CCC with "
                "it (CCC is unchanged by the (x - 5) / 4 map to [-1, 1]).",
        "theoretical": {"valence": theory, "arousal": theory, "mean": theory},
        "empirical": {"valence": emp[0], "arousal": emp[1], "mean": float(np.mean(emp))},
        "parameters": {"num_clips": num_clips, "seed": seed, "raters": RATERS, "rater_sd": float(np.sqrt(rater_var)),
                       "rater_sd_base": RATER_SD_BASE, "rater_sd_per_divisiveness": RATER_SD_SLOPE,
                       "divisiveness_beta": list(DIVISIVENESS_BETA), "va_correlation": VA_CORRELATION,
                       "true_mean": TRUE_MEAN, "true_sd": TRUE_SD, "true_range": list(TRUE_RANGE)},
        "dynamic": {
            "note": "Best scores any model can reach on the dynamic (2 Hz) labels, on [-1, 1]: a perfect "
                    "model predicts the true values of truth_dynamic.csv; the labels are the mean of the "
                    "raters' tracks, each with slowly varying (AR(1)) noise of the song's rater sd / 4. "
                    "CCC over all frames; Pearson r and RMSE per song, averaged over songs (MediaEval).",
            **{metric: {k: scores[f"{metric}_{k}"] for k in ("valence", "arousal", "mean")}
               for metric in ("ccc", "pearson", "rmse")},
            "parameters": {"rate_hz": DYNAMIC_RATE, "start_s": DYNAMIC_START_S, "raters": RATERS,
                           "rater_sd": float(np.sqrt(rater_var)) / 4, "ar1_correlation": DYNAMIC_NOISE_RHO,
                           "label_noise_sd": float(np.sqrt(rater_var / RATERS)) / 4},
        },
    }


def _check_replaceable(out: Path) -> None:
    """Refuse to delete a folder that holds anything but a demo corpus (a user's own data)."""
    if out.exists() and (not out.is_dir() or set(os.listdir(out)) - _OWN_NAMES):
        raise FileExistsError(f"{out} exists and is not a demo corpus: choose another output_dir")


def generate_demo(output_dir: str | os.PathLike, num_clips: int = 300, seed: int = 0,
                  num_workers: int | None = None, variant: int = 0) -> Path:
    """Write a demo corpus of `num_clips` clips to `output_dir` (replacing an older one); return it.

    Deterministic in (num_clips, seed, variant). `variant` 1 is a domain-shifted corpus (other
    timbres and tempo range, raters with a bias: demo_synth.VARIANTS, RATER_BIAS). Built in a sibling temporary folder that is renamed into
    place at the end, so an interrupted run never leaves a corpus that looks complete.
    """
    if variant not in RATER_BIAS:
        raise ValueError(f"demo variant must be one of {sorted(RATER_BIAS)}, got {variant}")
    if not 1 <= num_clips <= MAX_CLIPS:
        raise ValueError(f"num_clips must be in 1..{MAX_CLIPS} (DEAM's id range), got {num_clips}")
    out = Path(output_dir)
    _check_replaceable(out)
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / AUDIO_SUBDIR).mkdir(parents=True)
        plan = _biased(_plan(num_clips, seed), variant)
        specs = [ClipSpec(int(sid), seed, plan["paths"][i], float(plan["divisiveness"][i]),
                          int(plan["rates"][i]), int(plan["channels"][i]), float(plan["durations"][i]),
                          str(tmp / AUDIO_SUBDIR / f"{sid}.mp3"), variant) for i, sid in enumerate(plan["ids"])]
        specs_by_length = sorted(specs, key=lambda s: -s.duration)  # long clips first: even load
        workers = min(2, os.cpu_count() or 1) if num_workers is None else num_workers
        bar = dict(total=num_clips, desc="demo corpus", unit="clip")
        if workers <= 1 or num_clips < 4:
            done = [write_clip(s) for s in tqdm(specs_by_length, **bar)]
        else:
            # spawn, not fork: callers may already run torch threads, which fork can deadlock.
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                done = list(tqdm(pool.imap(write_clip, specs_by_length), **bar))
        by_id = {c["song_id"]: c for c in done}
        _write_static(tmp, plan)
        _write_dynamic(tmp, plan)
        _write_truth(tmp, plan, [by_id[int(s)] for s in plan["ids"]])
        (tmp / "ceiling.json").write_text(json.dumps(_ceiling(plan, num_clips, seed), indent=2) + "\n")
        marker = {"generator": "sentio.data.demo", "version": GENERATOR_VERSION, "num_clips": num_clips, "seed": seed,
                  **({"variant": variant} if variant else {})}  # variant 0's marker as it always was
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")  # last: the corpus is complete
        if out.exists():
            old = out.parent / f".{out.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_demo(output_dir: str | os.PathLike = DEFAULT_DEMO_DIR, num_clips: int = 300, seed: int = 0,
                variant: int = 0) -> Path:
    """Return the demo corpus at `output_dir`, generating it only if absent, stale or incomplete."""
    out = Path(output_dir)
    try:
        marker = json.loads((out / MARKER).read_text())
        wanted = {"version": GENERATOR_VERSION, "num_clips": num_clips, "seed": seed}
        if all(marker.get(k) == v for k, v in wanted.items()) and marker.get("variant", 0) == variant and \
                len(os.listdir(out / AUDIO_SUBDIR)) == num_clips:
            return out
    except (OSError, ValueError):
        pass
    return generate_demo(out, num_clips, seed, variant=variant)


def split_ceiling(root: str | os.PathLike, manifest) -> dict[str, float]:
    """The demo's ceiling on the given manifest rows (e.g. the test split): CCC of the true values
    against the noisy labels, per dimension and mean. Small splits scatter around ceiling.json."""
    import pandas as pd

    from .labels import to_unit

    truth = pd.read_csv(Path(root) / "truth.csv", dtype={"song_id": str}).set_index("song_id")
    rows = truth.loc[manifest["song_id"].astype(str)]
    out = {dim: concordance_cc(to_unit(rows[dim].to_numpy(), "1-9"), manifest[dim].to_numpy()) for dim in ("valence", "arousal")}
    out["mean"] = (out["valence"] + out["arousal"]) / 2
    return out


def split_dynamic_ceiling(root: str | os.PathLike, manifest) -> dict[str, float]:
    """The demo's dynamic ceiling on the given manifest's songs: the true per-frame values against
    the noisy 2 Hz labels, `ccc_*` over all frames, `pearson_*` and `rmse_*` per song averaged over
    songs (for valence, arousal and their mean)."""
    import pandas as pd

    root = Path(root)
    truth = pd.read_csv(root / TRUTH_DYNAMIC, dtype={"song_id": str})
    table = truth[truth["song_id"].isin(set(manifest["song_id"].astype(str)))]
    table = table.assign(ms=(table["time"] * 1000).round().astype(int))
    for dim, name in DYNAMIC_FILES.items():
        wide = pd.read_csv(root / DYNAMIC_SUBDIR / name, dtype={"song_id": str})
        long = wide.melt(id_vars="song_id", var_name="ms", value_name=dim).dropna()
        long["ms"] = long["ms"].str.extract(r"sample_(\d+)ms", expand=False).astype(int)
        table = table.merge(long, on=["song_id", "ms"], suffixes=("", "_label"))
    songs = [rows for _, rows in table.groupby("song_id", sort=False)]
    return _dynamic_scores([rows[list(DIMENSIONS)].to_numpy() for rows in songs],
                           [rows[[f"{dim}_label" for dim in DIMENSIONS]].to_numpy() for rows in songs])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Generate the demo corpus: synthetic music with known "
                                            "valence/arousal, in DEAM's layout.")
    p.add_argument("--output_dir", default=DEFAULT_DEMO_DIR)
    p.add_argument("--num_clips", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", type=int, default=0, choices=sorted(RATER_BIAS),
                   help="1: a domain-shifted corpus (other timbres, tempo range, rater bias)")
    p.add_argument("--num_workers", type=int, default=None, help="processes (default: 2)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        out = generate_demo(args.output_dir, args.num_clips, args.seed, args.num_workers, args.variant)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ceiling = json.loads((out / "ceiling.json").read_text())
    print(f"wrote {args.num_clips} clips to {out} in {time.perf_counter() - start:.1f} s; "
          f"ceiling CCC (empirical) valence {ceiling['empirical']['valence']:.3f}, "
          f"arousal {ceiling['empirical']['arousal']:.3f}; dynamic ceiling CCC valence "
          f"{ceiling['dynamic']['ccc']['valence']:.3f}, arousal {ceiling['dynamic']['ccc']['arousal']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
