"""From a trained run and a split to scored predictions and the files of an evaluation."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..args import DataArguments
from ..data.collate import EmotionCollator, WindowDataset
from ..data.feature_cache import build_feature_dataset, is_cached
from ..data.feature_extractor import SentioFeatureExtractor
from ..data.manifest import read_manifest
from ..data.sources import prepare_manifest
from ..errors import DataError, MissingFileError
from ..inference.run import load_run
from ..inference.runner import WindowRunner, batches_of, dataset_items, run_batches
from ..metrics import average_by_song
from . import plots
from .report import build_report, markdown, prediction_table

logger = logging.getLogger(__name__)


def load_manifest(model_dir: str, data_args: DataArguments, output_dir: str) -> tuple[pd.DataFrame, str]:
    """The run's own manifest.csv (same splits as training) unless --data/--demo names another source."""
    if data_args.data or data_args.demo:
        manifest, report = prepare_manifest(data_args, output_dir)
        return manifest, report.get("source", data_args.data or "demo")
    path = Path(model_dir) / "manifest.csv"
    if not path.is_file():
        raise MissingFileError(f"{model_dir}: no manifest.csv in the run; pass --data DEAM_DIR|CSV or --demo")
    return read_manifest(path), f"manifest {path}"


def _feature_manifest(manifest: pd.DataFrame, extractor: SentioFeatureExtractor, cache_dir: str,
                      split: str) -> pd.DataFrame:
    """The whole manifest when training already cached its features (free), else only the split's
    clips, so a fresh cache computes a tenth of the corpus instead of all of it."""
    if is_cached(manifest, extractor, cache_dir):
        return manifest
    return manifest[manifest["split"] == split]


def predict_split(runner: WindowRunner, extractor: SentioFeatureExtractor, manifest: pd.DataFrame, split: str,
                  cache_dir: str, batch_size: int = 32, num_proc: int = 1, progress: bool = True) -> dict[str, Any]:
    """Window predictions of one split: pred/true [N, 2], song_ids and window indices."""
    counts = manifest["split"].value_counts().to_dict()
    if not counts.get(split):
        raise DataError(f"the {split!r} split has no songs (splits: {counts or 'none'})")
    features, feature_report = build_feature_dataset(_feature_manifest(manifest, extractor, cache_dir, split),
                                                     extractor, cache_dir, num_proc=num_proc)
    for failure in feature_report["failed"]:
        logger.warning("skipped %s: %s", failure["path"], failure["reason"])
    windows = WindowDataset(features, extractor.feature_name, split)
    if len(windows) == 0:
        raise DataError(f"no usable clip in the {split!r} split (all failed to decode)")
    batches = batches_of(dataset_items(windows), EmotionCollator.for_extractor(extractor), batch_size)
    outputs = run_batches(runner, batches, progress=progress, desc=f"predict {split}",
                          total=-(-len(windows) // batch_size))
    return {"pred": np.asarray(outputs["predictions"], np.float64), "true": windows.labels().astype(np.float64),
            "song_ids": windows.song_ids, "window": [int(w) for w in windows.ds["window"]]}


def score_table(predictions: dict[str, Any], manifest: pd.DataFrame, per_window: bool) -> pd.DataFrame:
    """predictions.csv rows: songs (window predictions averaged, as in training) or windows."""
    subsets = dict(zip(manifest["song_id"].astype(str), manifest["subset"].fillna("").astype(str))) \
        if "subset" in manifest else {}
    if per_window:
        return prediction_table(predictions["pred"], predictions["true"], predictions["song_ids"], subsets,
                                windows=predictions["window"])
    pred, songs = average_by_song(predictions["pred"], predictions["song_ids"])
    true, _ = average_by_song(predictions["true"], predictions["song_ids"])
    return prediction_table(pred, true, songs, subsets)


def write_outputs(table: pd.DataFrame, report: dict[str, Any], model_dir: str, output_dir: str) -> dict[str, str]:
    """predictions.csv, the PNGs, eval_report.json and report.md; returns {title: file} of the figures."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "predictions.csv", index=False)  # full precision: metrics recompute exactly
    level = report["level"]
    ccc = {dim: report["metrics"][dim]["ccc"]["value"] for dim in ("valence", "arousal")}
    figures = {
        "Predicted vs true": plots.scatter(table, ccc, out / "scatter.png", level),
        "Errors": plots.error_histograms(table, out / "errors.png", level),
        "Valence-arousal plane": plots.va_plane(table, out / "va_plane.png", level),
        "Quadrant confusion matrix": plots.confusion(report["quadrants"], out / "quadrants.png"),
    }
    notes = []
    history = plots.read_log_history(model_dir)
    curves = plots.training_curves(history, out / "training_curves.png") if history else None
    if curves:
        figures["Training curves"] = curves
    else:
        notes.append("training curves skipped: no trainer_state.json log_history in the model folder")
        if os.path.exists(out / "training_curves.png"):  # a stale picture from an earlier run would mislead
            os.remove(out / "training_curves.png")
    report["figures"] = figures
    report["notes"] = notes
    (out / "eval_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report, figures, notes))
    return figures


def evaluate_run(model_dir: str, data_args: DataArguments, split: str, output_dir: str, per_window: bool,
                 draws: int, seed: int, batch_size: int = 32, progress: bool = True) -> dict[str, Any]:
    """The whole evaluation: load, predict, score, write. Returns the report."""
    run = load_run(model_dir)
    manifest, source = load_manifest(model_dir, data_args, output_dir)
    logger.info("data: %s; scoring the %s split", source, split)
    predictions = predict_split(run.runner, run.extractor, manifest, split, data_args.cache_dir, batch_size,
                                data_args.preprocessing_num_workers, progress)
    table = score_table(predictions, manifest, per_window)
    logger.info("scoring %d %s (bootstrap %d draws)", len(table), "windows" if per_window else "songs", draws)
    report = build_report(table, level="window" if per_window else "song", split=split, model_dir=model_dir,
                          windows=len(predictions["pred"]), draws=draws, seed=seed)
    report["data"] = source
    write_outputs(table, report, model_dir, output_dir)
    return report
