"""Glue between arguments, backbones, features and datasets, so train.py reads top to bottom."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pandas as pd
from datasets import Dataset

from ..args import ModelArguments
from ..choices import TARGET_STATIC, TRAIN_WINDOWS
from ..data.manifest import read_curves
from ..errors import ArgumentError, DataError
from ..features.datasets import SongWindowDataset, WindowDataset
from ..features.extractor import SentioFeatureExtractor
from ..features.stats import compute_fbank_stats
from ..models.plan import ModelPlan
from ..models.registry import get_backbone
from .augment import SpecAugment

logger = logging.getLogger(__name__)
# MARBLE's probe trains with Adam at 1e-3 on batches of 64 windows (its head: models.plan.PROBE_HEAD).
PROBE_TRAINING = {"learning_rate": 1e-3, "per_device_train_batch_size": 64}


def run_feature_extractor(plan: ModelPlan, config: Any, manifest: pd.DataFrame,
                          dataset_stats: bool = False) -> SentioFeatureExtractor:
    """The feature extractor a run saves and trains on; with `dataset_stats`, fbank features are
    normalised with the train split's statistics. train.py and prepare.py both call this, so they
    cache the same features."""
    extractor = plan.feature_extractor(config)
    if dataset_stats:  # model_plan refused it for other features
        extractor.mean, extractor.std = compute_fbank_stats(manifest[manifest["split"] == "train"], extractor.params)
    return extractor


# The fewest songs each split needs: training needs one, and calibration (split-conformal intervals)
# and CCC (a correlation) need two, on the validation songs (every run is calibrated and picks its
# checkpoint by validation CCC) and on the test songs (the run's reported CCC).
MIN_SONGS = {"train": 1, "validation": 2, "test": 2}
_NEEDS = {"train": "training needs", "validation": "calibration and validation CCC need", "test": "test CCC needs"}


def check_split_sizes(manifest: pd.DataFrame, split_method: str = "") -> None:
    """Before any feature or training work: one line (DataError) naming each split with too few
    songs for what needs it, and what to change; a run never trains for hours to fail at the end."""
    songs = manifest.groupby("split")["song_id"].nunique().to_dict() if len(manifest) else {}
    short = [f"{split} has {songs.get(split, 0)} song{'s' if songs.get(split, 0) != 1 else ''} "
             f"({_NEEDS[split]} at least {least})"
             for split, least in MIN_SONGS.items() if songs.get(split, 0) < least]
    if not short:
        return
    total = int(manifest["song_id"].nunique()) if len(manifest) else 0
    how = f" ({split_method})" if split_method else ""
    raise DataError(f"{total} songs split{how} leave too few: " + "; ".join(short)
                    + ": use more songs, or give those splits a larger share (e.g. --split_fractions 0.6,0.2,0.2, "
                    "or more rows in the split column / split lists)")


def apply_protocol_defaults(model_args: ModelArguments, protocol: Any, given: set[str]) -> None:
    """A protocol's window (MARBLE: 5 s) where the command line chose none and the backbone's window is
    set in seconds; a backbone whose window the model fixes in frames keeps its own (logged)."""
    if protocol is None or protocol.window_seconds is None or given & {"window_seconds", "max_length"}:
        return
    if get_backbone(model_args.model).window_unit == "seconds":
        model_args.window_seconds = protocol.window_seconds
    else:
        logger.info("--protocol %s scores %g s windows; --model %s sets its window in frames and keeps its own "
                    "(set --max_length to change it)", protocol.name, protocol.window_seconds, model_args.model)


def resume_checkpoint(value: str | None, output_dir: str) -> str | None:
    """--resume_from_checkpoint: a checkpoint folder, or `last` (also `true`) for the newest
    checkpoint-N in the run's folder; one line when there is none to resume from."""
    if value is None:
        return None
    if value.strip().lower() in ("last", "true"):
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None
        if last is None:
            raise ArgumentError(f"--resume_from_checkpoint {value}: {output_dir} has no checkpoint-N folder to resume "
                                "from; drop the flag to start over")
        return last
    if not os.path.isdir(value):
        raise ArgumentError(f"--resume_from_checkpoint {value}: no such checkpoint folder (pass a checkpoint-N folder "
                            "of the run, or `last`)")
    return value


def apply_probe_defaults(model_args: ModelArguments, training_args: Any, given: set[str]) -> None:
    """MARBLE's training settings for --probe, where the command line did not choose: learning
    rate 1e-3, batch 64, every window of every song each epoch."""
    for name, value in PROBE_TRAINING.items():
        if name not in given:
            setattr(training_args, name, value)
    if "train_windows" not in given:
        model_args.train_windows = "all"


def run_targets(config: Any) -> tuple[str, ...]:
    """The target columns a model with this config trains on (see features.datasets.TARGET_COLUMNS)."""
    targets = ["labels"]
    if config.target != TARGET_STATIC:
        targets.append("frame_labels")
    if config.uncertainty and config.disagreement_weight > 0:
        targets.append("label_spread")
    return tuple(targets)


def time_resolved_curves(run_dir: str) -> dict[str, Any]:
    """The 2 Hz curves of a run's manifest, for a dynamic target; one line when the data has none."""
    curves = read_curves(run_dir)
    if not curves:
        raise DataError("--target dynamic/both needs 2 Hz annotations, and the data has none: DEAM's or EmoMusic's "
                        "dynamic files, the demo corpus, or --dynamic_labels FILE.csv")
    return curves


def training_datasets(features: Dataset, extractor: SentioFeatureExtractor, model_args: ModelArguments,
                      input_name: str | None = None, targets: tuple[str, ...] = ("labels",)):
    """(train, validation, test) torch datasets over the cached windows; `input_name` picks another
    model input than the extractor's (probe mode: the cached layer embeddings, not augmented).
    With 2 Hz targets, training draws only windows that have at least one labelled frame (DEAM's
    annotations start 15 s into each song)."""
    name = input_name or extractor.feature_name
    # SpecAugment masks spectrograms only; a waveform model has its own time masking.
    augment = None
    if model_args.spec_augment and extractor.params.is_spectrogram and name == extractor.feature_name:
        augment = SpecAugment(time_axis=extractor.time_axis)
    if model_args.train_windows not in TRAIN_WINDOWS:
        raise ArgumentError(f"--train_windows must be random or all, got {model_args.train_windows!r}")
    train_source = features
    if "frame_labels" in targets:
        frames = np.asarray(features.with_format("numpy", columns=["frame_labels"])["frame_labels"])
        train_source = features.select(np.flatnonzero(np.isfinite(frames).all(axis=-1).any(axis=-1)))
    train = SongWindowDataset(train_source, name, "train", augment=augment,
                              every_window=model_args.train_windows == "all", targets=targets)
    splits = [train, WindowDataset(features, name, "validation", targets), WindowDataset(features, name, "test", targets)]
    for split, ds in zip(("train", "validation", "test"), splits):
        if len(ds) == 0:
            raise DataError(f"the {split} split is empty: check the split settings (see data_report.json)")
    return tuple(splits)
