"""Prediction speed on a music library: predict.py with three models beside VibeNet, same files, same run.

    python bench/predict_speed.py [--files 4] [--minutes 10] [--clips 0] [--clip_seconds 15]
                                  [--format mp3|ogg|flac] [--repeats 3] [--only NAMES] [--workdir DIR]

The library: demo corpus clips (`sentio.demo`, 40 clips of 10 to 30 s) concatenated in
shuffled orders into `--files` MP3s of `--minutes` each, 44.1 kHz stereo, like ripped albums
(`--format ogg`: OGG Vorbis files instead, whose decoding costs more; flac: FLAC).
The models have random weights (speed does not depend on training):
  - student int8: distill.py's `cnn` student (MobileNetV3, width 0.4) on the compact teacher's
    2.56 s windows, exported to ONNX and quantized to static int8 as distill.py does, calibrated
    on windows of the library; predict.py runs it with onnxruntime (with numpy features: no torch,
    no transformers); "student fp32" is the same student before quantization;
  - compact AST: the `train.py --model ast --demo` config (4 layers, 192 wide, 2.56 s windows);
  - AST-base: the full AST config (12 layers, 768 wide, 10.24 s windows), batch 8.
Two more rows put the student against the limit: "decode only" (bench/decode_only.py: the same
files listed, decoded and resampled by the same threads as predict.py, nothing else: the decode
floor) and "student int8 x2" (predict.py under `torchrun --nproc_per_node 2`, the library split
between two processes). "of decode floor" is the decode-only wall time over the system's, paired
within each repeat (median). With `--clips N` a second library of N short clips (`--clip_seconds`
each) is timed the same way, where start-up and per-file costs count.
VibeNet (GPL; an EfficientNet student in ONNX that predicts valence and energy) is pip-installed
into a throw-away venv in the work folder: it never becomes a Sentio dependency.

Each repeat runs every system once, in turn, on the same folder (one whose first run takes more
than --long_run_minutes is timed once). Real-time factor = seconds of audio / wall seconds of the
whole command (start-up included), median over repeats; "after
start-up" takes off the median wall time of the same command on one 5 s clip. Peak RSS and CPU
seconds from the kernel's accounting of each command (wait4). Timing waits for a quiet
machine: the 1-minute load average below --max_load, polled every 30 s for up to --wait_minutes.
Not a test: it prints a table and writes predict_speed.json in the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
RATE, CHANNELS = 44100, 2
VIBENET = "vibenet==0.1.0"


@dataclass
class System:
    """One command to time over the library."""

    name: str
    command: list[str]
    output: Path | None = None  # removed before each run, so predict.py never resumes
    note: str = ""


@dataclass
class Measure:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    load: float


FORMATS = {"mp3": ("MP3", None), "ogg": ("OGG", "VORBIS"), "flac": ("FLAC", None)}  # --format: libsndfile's names


def make_library(folder: Path, files: int, minutes: float, seed: int = 0, fmt: str = "mp3") -> list[Path]:
    """`files` audio files (`fmt`) of `minutes` each, demo clips concatenated in a shuffled order per file."""
    from sentio.demo.corpus import generate_demo
    from sentio.demo.deam_files import AUDIO_SUBDIR

    paths = [folder / f"album{i:02d}.{fmt}" for i in range(files)]
    marker = folder / "library.json"
    wanted = {"files": files, "minutes": minutes, "seed": seed, "format": fmt}
    if marker.is_file() and json.loads(marker.read_text()) == wanted and all(p.is_file() for p in paths):
        return paths
    shutil.rmtree(folder, ignore_errors=True)
    clips_dir = generate_demo(folder.parent / "demo-clips", num_clips=40, seed=seed) / AUDIO_SUBDIR
    clips = [_stereo_44k(p) for p in sorted(clips_dir.glob("*.mp3"))]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for path in paths:
        frames, target = 0, int(minutes * 60 * RATE)
        major, subtype = FORMATS[fmt]
        with sf.SoundFile(path, "w", RATE, CHANNELS, format=major, subtype=subtype) as sink:  # written clip by clip
            while frames < target:
                clip = clips[rng.integers(len(clips))][: target - frames]
                sink.write(clip)
                frames += len(clip)
    marker.write_text(json.dumps(wanted))
    return paths


def _stereo_44k(path: Path) -> np.ndarray:
    wave, rate = sf.read(path, dtype="float32", always_2d=True)
    wave = np.repeat(wave, CHANNELS, axis=1)[:, :CHANNELS] if wave.shape[1] == 1 else wave[:, :CHANNELS]
    return soxr.resample(wave, rate, RATE) if rate != RATE else wave


def _fbank_run(folder: Path, model, max_length: int) -> Path:
    from sentio.features.extractor import SentioFeatureExtractor

    model.save_pretrained(folder)
    SentioFeatureExtractor("fbank", max_length=max_length).save_pretrained(folder)
    return folder


def build_models(folder: Path, library: list[Path], wanted: set[str] | None = None) -> dict[str, Path]:
    """The three Sentio models with random weights (built once, then reused); with `wanted`, only
    those of them (the student always: the decode-only row takes its rate)."""
    import torch

    from sentio.models import build_model
    from sentio.models.registry import get_backbone

    torch.manual_seed(0)
    ast = get_backbone("ast")
    runs = {"compact AST": folder / "ast-compact", "AST-base": folder / "ast-base"}
    runs = {name: run for name, run in runs.items() if wanted is None or name in wanted}
    if "compact AST" in runs and not (runs["compact AST"] / "model.safetensors").is_file():
        _fbank_run(runs["compact AST"], build_model("ast", from_scratch=True, config_overrides=ast.demo_config), 256)
    if "AST-base" in runs and not (runs["AST-base"] / "model.safetensors").is_file():
        _fbank_run(runs["AST-base"], build_model("ast", from_scratch=True), 1024)
    student = folder / "student" / "student.int8.onnx"
    if not student.is_file():
        _export_student(student.parent, library[0])
    fp32 = {"student fp32": student.parent / "student.onnx"} if wanted is None or "student fp32" in wanted else {}
    return {"student int8": student, **fp32, **runs}


def _export_student(folder: Path, calibration_file: Path) -> None:
    """distill.py's cnn student, exported and quantized as distill.py does (random weights)."""
    from sentio.features.extractor import SentioFeatureExtractor
    from sentio.distill.export import as_batches, export_onnx, quantize_int8
    from sentio.models.student import StudentEmotionConfig, StudentForEmotionRegression

    extractor = SentioFeatureExtractor("fbank", max_length=256)
    config = StudentEmotionConfig(architecture="cnn", width_mult=0.4, num_mel_bins=128, max_length=256, loss="mse")
    model = StudentForEmotionRegression(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    extractor.save_pretrained(folder)
    windows = extractor(str(calibration_file))
    export_onnx(model, folder / "student.onnx", 256, 128)
    quantize_int8(folder / "student.onnx", folder / "student.int8.onnx",
                  as_batches(windows["input_values"][:64], windows["length"][:64]))


def vibenet_venv(folder: Path) -> Path | None:
    """VibeNet's command in a venv of its own; torch, should it ever want one, held to the CPU build.
    None (the row is left out, with a line saying why) where it cannot be installed."""
    command = folder / "bin" / "vibenet"
    if command.is_file():
        return command
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    constraints = folder / "constraints.txt"
    constraints.write_text("torch==2.13.0\n")
    installed = subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "-c", str(constraints),
                                VIBENET], capture_output=True, text=True)
    if installed.returncode != 0:
        reason = (installed.stderr.strip().splitlines() or ["pip failed"])[-1]
        print(f"predict_speed.py: VibeNet left out: pip install {VIBENET} failed ({reason})", file=sys.stderr)
        return None
    return command


def wait_for_quiet(max_load: float, wait_minutes: float) -> float:
    """Poll the 1-minute load average every 30 s until it is below `max_load`; return it."""
    deadline = time.monotonic() + 60 * wait_minutes
    while (load := os.getloadavg()[0]) >= max_load and time.monotonic() < deadline:
        print(f"waiting for a quiet machine: load {load:.2f} >= {max_load}", file=sys.stderr, flush=True)
        time.sleep(30)
    if load >= max_load:
        print(f"still busy after {wait_minutes} min (load {load:.2f}): timing anyway", file=sys.stderr)
    return load


# Runs a command and reports the kernel's accounting of it. A separate small process, because a
# child's peak RSS (ru_maxrss) starts from the image it was forked from: forked from this
# process, with torch loaded, every command would seem to need at least a gigabyte.
LAUNCHER = """
import json, os, sys, time
devnull = os.open(os.devnull, os.O_WRONLY)
start = time.perf_counter()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"wall_s": time.perf_counter() - start, "exit": os.waitstatus_to_exitcode(status),
                  "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}))
"""


def timed(system: System) -> Measure:
    """Run one command: its wall time, CPU time and peak RSS."""
    if system.output is not None:  # the output and whatever predict.py keeps beside it to resume
        for stale in system.output.parent.glob(system.output.stem + ".*"):  # with its part files and journals
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *system.command], capture_output=True, text=True, cwd=ROOT)
    report = json.loads(done.stdout)
    if report.pop("exit") != 0:
        raise SystemExit(f"{system.name} failed: {done.stderr[-2000:]}")
    return Measure(**report, load=load)


def systems(models: dict[str, Path], library: Path, vibenet: Path | None, work: Path) -> list[System]:
    batch = {"AST-base": 8}  # 1214 tokens a window: 32 at once would hold GBs of attention
    from sentio.inference.batch import default_workers

    student = models["student int8"]
    out = [System("decode only", [sys.executable, str(ROOT / "bench" / "decode_only.py"), "--model_dir",
                                  str(student.parent), "--workers", str(default_workers()), str(library)],
                  note="decode + resample, predict.py's threads")]
    if vibenet is not None:
        out.append(System("VibeNet", [str(vibenet), "predict", str(library), "-r", "-f", "csv", "-q"],
                          note="EfficientNet, ONNX"))
    for name, model in models.items():
        output = work / f"{library.name}-{name.replace(' ', '-')}.csv"
        command = [sys.executable, str(ROOT / "predict.py"), "--model_dir", str(model), str(library), "--output",
                   str(output), "--batch_size", str(batch.get(name, 32))]
        out.append(System(name, command, output, note=f"batch {batch.get(name, 32)}"))
        if name == "student int8":
            output = work / f"{library.name}-student-int8-x2.jsonl"  # part files and journal beside it: cleared too
            torchrun = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--master_port",
                        str(29500 + os.getpid() % 1000)]
            out.append(System("student int8 x2", [*torchrun, *command[1:5], str(library), "--output", str(output),
                                                  "--batch_size", "32"], output, note="torchrun, 2 processes"))
    return out


def table(results: dict[str, list[Measure]], startups: dict[str, list[Measure]], audio_s: float) -> str:
    lines = ["| system | real-time factor (median, min-max) | wall s | start-up s | after start-up | of decode floor "
             "| peak RSS MB | CPU s per audio hour |", "|---|---|---|---|---|---|---|---|"]
    floor = results.get("decode only", [])
    for name, runs in results.items():
        factors = [audio_s / m.wall_s for m in runs]
        wall = statistics.median(m.wall_s for m in runs)
        startup = statistics.median(m.wall_s for m in startups[name])
        paired = [f.wall_s / m.wall_s for f, m in zip(floor, runs)]  # same repeat, run side by side
        ratio = f"{statistics.median(paired):.2f}" if paired else "-"
        lines.append(f"| {name} | {statistics.median(factors):.0f} ({min(factors):.0f}-{max(factors):.0f}) | {wall:.1f} | "
                     f"{startup:.1f} | {audio_s / max(wall - startup, 1e-3):.0f} | {ratio} | "
                     f"{max(m.peak_rss_mb for m in runs):.0f} | {statistics.median(m.cpu_s for m in runs) * 3600 / audio_s:.0f} |")
    return "\n".join(lines)


def one_clip(folder: Path, library: Path) -> Path:
    """A folder with the first 5 s of the library: what a command costs before its first file (start-up)."""
    folder.mkdir(parents=True, exist_ok=True)
    wave, rate = sf.read(library, frames=5 * RATE, dtype="float32")
    for stale in folder.glob("clip.*"):
        stale.unlink()
    sf.write(folder / f"clip{library.suffix}", wave, rate)
    return folder


def bench_library(label: str, folder: Path, library: list[Path], models: dict[str, Path], vibenet: Path | None,
                  work: Path, args: argparse.Namespace) -> dict:
    """Every chosen system over one library folder, in turn, `args.repeats` times; prints the table."""
    audio_s = sum(sf.info(p).duration for p in library)
    chosen = systems(models, folder, vibenet, work)
    starting = {s.name: s for s in systems(models, one_clip(work / "one-clip", library[0]), vibenet, work)}
    if args.only:
        chosen = [s for s in chosen if s.name in args.only.split(",")]
    for path in library:  # the files in the page cache for every system alike
        path.read_bytes()
    load = wait_for_quiet(args.max_load, args.wait_minutes)
    results: dict[str, list[Measure]] = {s.name: [] for s in chosen}
    startups: dict[str, list[Measure]] = {s.name: [] for s in chosen}
    for repeat in range(args.repeats):
        for system in chosen:  # in turn, so a change in the machine's load touches every system
            if results[system.name] and results[system.name][0].wall_s > 60 * args.long_run_minutes:
                continue  # slow enough to be timed once: its noise is small against its length
            startups[system.name].append(timed(starting[system.name]))
            measure = timed(system)
            results[system.name].append(measure)
            print(f"{label}, repeat {repeat + 1}: {system.name}: {measure.wall_s:.1f} s, {measure.cpu_s:.1f} CPU s, "
                  f"{measure.peak_rss_mb:.0f} MB, load {measure.load:.2f}", file=sys.stderr, flush=True)
    print(f"\n{label}: {len(library)} {library[0].suffix[1:].upper()} files, {audio_s / 3600:.2f} h of audio, {os.cpu_count()} cores, "
          f"load {load:.2f} at the start; {args.repeats} runs each, in turn")
    print(table(results, startups, audio_s), flush=True)
    return {"library": {"files": len(library), "audio_seconds": audio_s, "format": f"{library[0].suffix[1:].upper()}, 44.1 kHz stereo"},
            "load_at_start": load, "cpu_count": os.cpu_count(),
            "systems": {s.name: {"command": s.command, "note": s.note, "runs": [asdict(m) for m in results[s.name]],
                                 "start_up_runs": [asdict(m) for m in startups[s.name]]} for s in chosen}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=10.0, help="Length of each file.")
    parser.add_argument("--clips", type=int, default=0, help="Also time a library of this many short clips.")
    parser.add_argument("--clip_seconds", type=float, default=15.0, help="Length of each short clip.")
    parser.add_argument("--format", choices=sorted(FORMATS), default="mp3", help="The libraries' audio format.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="Comma-separated systems to time (default: all).")
    parser.add_argument("--long_run_minutes", type=float, default=5.0,
                        help="A system whose first run takes longer than this is not repeated.")
    parser.add_argument("--max_load", type=float, default=1.0)
    parser.add_argument("--wait_minutes", type=float, default=60.0)
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "sentio-predict-speed"))
    args = parser.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else None
    suffix = "" if args.format == "mp3" else f"-{args.format}"  # the MP3 folders keep their names
    library = make_library(work / f"library{suffix}", args.files, args.minutes, fmt=args.format)
    models = build_models(work / "models", library, wanted)
    vibenet = vibenet_venv(work / "vibenet-venv") if wanted is None or "VibeNet" in wanted else None
    report = {"long files": bench_library("long files", work / f"library{suffix}", library, models, vibenet, work, args)}
    if args.clips:
        clips = make_library(work / f"clips{suffix}", args.clips, args.clip_seconds / 60, fmt=args.format)
        report["short clips"] = bench_library("short clips", work / f"clips{suffix}", clips, models, vibenet, work, args)
    (work / f"predict_speed{suffix}.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
