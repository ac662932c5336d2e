"""From a trained run and a split to scored predictions and the files of an evaluation."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..args import DataArguments
from ..calibration import CALIBRATION_FILE, Calibration
from ..choices import ALL_SPLITS, TARGET_STATIC
from ..data.duplicates import SeenInTraining, songs_seen_in_training
from ..data.dynamic import stitch_labelled
from ..data.manifest import read_curves, read_manifest
from ..data.protocols import BenchmarkProtocol, get_protocol
from ..data.sources import check_manifest_protocol, load_manifest
from ..errors import DataError
from ..features.cache import build_feature_dataset, is_cached
from ..features.datasets import TARGET_COLUMNS, EmotionCollator, WindowDataset
from ..features.extractor import SentioFeatureExtractor
from ..inference.loading import load_run
from ..inference.runner import WindowRunner, batches_of, dataset_items, run_batches
from ..metrics import average_by_song
from . import plots
from .benchmark import data_report_section, protocol_headline
from .report import EvalReport, arrays, build_report, coverage_report, curve_report, markdown, prediction_table

logger = logging.getLogger(__name__)


def leave_out_seen(model_dir: str, data_args: DataArguments, manifest: pd.DataFrame, split: str,
                   progress: bool = True) -> tuple[pd.DataFrame, SeenInTraining | None]:
    """With --data/--demo (another dataset, or the same one prepared again), the `split` songs that
    are copies of songs the run trained on (its manifest's train and validation splits, found by
    their audio) are left out of the scores and counted; None when the run's own manifest is scored."""
    run_manifest = Path(model_dir) / "manifest.csv"
    if not (data_args.data or data_args.demo) or not run_manifest.is_file():
        return manifest, None
    scored = manifest[manifest["split"] == split]
    seen = songs_seen_in_training(read_manifest(run_manifest), scored, data_args.match_audio, data_args.cache_dir,
                                  progress)
    if seen.left_out:
        logger.warning("left out %d of %d %s songs: the run trained on copies of them (%s; listed in eval_report.json)",
                       len(seen.left_out), len(scored), split, seen.matched_by)
        drop = {row["song_id"] for row in seen.left_out}
        manifest = manifest[~((manifest["split"] == split) & manifest["song_id"].astype(str).isin(drop))]
    return manifest, seen


def run_protocol(data_args: DataArguments, manifest: pd.DataFrame, manifest_path: Path) -> BenchmarkProtocol | None:
    """--protocol, checked against a run's own manifest, or else the protocol the manifest was prepared with."""
    if data_args.protocol:
        if not (data_args.data or data_args.demo or data_args.dataset_name):
            check_manifest_protocol(manifest, data_args.protocol, manifest_path)
        return get_protocol(data_args.protocol)
    recorded = sorted(set(manifest["protocol"].fillna("").astype(str)) - {""}) if "protocol" in manifest else []
    return get_protocol(recorded[0]) if len(recorded) == 1 else None


def _feature_manifest(manifest: pd.DataFrame, extractor: SentioFeatureExtractor, cache_dir: str,
                      split: str) -> pd.DataFrame:
    """The whole manifest when training already cached its features (free), else only the split's
    clips, so a fresh cache computes a tenth of the corpus instead of all of it."""
    if split == ALL_SPLITS or is_cached(manifest, extractor, cache_dir):
        return manifest
    return manifest[manifest["split"] == split]


@dataclass
class SplitPredictions:
    """A model's outputs on every window of one split, with the windows' targets."""

    song_ids: list[str]
    window: list[int]
    starts: np.ndarray
    pred: np.ndarray  # [N, 2]
    true: np.ndarray  # [N, 2]
    spread: np.ndarray | None = None  # [N, 2] predicted spread
    label_spread: np.ndarray | None = None  # [N, 2] the raters' spread (NaN where unknown)
    frame_pred: np.ndarray | None = None  # [N, F, 2] of a dynamic model
    frame_mask: np.ndarray | None = None  # [N, F]
    frame_labels: np.ndarray | None = None  # [N, F, 2], NaN where unlabelled


def predict_split(runner: WindowRunner, extractor: SentioFeatureExtractor, manifest: pd.DataFrame, split: str,
                  cache_dir: str, batch_size: int = 32, num_proc: int = 1, progress: bool = True,
                  curves: dict | None = None, max_seconds: float | None = None) -> SplitPredictions:
    """Every output of the model on every window of one split (with `curves`, the windows' 2 Hz labels too)."""
    counts = manifest["split"].value_counts().to_dict()
    if split == ALL_SPLITS:
        if manifest.empty:
            raise DataError("the data has no songs to score")
    elif not counts.get(split):
        raise DataError(f"the {split!r} split has no songs (splits: {counts or 'none'}); --split {ALL_SPLITS} "
                        "scores every song")
    features, feature_report = build_feature_dataset(_feature_manifest(manifest, extractor, cache_dir, split),
                                                     extractor, cache_dir, num_proc=num_proc, curves=curves,
                                                     max_seconds=max_seconds)
    for failure in feature_report.failed:
        logger.warning("skipped %s: %s", failure.path, failure.reason)
    windows = WindowDataset(features, extractor.feature_name, None if split == ALL_SPLITS else split,
                            targets=TARGET_COLUMNS)
    if len(windows) == 0:
        raise DataError(f"no usable clip in the {split!r} split (all failed to decode)")
    batches = batches_of(dataset_items(windows), EmotionCollator.for_extractor(extractor), batch_size)
    outputs = run_batches(runner, batches, progress=progress, desc=f"predict {split}",
                          total=-(-len(windows) // batch_size))

    def column(name: str) -> np.ndarray | None:
        if name not in windows.ds.column_names:
            return None
        return np.asarray(windows.ds.with_format("numpy", columns=[name])[name], np.float64)

    return SplitPredictions(
        song_ids=windows.song_ids, window=[int(w) for w in windows.ds["window"]], starts=windows.starts,
        pred=np.asarray(outputs["predictions"], np.float64), true=windows.labels().astype(np.float64),
        spread=outputs.get("spread"), label_spread=column("label_spread"), frame_pred=outputs.get("frame_predictions"),
        frame_mask=outputs.get("frame_mask"), frame_labels=column("frame_labels"))


@dataclass
class Scored:
    """What is scored: one row per song (window predictions averaged, as in training) or window."""

    table: pd.DataFrame
    spread: np.ndarray | None
    label_spread: np.ndarray | None


def score_table(predictions: SplitPredictions, manifest: pd.DataFrame, per_window: bool) -> Scored:
    """predictions.csv rows (and the matching spreads): songs or windows."""
    subsets = dict(zip(manifest["song_id"].astype(str), manifest["subset"].fillna("").astype(str))) \
        if "subset" in manifest else {}
    p = predictions
    if per_window:
        return Scored(prediction_table(p.pred, p.true, p.song_ids, subsets, windows=p.window), p.spread, p.label_spread)
    pred, songs = average_by_song(p.pred, p.song_ids)
    true, _ = average_by_song(p.true, p.song_ids)
    spread = None if p.spread is None else average_by_song(p.spread, p.song_ids)[0]
    label_spread = None if p.label_spread is None else average_by_song(p.label_spread, p.song_ids)[0]
    return Scored(prediction_table(pred, true, songs, subsets), spread, label_spread)


def curve_outputs(predictions: SplitPredictions) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per song, (label times, predicted curve, label curve) over the labelled frames, the windows'
    frames stitched at each label time."""
    p = predictions
    return stitch_labelled(p.song_ids, p.starts, p.frame_pred, p.frame_mask, p.frame_labels)


def write_outputs(table: pd.DataFrame, report: EvalReport, model_dir: str, output_dir: str,
                  curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None) -> dict[str, str]:
    """predictions.csv (and predicted_curves.csv), the PNGs, eval_report.json and report.md;
    returns {title: file} of the figures."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "predictions.csv", index=False)  # full precision: metrics recompute exactly
    level = report.level
    ccc = {dim: report.value("ccc", dim) for dim in ("valence", "arousal")}  # None: undefined
    figures = {
        "Predicted vs true": plots.scatter(table, ccc, out / "scatter.png", level),
        "Errors": plots.error_histograms(table, out / "errors.png", level),
        "Valence-arousal plane": plots.va_plane(table, out / "va_plane.png", level),
        "Quadrant confusion matrix": plots.confusion(report.quadrants, out / "quadrants.png"),
    }
    if curves:
        picks = report.dynamic["picks"]
        figures["2 Hz curves (best, median and worst song by RMSE)"] = plots.song_curves(curves, picks,
                                                                                       out / "curves.png")
        figures["Trajectories on the valence-arousal plane"] = plots.trajectories(curves, picks, out / "trajectories.png")
        rows = [{"song_id": song, "time": t, "valence_pred": p[0], "arousal_pred": p[1], "valence_true": y[0],
                 "arousal_true": y[1]} for song, (times, pred, true) in curves.items()
                for t, p, y in zip(times, pred, true)]
        pd.DataFrame(rows).to_csv(out / "predicted_curves.csv", index=False)
    if report.coverage is not None:
        figures["Coverage of the calibrated intervals"] = plots.coverage(report.coverage, out / "coverage.png")
    notes = []
    history = plots.read_log_history(model_dir)
    training = plots.training_curves(history, out / "training_curves.png") if history else None
    if training:
        figures["Training curves"] = training
    else:
        notes.append("training curves skipped: no trainer_state.json log_history in the model folder")
        if os.path.exists(out / "training_curves.png"):  # a stale picture from an earlier run would mislead
            os.remove(out / "training_curves.png")
    report.figures = figures
    report.notes = notes
    (out / "eval_report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    (out / "report.md").write_text(markdown(report, figures, notes))
    return figures


def evaluate_run(model_dir: str, data_args: DataArguments, split: str, output_dir: str, per_window: bool,
                 draws: int, seed: int, batch_size: int = 32, progress: bool = True) -> EvalReport:
    """The whole evaluation: load, predict, score, write. Returns the report."""
    run = load_run(model_dir)
    manifest, source, manifest_dir = load_manifest(model_dir, data_args, output_dir)
    manifest, seen = leave_out_seen(model_dir, data_args, manifest, split, progress)
    protocol = run_protocol(data_args, manifest, manifest_dir / "manifest.csv")
    logger.info("data: %s; scoring the %s split", source, split)
    dynamic = run.config is not None and getattr(run.config, "target", TARGET_STATIC) != TARGET_STATIC
    curves = read_curves(manifest_dir) if dynamic else None
    if dynamic and not curves:
        logger.warning("a dynamic model, but the data has no 2 Hz annotations: only the static scores follow")
    predictions = predict_split(run.runner, run.extractor, manifest, split, data_args.cache_dir, batch_size,
                                data_args.preprocessing_num_workers, progress, curves or None,
                                protocol.max_seconds if protocol else None)
    scored = score_table(predictions, manifest, per_window)
    table = scored.table
    logger.info("scoring %d %s (bootstrap %d draws)", len(table), "windows" if per_window else "songs", draws)
    report = build_report(table, level="window" if per_window else "song", split=split, model_dir=model_dir,
                          windows=len(predictions.pred), draws=draws, seed=seed)
    report.data = source
    if seen is not None:
        report.left_out_seen_in_training = seen.to_dict()
    song_curves = None
    if predictions.frame_pred is not None and predictions.frame_labels is not None:
        song_curves = curve_outputs(predictions)
        static = dict(zip(manifest["song_id"].astype(str), manifest[["valence", "arousal"]].to_numpy(np.float64)))
        report.dynamic = curve_report(song_curves, static, draws, seed)
    calibration_file = run.file(CALIBRATION_FILE)
    if calibration_file is not None:
        pred, true = arrays(table)
        coverage, columns = coverage_report(Calibration.load(calibration_file), pred, scored.spread, true,
                                            table["song_id"].tolist(), scored.label_spread, draws, seed)
        report.coverage = coverage
        for name, values in columns.items():
            table[name] = values
        if scored.spread is not None:
            table["valence_spread"], table["arousal_spread"] = scored.spread[:, 0], scored.spread[:, 1]
    if protocol is not None:
        report.protocol = protocol_headline(protocol, table, report.dynamic, manifest, data_report_section(manifest_dir))
    write_outputs(table, report, model_dir, output_dir, song_curves)
    return report
