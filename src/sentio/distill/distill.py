"""Offline distillation of a trained Sentio run (the teacher) into a small student.

teacher run -> its manifest and cached features -> teacher outputs per window (cached) ->
student log-mel windows covering the same seconds -> DistillationTrainer -> a Sentio model folder.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset, List, Value

from ..args import DataArguments
from ..features.datasets import WindowDataset
from ..features.cache import build_feature_dataset
from ..features.extractor import SentioFeatureExtractor
from ..features.params import FbankParams
from ..data.sources import load_manifest
from ..errors import CheckpointError, DataError
from ..inference.loading import Run, load_run
from ..metrics import average_by_song, regression_metrics
from ..models.student import StudentEmotionConfig, StudentForEmotionRegression
from ..training.augment import SpecAugment
from ..training.calibrate import calibrate_and_score
from .args import DistillArguments, DistillTrainingArguments
from .teacher import TeacherOutputs, align, cached_teacher_outputs
from .trainer import DistillationTrainer, DistillCollator, TeacherTargetDataset

logger = logging.getLogger(__name__)


@dataclass
class DistillRun:
    """What run_distillation trained and measured: what distill.py's report and model card need."""

    trainer: DistillationTrainer
    model: StudentForEmotionRegression
    extractor: SentioFeatureExtractor
    features: Dataset
    manifest: pd.DataFrame
    source: str
    results: dict[str, float]
    teacher: torch.nn.Module
    targets: dict[str, Any]  # distill_report.json's `targets`: per-window and song-mean counts, cache file, reused


def load_teacher(teacher_dir: str) -> Run:
    """The teacher run (a torch model: its embedding feeds the feature hint); one line otherwise."""
    run = load_run(teacher_dir)
    if run.model is None:
        raise CheckpointError(f"{teacher_dir}: the teacher must be a train.py run with torch weights, not an ONNX export")
    return run


def student_extractor_for(teacher: SentioFeatureExtractor) -> SentioFeatureExtractor:
    """Fbank windows covering the same seconds as the teacher's windows.

    A teacher that reads fbank features (AST) has its params reused exactly: identical windows,
    and the feature cache is shared. For another teacher (waveform, mel image) the frame count is
    chosen so that a window spans the teacher's window (to within one 10 ms hop), and the hop is
    the teacher's hop in seconds (its window length when it has none), so window k starts where
    the teacher's does.
    """
    if isinstance(teacher.params, FbankParams):
        return SentioFeatureExtractor.from_params(teacher.params)
    student = FbankParams()
    seconds = teacher.params.window_duration
    frames = int(round((seconds * student.sampling_rate - student.frame_length) / student.frame_shift)) + 1
    hop = teacher.hop_seconds if teacher.hop_seconds is not None else seconds
    return SentioFeatureExtractor.from_params(FbankParams(max_length=frames, hop_seconds=hop, min_last=teacher.min_last))


def _copy_manifest(teacher_dir: str, data_args: DataArguments, output_dir: str) -> None:
    """Without --data/--demo the student uses the teacher's manifest (same splits): keep a copy."""
    if not (data_args.data or data_args.demo):
        for name in ("manifest.csv", "data_report.json", "curves.csv"):
            if (Path(teacher_dir) / name).is_file():
                shutil.copy(Path(teacher_dir) / name, Path(output_dir) / name)


def teacher_song_metrics(teacher: TeacherOutputs, manifest: pd.DataFrame, split: str) -> dict[str, float]:
    """Song-level metrics of the teacher's cached window outputs on one split (as training scores)."""
    songs = manifest[manifest["split"] == split]
    wanted = set(songs["song_id"].astype(str))
    rows = [i for i, s in enumerate(teacher.song_id.tolist()) if s in wanted]
    pred, order = average_by_song(teacher.predictions[rows], teacher.song_id[rows].tolist())
    labels = songs.set_index(songs["song_id"].astype(str))[["valence", "arousal"]]
    return regression_metrics(pred, labels.loc[order].to_numpy(np.float64))


def build_student(dargs: DistillArguments, extractor: SentioFeatureExtractor, hint_size: int) -> StudentForEmotionRegression:
    """A fresh student; MSE is its evaluation loss (the distillation loss is the trainer's)."""
    config = StudentEmotionConfig(architecture=dargs.student, width_mult=dargs.width_mult,
                                  num_mel_bins=extractor.num_mel_bins, max_length=extractor.max_length,
                                  hint_size=hint_size, loss="mse")
    return StudentForEmotionRegression(config)


def _with_teacher_columns(features: Dataset, teacher: TeacherOutputs, hint: bool) -> tuple[Dataset, dict[str, int]]:
    cheap = features.select_columns(["song_id", "window", "start"]).with_format("numpy")[:]
    preds, embs, counts = align(teacher, [str(s) for s in cheap["song_id"]], np.asarray(cheap["window"]),
                                np.asarray(cheap["start"], np.float64))
    features = features.add_column("teacher_predictions", preds.tolist(), feature=List(Value("float32"), length=2))
    if hint:
        features = features.add_column("teacher_embedding", embs.tolist(),
                                       feature=List(Value("float32"), length=embs.shape[1]))
    return features, counts


def run_distillation(dargs: DistillArguments, data_args: DataArguments,
                     targs: DistillTrainingArguments) -> DistillRun:
    """Train and save the student in targs.output_dir; returns what the report and card need."""
    teacher_run = load_teacher(dargs.teacher)
    teacher_model, teacher_extractor = teacher_run.model, teacher_run.extractor
    output_dir = targs.output_dir
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    manifest, source, _ = load_manifest(dargs.teacher, data_args, output_dir)
    _copy_manifest(dargs.teacher, data_args, output_dir)

    teacher_features, teacher_report = build_feature_dataset(manifest, teacher_extractor, data_args.cache_dir,
                                                             num_proc=data_args.preprocessing_num_workers)
    teacher, cache_file, reused = cached_teacher_outputs(teacher_run.runner, dargs.teacher, teacher_features,
                                                         teacher_extractor, teacher_report.cache_dir,
                                                         data_args.cache_dir, dargs.teacher_batch_size)
    extractor = student_extractor_for(teacher_extractor)
    if extractor.params == teacher_extractor.params:
        features = teacher_features
    else:
        features, _ = build_feature_dataset(manifest, extractor, data_args.cache_dir,
                                            num_proc=data_args.preprocessing_num_workers)
    hint = dargs.hint_weight > 0
    features, counts = _with_teacher_columns(features, teacher, hint)
    logger.info("teacher targets: %d windows matched per window, %d by song mean (%s, %s)", counts["per_window"],
                counts["song_mean"], cache_file, "reused" if reused else "computed")

    model = build_student(dargs, extractor, teacher.embedding.shape[1] if hint else 0)
    augment = SpecAugment(time_axis=0) if dargs.spec_augment else None
    train = TeacherTargetDataset(features, "input_values", "train", augment=augment,
                                 every_window=dargs.train_windows == "all")
    val, test = WindowDataset(features, "input_values", "validation"), WindowDataset(features, "input_values", "test")
    for split, ds in (("train", train), ("validation", val), ("test", test)):
        if len(ds) == 0:
            raise DataError(f"the {split} split is empty: check the split settings (see data_report.json)")
    trainer = DistillationTrainer(model=model, args=targs, train_dataset=train, eval_dataset=val,
                                  data_collator=DistillCollator("input_values"), processing_class=extractor,
                                  alpha=dargs.alpha, hint_weight=dargs.hint_weight)
    train_result = trainer.train(resume_from_checkpoint=targs.resume_from_checkpoint)
    trainer.save_model()  # config.json, model.safetensors, preprocessor_config.json
    trainer.save_metrics("train", train_result.metrics)
    trainer.save_state()
    # intervals for the student (and its ONNX files, which sit in the same folder), as for any run
    results = calibrate_and_score(trainer, val, test, targs.output_dir, log=False)
    teacher_test = teacher_song_metrics(teacher, manifest, "test")
    results.update({f"teacher_test_{k}": v for k, v in teacher_test.items()})
    return DistillRun(trainer=trainer, model=trainer.model, extractor=extractor, features=features,
                      manifest=manifest, source=source, results=results, teacher=teacher_model,
                      targets={**counts, "cache_file": str(cache_file), "reused": reused})
