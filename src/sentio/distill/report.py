"""After training a student: ONNX + int8 files, parity, test CCC of each runtime, latency, the report."""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset

from ..features.datasets import WindowDataset
from ..features.extractor import SentioFeatureExtractor
from ..metrics import average_by_song, regression_metrics
from .export import (
    as_batches,
    export_onnx,
    input_shape,
    median_latency_ms,
    quantize_int8,
    run_onnx,
    run_torch,
)

logger = logging.getLogger(__name__)
FP32_FILE, INT8_FILE = "student.onnx", "student.int8.onnx"
CLIP_SECONDS = 10.0
FULL_WINDOW_FRAMES = 1024  # AST's standard 10.24 s window
GOALS = {"int8_mb": 5.0, "latency_ms": 20.0, "ccc_gap": 0.05}


def _windows(features: Dataset, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    ds = WindowDataset(features, "input_values", split)
    rows = ds.view[:]
    return (np.asarray(rows["input_values"], np.float32), np.asarray(rows["length"]),
            np.asarray(rows["labels"], np.float64), ds.song_ids)


def calibration_batches(features: Dataset, count: int, seed: int = 0, batch_size: int = 16) -> list[dict[str, np.ndarray]]:
    """`count` random training windows (real spectrograms, real padding) as input batches."""
    ds = WindowDataset(features, "input_values", "train")
    pick = np.sort(np.random.default_rng(seed).choice(len(ds), size=min(count, len(ds)), replace=False))
    rows = ds.view[pick]
    return as_batches(np.asarray(rows["input_values"], np.float32), np.asarray(rows["length"]), batch_size)


def song_ccc(pred: np.ndarray, labels: np.ndarray, songs: list[str]) -> dict[str, float]:
    """Song-level CCC (window predictions averaged per song), as training and evaluate.py score."""
    p, _ = average_by_song(pred, songs)
    t, _ = average_by_song(labels, songs)
    m = regression_metrics(p, t)
    return {k: m[f"ccc_{k}"] for k in ("valence", "arousal", "mean")}


def _clip_wave(extractor: SentioFeatureExtractor, manifest: pd.DataFrame, seconds: float) -> tuple[np.ndarray, str]:
    """`seconds` of the first test clip (looped if shorter), and what it was."""
    path = str(manifest[manifest["split"] == "test"]["path"].iloc[0])
    wave = extractor.load(path)
    need = int(round(seconds * extractor.sampling_rate))
    note = f"first {seconds:g} s of {Path(path).name}"
    if len(wave) < need:
        note = f"{Path(path).name} ({len(wave) / extractor.sampling_rate:.1f} s) looped to {seconds:g} s"
        wave = np.resize(wave, need)
    return wave[:need], note


def latency(model: torch.nn.Module, extractor: SentioFeatureExtractor, manifest: pd.DataFrame, out: Path,
            runs: int) -> dict[str, Any]:
    """Median ms per 10 s clip (all its windows in one batch) and per full 1024-frame window, 1 thread."""
    wave, note = _clip_wave(extractor, manifest, CLIP_SECONDS)
    win = extractor(wave)
    clip = as_batches(win["input_values"], win["length"], batch_size=len(win["length"]))[0]
    result: dict[str, Any] = {"threads": 1, "runs": runs, "statistic": "median", "clip": note,
                              "clip_windows": int(len(win["length"])), "frames_per_window": int(extractor.max_length),
                              "clip_fp32_ms": median_latency_ms(out / FP32_FILE, clip, runs),
                              "clip_int8_ms": median_latency_ms(out / INT8_FILE, clip, runs)}
    full = SentioFeatureExtractor.from_params(dataclasses.replace(extractor.params, max_length=FULL_WINDOW_FRAMES))
    fw = full(np.resize(wave, full.params.window_samples))
    one = as_batches(fw["input_values"][:1], fw["length"][:1], batch_size=1)[0]
    if isinstance(input_shape(out / FP32_FILE)[1], str):  # frames dynamic: the shipped files take 1024 frames
        parity = np.abs(run_onnx(out / FP32_FILE, [one]) - run_torch(model, [one])).max()
        result.update(full_window_fp32_ms=median_latency_ms(out / FP32_FILE, one, runs),
                      full_window_int8_ms=median_latency_ms(out / INT8_FILE, one, runs),
                      full_window_fp32_max_abs_diff=float(parity), full_window_source="the shipped files")
    else:  # fixed frames: a separate fp32 export at 1024 frames, timed only
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, Path(tmp) / "full.onnx", FULL_WINDOW_FRAMES, extractor.num_mel_bins)
            result.update(full_window_fp32_ms=median_latency_ms(path, one, runs), full_window_int8_ms=None,
                          full_window_source="a separate fp32 export at 1024 frames")
    return result


def export_and_measure(model: torch.nn.Module, extractor: SentioFeatureExtractor, features: Dataset,
                       manifest: pd.DataFrame, output_dir: str, calibration_windows: int = 256,
                       latency_runs: int = 200) -> dict[str, Any]:
    """Write student.onnx and student.int8.onnx into output_dir and measure them against PyTorch."""
    out = Path(output_dir)
    model = model.float().cpu().eval()
    export_onnx(model, out / FP32_FILE, int(extractor.max_length), int(extractor.num_mel_bins))
    quantize_int8(out / FP32_FILE, out / INT8_FILE, calibration_batches(features, calibration_windows))

    feats, lengths, labels, songs = _windows(features, "test")
    batches = as_batches(feats, lengths)
    preds = {"torch": run_torch(model, batches), "fp32": run_onnx(out / FP32_FILE, batches, threads=2),
             "int8": run_onnx(out / INT8_FILE, batches, threads=2)}
    shape = input_shape(out / FP32_FILE)
    report = {
        "onnx": {"inputs": "input_values [batch, frames, mel] float32, attention_mask [batch, frames] int64",
                 "input_shape": shape, "dynamic_batch": isinstance(shape[0], str),
                 "dynamic_frames": isinstance(shape[1], str), "int8": "static QDQ, per-channel int8 weights, "
                 f"uint8 activations calibrated on {min(calibration_windows, len(features))} training windows"},
        "files_mb": {name: round((out / name).stat().st_size / 1e6, 3) for name in (FP32_FILE, INT8_FILE)},
        "parity": {"windows": int(len(feats)), "split": "test",
                   "fp32_max_abs_diff": float(np.abs(preds["fp32"] - preds["torch"]).max()),
                   "int8_max_abs_diff": float(np.abs(preds["int8"] - preds["torch"]).max())},
        "test_ccc": {f"student_{k}": song_ccc(v, labels, songs) for k, v in
                     (("torch", preds["torch"]), ("fp32_onnx", preds["fp32"]), ("int8_onnx", preds["int8"]))},
        "latency_ms": latency(model, extractor, manifest, out, latency_runs),
    }
    print(f"parity on {len(feats)} test windows: max abs diff fp32 {report['parity']['fp32_max_abs_diff']:.2e}, "
          f"int8 {report['parity']['int8_max_abs_diff']:.2e}")
    return report


def write_report(output_dir: str, info: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """distill_report.json: what was distilled, the measured figures, and the issue's goals met or not."""
    report = {**info, **measured}
    teacher, ccc = info["teacher"]["test_ccc"]["mean"], measured.get("test_ccc", {})
    if ccc:
        lat = measured["latency_ms"]
        report["goals"] = {
            "int8_at_most_5_mb": measured["files_mb"][INT8_FILE] <= GOALS["int8_mb"],
            "int8_clip_at_most_20_ms": lat["clip_int8_ms"] <= GOALS["latency_ms"],
            "int8_ccc_within_0.05_of_teacher": teacher - ccc["student_int8_onnx"]["mean"] <= GOALS["ccc_gap"],
            "torch_ccc_within_0.05_of_teacher": teacher - ccc["student_torch"]["mean"] <= GOALS["ccc_gap"],
        }
    (Path(output_dir) / "distill_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def card_section(report: dict[str, Any]) -> str:
    """Markdown appended to the student's model card."""
    t, s = report["teacher"], report["student"]
    lines = ["## Distillation", "",
             f"- Teacher: `{t['model_class']}` ({t['num_parameters'] / 1e6:.2f}M parameters), test CCC mean "
             f"{t['test_ccc']['mean']:.4f}", f"- Student: `{s['architecture']}`, {s['num_parameters'] / 1e6:.2f}M parameters",
             f"- Loss: {report['loss']}", f"- Teacher targets: {report['targets']}"]
    if "files_mb" in report:
        lat, ccc = report["latency_ms"], report["test_ccc"]
        lines += [f"- ONNX: `{FP32_FILE}` {report['files_mb'][FP32_FILE]} MB, `{INT8_FILE}` "
                  f"{report['files_mb'][INT8_FILE]} MB; max abs diff to PyTorch fp32 "
                  f"{report['parity']['fp32_max_abs_diff']:.1e}, int8 {report['parity']['int8_max_abs_diff']:.1e}",
                  f"- Latency (onnxruntime, 1 thread, median): {lat['clip_int8_ms']:.1f} ms int8 / {lat['clip_fp32_ms']:.1f} "
                  f"ms fp32 per {CLIP_SECONDS:g} s clip ({lat['clip_windows']} windows of {lat['frames_per_window']} frames)",
                  f"- Test CCC mean: PyTorch {ccc['student_torch']['mean']:.4f}, int8 ONNX {ccc['student_int8_onnx']['mean']:.4f}",
                  "- `python predict.py --model_dir THIS_FOLDER/student.int8.onnx song.mp3` runs the ONNX file "
                  "(onnxruntime only)"]
    return "\n".join(lines + [""])
