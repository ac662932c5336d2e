"""Glue between arguments, registry, features and datasets, so train.py reads top to bottom."""

from __future__ import annotations

import logging
from typing import Any

from datasets import Dataset

from ..args import DataArguments, ModelArguments
from ..data.collate import SongWindowDataset, WindowDataset
from ..data.feature_extractor import SentioFeatureExtractor
from ..models.registry import BackboneSpec
from .augment import SpecAugment

logger = logging.getLogger(__name__)


def model_init_plan(spec: BackboneSpec, model_args: ModelArguments, data_args: DataArguments) -> dict[str, Any]:
    """Where the weights come from and which config overrides apply.

    `--demo` without `--checkpoint` means the compact config from scratch: it trains in minutes on
    a CPU and needs no download. Anything else uses the pretrained checkpoint unless --from_scratch.
    """
    compact = data_args.demo and model_args.checkpoint is None
    overrides = dict(spec.demo_config) if compact else {}
    if model_args.max_length is not None:
        overrides["max_length"] = model_args.max_length
    # Only what the user set: a previous run or the backbone's defaults decide the rest.
    head = {k: getattr(model_args, k) for k in ("loss", "final_dropout", "head_hidden_size", "pooling")
            if getattr(model_args, k) is not None}
    return {
        "checkpoint": model_args.checkpoint,
        "from_scratch": model_args.from_scratch or compact,
        "config_overrides": overrides,
        "head_kwargs": head,
        "compact": compact,
    }


def _feature_params_from_config(kind: str, config: Any) -> dict[str, Any]:
    """Feature settings fixed by the architecture (AST position embeddings, ViT image size)."""
    if kind == "ast":
        return {"max_length": config.max_length, "num_mel_bins": config.num_mel_bins}
    if kind == "vit":
        size = config.image_size
        return {"image_size": size if isinstance(size, int) else size[0]}
    return {}


def feature_extractor_for(spec: BackboneSpec, config: Any, model_args: ModelArguments, compact: bool) -> SentioFeatureExtractor:
    """Feature params that fit the model: AST frames and mel bins, ViT image size, come from its config."""
    params: dict[str, Any] = dict(spec.demo_feature_overrides) if compact else {}
    params.update(_feature_params_from_config(spec.feature_kind, config))
    if model_args.window_seconds is not None:
        if spec.feature_kind == "ast":
            raise ValueError("AST windows are set in frames: use --max_length (1024 frames = 10.24 s), not --window_seconds")
        params["window_seconds"] = model_args.window_seconds
    return SentioFeatureExtractor(feature_kind=spec.feature_kind, **params)


def training_datasets(features: Dataset, extractor: SentioFeatureExtractor, model_args: ModelArguments):
    """(train, validation, test) torch datasets over the cached windows."""
    name = extractor.feature_name
    augment = None
    if model_args.spec_augment and name in ("input_values", "pixel_values") and extractor.feature_kind != "wav2vec2":
        # AST windows are [time, freq]; the ViT image is [freq, time]
        augment = SpecAugment(time_axis=0 if extractor.feature_kind == "ast" else 1)
    if model_args.train_windows not in ("random", "all"):
        raise ValueError(f"--train_windows must be random or all, got {model_args.train_windows!r}")
    train = SongWindowDataset(features, name, "train", augment=augment, every_window=model_args.train_windows == "all")
    splits = [train, WindowDataset(features, name, "validation"), WindowDataset(features, name, "test")]
    for split, ds in zip(("train", "validation", "test"), splits):
        if len(ds) == 0:
            raise ValueError(f"the {split} split is empty: check the split settings (see data_report.json)")
    return tuple(splits)
