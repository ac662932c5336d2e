"""The demo corpus: a deterministic mini-DEAM whose emotions are known.

Each clip is synthesised music (see demo_synth) whose cues follow a true (valence, arousal) on
DEAM's 1..9 scale. Labels are the true values plus simulated rater noise, so no model can reach a
CCC of 1: `ceiling.json` says how close the best possible model gets. Files are written exactly
in DEAM's layout and formats (as unpacked on Kaggle), so the DEAM reader is exercised as is:

    <out>/DEAM_audio/MEMD_audio/<song_id>.mp3
    <out>/DEAM_Annotations/annotations/annotations averaged per song/song_level/
        static_annotations_averaged_songs_1_2000.csv      (ids <= 2000)
        static_annotations_averaged_songs_2000_2058.csv   (ids 2001..2058, longer clips)
    <out>/truth.csv  <out>/ceiling.json  <out>/demo.json (written last: the corpus is complete)
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

from sentio.data.demo_synth import ClipSpec, write_clip
from sentio.metrics import concordance_cc

GENERATOR_VERSION = 1


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
MARKER = "demo.json"
_OWN_NAMES = {"DEAM_audio", "DEAM_Annotations", "truth.csv", "ceiling.json", MARKER}

# Generating parameters. True values look like DEAM's static means (mean ~5, sd ~1.2, r ~0.5).
TRUE_MEAN, TRUE_SD, VA_CORRELATION, TRUE_RANGE = 5.0, 1.2, 0.5, (1.5, 8.5)
RATERS, RATER_SD = 10, 2.0  # noise of the mean ~0.63: a ceiling CCC of ~0.88
MAX_CLIPS = 2058  # DEAM's id range
# Clip lengths: excerpts (ids <= 2000) and the longer "2015" songs that exercise multi-window code.
# MP3 encoding costs ~25 ms of CPU per second of stereo audio, most of the generation time.
CLIP_SECONDS, LONG_CLIP_SECONDS = (10.0, 15.0), (20.0, 30.0)  # changing them: bump GENERATOR_VERSION


def _plan(num_clips: int, seed: int) -> dict:
    """Everything decided at corpus level (ids, truth, formats, durations, labels), from `seed`."""
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
    truth = np.clip(rng.multivariate_normal([TRUE_MEAN] * 2, cov, num_clips), *TRUE_RANGE)

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

    # Raters score on the bounded 1..9 scale; DEAM publishes their mean (1 decimal) and std.
    ratings = np.clip(truth[:, :, None] + rng.normal(0.0, RATER_SD, (num_clips, 2, RATERS)), 1.0, 9.0)
    spread = np.abs(rng.normal(1.8, 0.6, (num_clips, 2, RATERS, 2)))  # max/min over a whole song
    extremes = np.stack([np.minimum(ratings + spread[..., 0], 9.0), np.maximum(ratings - spread[..., 1], 1.0)], 2)
    return {"ids": ids, "truth": truth, "rates": rates, "channels": channels, "durations": durations,
            "ratings": ratings, "extremes": extremes}


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


def _write_tables(out: Path, plan: dict, cues: list[dict], num_clips: int, seed: int) -> dict:
    """The two annotation CSVs, truth.csv and ceiling.json; returns the ceiling."""
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

    cols = ["song_id", "valence", "arousal", "tempo_bpm", "mode", "mode_index", "register",
            "dissonance", "note_density", "tilt", "loudness_dbfs", "sample_rate", "channels", "duration"]
    lines = [",".join(cols)]
    for i, c in enumerate(cues):
        vals = {"valence": plan["truth"][i, 0], "arousal": plan["truth"][i, 1], **c}
        lines.append(",".join(f"{vals[k]:.4f}" if isinstance(vals[k], float) else str(vals[k]) for k in cols))
    (out / "truth.csv").write_text("\n".join(lines) + "\n", encoding="ascii")

    # The best model predicts the true value; its CCC against the noisy labels is the ceiling.
    labels = np.round(plan["ratings"].mean(-1), 1)
    noise_var = RATER_SD**2 / RATERS + 0.1**2 / 12  # rater noise of the mean + 1-decimal rounding
    theory = 2 * TRUE_SD**2 / (2 * TRUE_SD**2 + noise_var)
    emp = [concordance_cc(plan["truth"][:, d], labels[:, d]) for d in (0, 1)]
    ceiling = {
        "note": "Highest CCC any model can reach on these labels: a perfect model predicts the true "
                "values, which differ from the labels by rater noise. Compare a model's test CCC with "
                "it (CCC is unchanged by the (x - 5) / 4 map to [-1, 1]).",
        "theoretical": {"valence": theory, "arousal": theory, "mean": theory},
        "empirical": {"valence": emp[0], "arousal": emp[1], "mean": float(np.mean(emp))},
        "parameters": {"num_clips": num_clips, "seed": seed, "raters": RATERS, "rater_sd": RATER_SD,
                       "va_correlation": VA_CORRELATION, "true_mean": TRUE_MEAN, "true_sd": TRUE_SD,
                       "true_range": list(TRUE_RANGE)},
    }
    (out / "ceiling.json").write_text(json.dumps(ceiling, indent=2) + "\n")
    return ceiling


def _check_replaceable(out: Path) -> None:
    """Refuse to delete a folder that holds anything but a demo corpus (a user's own data)."""
    if out.exists() and (not out.is_dir() or set(os.listdir(out)) - _OWN_NAMES):
        raise FileExistsError(f"{out} exists and is not a demo corpus: choose another output_dir")


def generate_demo(output_dir: str | os.PathLike, num_clips: int = 300, seed: int = 0,
                  num_workers: int | None = None) -> Path:
    """Write a demo corpus of `num_clips` clips to `output_dir` (replacing an older one); return it.

    Deterministic in (num_clips, seed). Built in a sibling temporary folder that is renamed into
    place at the end, so an interrupted run never leaves a corpus that looks complete.
    """
    if not 1 <= num_clips <= MAX_CLIPS:
        raise ValueError(f"num_clips must be in 1..{MAX_CLIPS} (DEAM's id range), got {num_clips}")
    out = Path(output_dir)
    _check_replaceable(out)
    tmp = out.parent / f".{out.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / AUDIO_SUBDIR).mkdir(parents=True)
        plan = _plan(num_clips, seed)
        specs = [ClipSpec(int(sid), seed, float(plan["truth"][i, 0]), float(plan["truth"][i, 1]),
                          int(plan["rates"][i]), int(plan["channels"][i]), float(plan["durations"][i]),
                          str(tmp / AUDIO_SUBDIR / f"{sid}.mp3")) for i, sid in enumerate(plan["ids"])]
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
        _write_tables(tmp, plan, [by_id[int(s)] for s in plan["ids"]], num_clips, seed)
        marker = {"generator": "sentio.data.demo", "version": GENERATOR_VERSION, "num_clips": num_clips, "seed": seed}
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


def ensure_demo(output_dir: str | os.PathLike = DEFAULT_DEMO_DIR, num_clips: int = 300, seed: int = 0) -> Path:
    """Return the demo corpus at `output_dir`, generating it only if absent, stale or incomplete."""
    out = Path(output_dir)
    try:
        marker = json.loads((out / MARKER).read_text())
        wanted = {"version": GENERATOR_VERSION, "num_clips": num_clips, "seed": seed}
        if all(marker.get(k) == v for k, v in wanted.items()) and \
                len(os.listdir(out / AUDIO_SUBDIR)) == num_clips:
            return out
    except (OSError, ValueError):
        pass
    return generate_demo(out, num_clips, seed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Generate the demo corpus: synthetic music with known "
                                            "valence/arousal, in DEAM's layout.")
    p.add_argument("--output_dir", default=DEFAULT_DEMO_DIR)
    p.add_argument("--num_clips", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num_workers", type=int, default=None, help="processes (default: 2)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        out = generate_demo(args.output_dir, args.num_clips, args.seed, args.num_workers)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ceiling = json.loads((out / "ceiling.json").read_text())
    print(f"wrote {args.num_clips} clips to {out} in {time.perf_counter() - start:.1f} s; "
          f"ceiling CCC (empirical) valence {ceiling['empirical']['valence']:.3f}, "
          f"arousal {ceiling['empirical']['arousal']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


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
