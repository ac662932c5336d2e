"""The demo corpus: a deterministic mini-DEAM whose emotions are known.

Each clip is synthesised music (see synth.py) whose cues follow a true path of (valence,
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

import json
import multiprocessing
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import DEFAULT_DEMO_DIR
from .ceiling import ceiling
from .deam_files import AUDIO_SUBDIR, TRUTH_DYNAMIC, write_dynamic, write_static, write_truth
from .plan import MAX_CLIPS, CorpusPlan, plan_corpus
from .synth import ClipSpec, write_clip

GENERATOR_VERSION = 2


MARKER = "demo.json"
# Per synth.VARIANTS: the raters of a variant corpus rate (valence, arousal) this much higher on
# 1..9 than the truth (a panel's bias, as datasets' raters differ), their 2 Hz values by the same / 4.
RATER_BIAS = {0: (0.0, 0.0), 1: (0.8, -0.6)}
_OWN_NAMES = {"DEAM_audio", "DEAM_Annotations", "truth.csv", TRUTH_DYNAMIC, "ceiling.json", MARKER}


def _check_replaceable(out: Path) -> None:
    """Refuse to delete a folder that holds anything but a demo corpus (a user's own data)."""
    if out.exists() and (not out.is_dir() or set(os.listdir(out)) - _OWN_NAMES):
        raise FileExistsError(f"{out} exists and is not a demo corpus: choose another output_dir")


def _biased(plan: CorpusPlan, variant: int) -> CorpusPlan:
    """The plan with variant's rater bias added to its ratings and 2 Hz labels (the truth unchanged)."""
    bias = np.asarray(RATER_BIAS[variant], np.float64)
    if not bias.any():
        return plan
    return replace(plan, ratings=np.clip(plan.ratings + bias[None, :, None], 1.0, 9.0),
                   extremes=np.clip(plan.extremes + bias[None, :, None, None], 1.0, 9.0),
                   dynamic=[np.round(np.clip(f + bias / 4.0, -1.0, 1.0), 3) + 0.0 for f in plan.dynamic])


def generate_demo(output_dir: str | os.PathLike, num_clips: int = 300, seed: int = 0,
                  num_workers: int | None = None, variant: int = 0) -> Path:
    """Write a demo corpus of `num_clips` clips to `output_dir` (replacing an older one); return it.

    Deterministic in (num_clips, seed, variant). `variant` 1 is a domain-shifted corpus (other
    timbres and tempo range, raters with a bias: synth.VARIANTS, RATER_BIAS). Built in a sibling temporary folder that is renamed into
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
        plan = _biased(plan_corpus(num_clips, seed), variant)
        specs = [ClipSpec(int(sid), seed, plan.paths[i], float(plan.divisiveness[i]),
                          int(plan.rates[i]), int(plan.channels[i]), float(plan.durations[i]),
                          str(tmp / AUDIO_SUBDIR / f"{sid}.mp3"), variant) for i, sid in enumerate(plan.ids)]
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
        write_static(tmp, plan)
        write_dynamic(tmp, plan)
        write_truth(tmp, plan, [by_id[int(s)] for s in plan.ids])
        (tmp / "ceiling.json").write_text(json.dumps(ceiling(plan, num_clips, seed), indent=2) + "\n")
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
