"""Time-resolved emotion on the demo corpus: a dynamic model's 2 Hz curves against a static model's
windowed timeline and against the ceiling; and what predicting a 10-minute file costs.

    python bench/dynamic_demo.py --epochs 30 --output_dir runs/bench-dynamic

Both models are the compact demo AST trained from scratch with the same settings, one with
`--target dynamic` (a value per half-second of each window), one static (a value per window; its
timeline gives each half-second the mean of the windows that overlap it). Both are scored on the
test songs' labelled half-seconds with the MediaEval protocol (per-song Pearson r and RMSE averaged
over songs, CCC over all frames); the ceiling is what the true curves score against the noisy labels
(the demo's truth_dynamic.csv). The 10-minute file is demo clips joined end to end; predict.py runs
it with --timeline in a process of its own (wall time and peak RSS). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--demo_dir", default="data/demo")
    p.add_argument("--cache_dir", default="data/cache")
    p.add_argument("--static_run", default=None, help="an existing static demo run to reuse (default: train one)")
    p.add_argument("--long_minutes", type=float, default=10.0)
    p.add_argument("--output_dir", default="runs/bench-dynamic")
    return p.parse_args()


def train(out: Path, args: argparse.Namespace, *extra: str) -> Path:
    if (out / "all_results.json").is_file():
        return out
    command = [sys.executable, "train.py", "--model", "ast", "--demo", "--demo_dir", args.demo_dir, "--epochs",
               str(args.epochs), "--output_dir", str(out), "--cache_dir", args.cache_dir, "--report_to", "none",
               "--disable_tqdm", "true", "--overwrite_output_dir", *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr[-3000:]}")
    return out


def static_timeline_curves(run: Path, manifest, curves) -> tuple[dict, dict]:
    """The static model's timeline on each test song, read at the song's label times: the mean of
    the windows that overlap each labelled half-second."""
    from sentio.data.dynamic import FRAME_SECONDS
    from sentio.inference import EmotionPredictor

    predictor = EmotionPredictor.from_pretrained(run)
    window = predictor.extractor.params.window_duration
    pred, true = {}, {}
    for song, path in zip(manifest["song_id"].astype(str), manifest["path"]):
        if song not in curves:
            continue
        outputs, starts = predictor.window_outputs(path)
        values = outputs["predictions"]
        times, labels = curves[song].times, curves[song].values
        begins = times - FRAME_SECONDS
        overlap = (starts[None, :] < begins[:, None] + FRAME_SECONDS) & (starts[None, :] + window > begins[:, None])
        weights = overlap / np.maximum(overlap.sum(axis=1, keepdims=True), 1)
        pred[song], true[song] = weights @ values, labels.astype(np.float64)
    return pred, true


def long_file(path: Path, demo_dir: str, minutes: float) -> Path:
    """Demo clips joined end to end into one long WAV (16 kHz mono)."""
    import soundfile as sf

    from sentio.features.audio import load_audio

    if path.is_file():
        return path
    clips = sorted((Path(demo_dir) / "DEAM_audio" / "MEMD_audio").glob("*.mp3"))
    pieces, total = [], 0
    while total < minutes * 60 * 16000:
        wave = load_audio(clips[len(pieces) % len(clips)], 16000)
        pieces.append(wave)
        total += len(wave)
    sf.write(path, np.concatenate(pieces)[: int(minutes * 60 * 16000)], 16000)
    return path


def predict_cost(run: Path, audio: Path, out: Path) -> dict:
    """predict.py --timeline on one long file, under GNU time: wall seconds and peak RSS of that process."""
    import soundfile as sf

    done = subprocess.run(["/usr/bin/time", "-f", "%M %e", sys.executable, "predict.py", "--model_dir", str(run),
                           str(audio), "--timeline", "--output", str(out / "long.json")],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"predict.py failed:\n{done.stderr[-3000:]}")
    peak_kb, wall = done.stderr.strip().splitlines()[-1].split()
    result = json.loads((out / "long.json").read_text())
    frames = len(result[0].get("curve", {}).get("times", [])) if result else 0
    return {"audio_s": round(sf.info(str(audio)).duration, 1), "wall_s": float(wall),
            "peak_rss_mb": round(int(peak_kb) / 1024), "frames": frames}


def main() -> int:
    args = parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    from sentio.demo.ceiling import split_dynamic_ceiling
    from sentio.data.manifest import read_curves
    from sentio.data.manifest import read_manifest
    from sentio.metrics import curve_metrics

    dynamic = train(out / "ast-dynamic", args, "--target", "dynamic")
    static = Path(args.static_run) if args.static_run else train(out / "ast-static", args)
    evaluated = subprocess.run([sys.executable, "evaluate.py", "--model_dir", str(dynamic), "--bootstrap", "1000"],
                               cwd=ROOT, capture_output=True, text=True)
    if evaluated.returncode != 0:
        raise SystemExit(f"evaluate.py failed:\n{evaluated.stderr[-3000:]}")
    report = json.loads((dynamic / "eval-test" / "eval_report.json").read_text())["dynamic"]
    manifest = read_manifest(dynamic / "manifest.csv")
    test = manifest[manifest["split"] == "test"]
    curves = read_curves(dynamic)
    timeline = curve_metrics(*static_timeline_curves(static, test, curves))
    ceiling = split_dynamic_ceiling(args.demo_dir, test)
    rows = {
        "dynamic model (2 Hz head)": {k: report["metrics"][d][m]["value"] for m, k in
                                      (("song_pearson", "song_r"), ("song_rmse", "song_rmse"), ("ccc", "ccc"))
                                      for d in ("mean",)},
        "static model, windowed timeline": {"song_r": timeline["song_pearson_mean"],
                                            "song_rmse": timeline["song_rmse_mean"], "ccc": timeline["ccc_mean"]},
        "ceiling (true curves vs labels)": {"song_r": ceiling["pearson_mean"], "song_rmse": ceiling["rmse_mean"],
                                            "ccc": ceiling["ccc_mean"]},
    }
    result = {"test_songs": report["songs"], "frames": report["frames"], "rows": rows, "dynamic_report": report,
              "predict_long_file": predict_cost(dynamic, long_file(out / "long.wav", args.demo_dir, args.long_minutes),
                                                out)}
    (out / "dynamic.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{report['songs']} test songs, {report['frames']} labelled half-seconds (means over valence and arousal)")
    print("| | per-song r | per-song RMSE | CCC (all frames) |\n|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['song_r']:.3f} | {row['song_rmse']:.3f} | {row['ccc']:.3f} |")
    print(json.dumps(result["predict_long_file"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
