"""Preprocessing benchmark: decode floor, cached feature pass, per-item extraction, memory growth.

    python bench/preprocess.py [--num_clips 300] [--kind fbank] [--epochs 30] [--corpus DIR]

Generates the demo corpus in a temporary folder (or uses --corpus, a folder with
DEAM_audio/MEMD_audio/*.mp3) and runs every measurement in a fresh subprocess, so each peak RSS
(VmHWM) is its own. Prints a table and the ratios the feature layer aims at:
  feature pass / decode floor >= 0.7;  per-item epochs / (cached pass + cached epochs) >= 20;
  peak RSS of the pass on 2N clips / on N clips <= 1.2.
Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest single descendant


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (map workers): unlike wall time, it
    barely moves when other jobs share the cores."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class _Clock:
    """Wall and CPU seconds of the same block."""

    def __enter__(self) -> "_Clock":
        self.wall, self.cpu = time.perf_counter(), _cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu_seconds() - self.cpu

    def result(self, **extra) -> dict:
        return {"seconds": self.wall, "cpu_seconds": self.cpu, **extra}


def _extractor(kind: str, max_length: int | None):
    from sentio.features.extractor import SentioFeatureExtractor

    return SentioFeatureExtractor(kind, **({"max_length": max_length} if kind == "fbank" and max_length else {}))


# ----------------------------------------------------------------------------- child tasks
def task_decode(manifest, args) -> dict:
    from sentio.features.audio import load_audio

    rate = _extractor(args.kind, args.max_length).sampling_rate
    with _Clock() as clock:
        for path in manifest["path"]:
            load_audio(path, rate)
    return clock.result(clips=len(manifest))


def task_pass(manifest, args) -> dict:
    from sentio.features.cache import build_feature_dataset

    ex = _extractor(args.kind, args.max_length)
    with _Clock() as clock:
        ds, report = build_feature_dataset(manifest, ex, args.cache, num_proc=args.num_proc)
    disk = sum(f.stat().st_size for f in Path(report.cache_dir).glob("*.arrow"))
    return clock.result(clips=len(manifest), windows=report.windows, reused=report.reused, disk_mb=disk / 2**20)


def task_per_item_epoch(manifest, args) -> dict:
    """The seeds' approach: decode and extract every item again, every epoch (one epoch timed)."""
    import numpy as np

    from sentio.features.audio import load_audio

    ex = _extractor(args.kind, args.max_length)
    if args.kind == "fbank":
        from transformers import ASTFeatureExtractor

        ref = ASTFeatureExtractor(max_length=ex.max_length)
        extract = lambda w: ref(w, sampling_rate=16000, return_tensors="np")["input_values"]  # noqa: E731
    elif args.kind == "waveform":
        from transformers import Wav2Vec2FeatureExtractor

        ref = Wav2Vec2FeatureExtractor(do_normalize=True)
        extract = lambda w: ref(w[: ex.params.window_samples], sampling_rate=16000, return_tensors="np")  # noqa: E731
    else:
        import librosa

        extract = lambda w: librosa.feature.melspectrogram(y=w[: ex.params.window_samples], sr=22050)  # noqa: E731
    extract(np.zeros(ex.sampling_rate, np.float32))  # warm-up outside the timing (librosa JIT)
    with _Clock() as clock:
        for path in manifest["path"]:
            extract(load_audio(path, ex.sampling_rate))
    return clock.result(clips=len(manifest))


def task_cached_epochs(manifest, args) -> dict:
    """Reload the cache, then `epochs` epochs of one random window per song, item by item."""
    import numpy as np

    from sentio.features.cache import build_feature_dataset

    t0 = time.perf_counter()
    ds, report = build_feature_dataset(manifest, _extractor(args.kind, args.max_length), args.cache)
    load = time.perf_counter() - t0
    assert report.reused, "the cache should have been reused"
    name = _extractor(args.kind, args.max_length).feature_name
    view = ds.with_format("numpy", columns=[name, "length", "labels"])
    songs: dict[str, list[int]] = {}
    for i, song in enumerate(ds["song_id"]):
        songs.setdefault(song, []).append(i)
    rng = np.random.default_rng(0)
    with _Clock() as clock:
        for _ in range(args.epochs):
            for rows in songs.values():
                item = view[int(rows[rng.integers(len(rows))])]
                assert item[name].dtype == np.float32
    return clock.result(load_seconds=load, epochs=args.epochs, songs=len(songs))


TASKS = {"decode": task_decode, "pass": task_pass, "per_item": task_per_item_epoch, "cached": task_cached_epochs}


def child(args) -> None:
    import pandas as pd

    manifest = pd.read_csv(args.manifest, dtype={"song_id": str}, keep_default_na=False)
    result = TASKS[args.child](manifest, args)
    result.update(peak_rss_mb=_peak_rss_mb(), workers_peak_rss_mb=_children_peak_mb())
    print("RESULT " + json.dumps(result))


# ----------------------------------------------------------------------------- parent
def run(task: str, manifest: Path, args, cache: Path | None = None, num_proc: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--child", task, "--manifest", str(manifest), "--kind", args.kind,
           "--epochs", str(args.epochs), "--num_proc", str(num_proc), "--cache", str(cache or "")]
    if args.max_length:
        cmd += ["--max_length", str(args.max_length)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{task} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def write_manifest(clips: list[Path], path: Path, copies: int = 1) -> Path:
    import pandas as pd

    rows = [{"song_id": f"{c.stem}" + (f"-{k}" if k else ""), "path": str(c), "valence": 0.0, "arousal": 0.0,
             "split": "train", "subset": ""} for k in range(copies) for c in clips]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--num_clips", type=int, default=300)
    p.add_argument("--kind", choices=["fbank", "waveform", "mel_image"], default="fbank")
    p.add_argument("--max_length", type=int, default=None, help="AST frames per window (default 1024)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--corpus", default=None, help="existing folder with DEAM_audio/MEMD_audio/*.mp3")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--manifest", default=None, help=argparse.SUPPRESS)
    p.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    p.add_argument("--num_proc", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)

    with tempfile.TemporaryDirectory(prefix="sentio-bench-") as tmp:
        tmp = Path(tmp)
        corpus = Path(args.corpus) if args.corpus else None
        if corpus is None:
            from sentio.demo.corpus import generate_demo  # lazily: only the parent needs it

            t0 = time.perf_counter()
            corpus = generate_demo(tmp / "demo", num_clips=args.num_clips)
            print(f"generated {args.num_clips} demo clips in {time.perf_counter() - t0:.0f} s")
        clips = sorted((corpus / "DEAM_audio" / "MEMD_audio").glob("*.mp3"))[: args.num_clips]
        n = len(clips)
        m1 = write_manifest(clips, tmp / "m1.csv")
        m2 = write_manifest(clips, tmp / "m2.csv", copies=2)  # 2N clips: every file listed twice

        load = os.getloadavg()
        floor = run("decode", m1, args)
        pass1 = run("pass", m1, args, tmp / "cache1", 1)
        pass2 = run("pass", m1, args, tmp / "cache2", 2)
        cached = run("cached", m1, args, tmp / "cache1")
        item = run("per_item", m1, args)
        double = run("pass", m2, args, tmp / "cache3", 1)

    rate = lambda r: r["clips"] / r["seconds"]  # noqa: E731
    per_item_total = item["seconds"] * args.epochs
    cached_total = pass1["seconds"] + cached["load_seconds"] + cached["seconds"]
    sr = _extractor(args.kind, args.max_length).sampling_rate
    print(f"\nkind={args.kind}  clips N={n}  windows={pass1['windows']}  cache on disk {pass1['disk_mb']:.0f} MB"
          f"  load average before/after {load[0]:.2f}/{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'step':46s} {'wall s':>8s} {'clips/s':>8s} {'CPU s':>8s} {'peak RSS MB':>12s}")
    rows = [
        (f"decode only @{sr} Hz (floor)", floor),
        ("feature pass, num_proc=1", pass1),
        ("feature pass, num_proc=2 (RSS parent/worker)", pass2),
        ("per-item decode + HF extractor, 1 epoch", item),
        (f"feature pass, num_proc=1, 2N={2 * n} clips", double),
    ]
    for label, r in rows:
        rss = f"{r['peak_rss_mb']:.0f}" + (f"/{r['workers_peak_rss_mb']:.0f}" if "num_proc=2" in label else "")
        print(f"{label:46s} {r['seconds']:8.2f} {rate(r):8.1f} {r['cpu_seconds']:8.2f} {rss:>12s}")
    reads = cached["load_seconds"] + cached["seconds"]
    print(f"{'cached: reload + %d epochs of reads' % args.epochs:46s} {reads:8.2f} {'':8s}"
          f" {cached['cpu_seconds']:8.2f} {cached['peak_rss_mb']:12.0f}")
    print()
    print(f"pass speed / floor (wall):  num_proc=1 {rate(pass1) / rate(floor):.2f},"
          f" num_proc=2 {rate(pass2) / rate(floor):.2f}  (goal >= 0.7)")
    print(f"pass speed / floor (CPU time, insensitive to other jobs): num_proc=1"
          f" {floor['cpu_seconds'] / pass1['cpu_seconds']:.2f}")
    print(f"per-item x{args.epochs} epochs (1 epoch measured x {args.epochs}) = {per_item_total:.0f} s vs cached pass +"
          f" {args.epochs} epochs = {cached_total:.1f} s: {per_item_total / cached_total:.1f}x  (goal >= 20x)")
    print(f"peak RSS 2N / N (num_proc=1): {double['peak_rss_mb']:.0f} / {pass1['peak_rss_mb']:.0f} MB ="
          f" {double['peak_rss_mb'] / pass1['peak_rss_mb']:.2f}  (goal <= 1.2)")

if __name__ == "__main__":
    main()
