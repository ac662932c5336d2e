"""The synthetic split: written by train_gan.py, read by train.py --synthetic (training only).

On disk (inside train_gan.py's output folder):

    synthetic/                 a `datasets` dataset (save_to_disk) with exactly the real feature
                               schema of the backbone (song_id, clip, window, start, length,
                               input_values|pixel_values, labels, split) plus `source`; every row
                               has split="train", source="synthetic", song_id "syn-000001", ...
    synthetic/preprocessor_config.json   the feature extractor whose features these imitate
    synthetic_manifest.csv     song_id, valence, arousal, split, source
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import torch
from datasets import (
    Dataset,
    Features,
    List,
    Value,
    concatenate_datasets,
    load_from_disk,
)

from ..features.datasets import SongWindowDataset
from ..features.cache import feature_schema
from ..features.extractor import SentioFeatureExtractor
from ..errors import ArgumentError, DataError, MissingFileError
from .data import SpecLayout
from .guide import FilterReport, consistent_windows

logger = logging.getLogger(__name__)
SUBDIR = "synthetic"
MANIFEST = "synthetic_manifest.csv"
# Params that change the windowing of real audio but not the values of one window's features.
_WINDOWING_ONLY = {"hop_seconds", "min_last"}


def sample_labels(song_labels: np.ndarray, n: int, seed: int = 0, jitter: float = 0.05) -> np.ndarray:
    """`n` labels from the train label distribution: a smoothed bootstrap of the SONG labels.

    Songs, not windows, so a long song does not weigh more; a little Gaussian jitter (a kernel
    density estimate) so the generator is also asked for labels between the train points.
    """
    rng = np.random.default_rng(seed)
    song_labels = np.asarray(song_labels, np.float32).reshape(-1, 2)
    if len(song_labels) == 0:
        raise DataError("no train labels to draw synthetic labels from")
    picks = song_labels[rng.integers(0, len(song_labels), n)]
    return np.clip(picks + rng.normal(0.0, jitter, picks.shape), -1.0, 1.0).astype(np.float32)


def synthetic_schema(extractor: SentioFeatureExtractor) -> Features:
    """The real features' schema (features.cache.feature_schema + labels + split) plus `source`."""
    features = feature_schema(extractor)
    del features["error"]
    features["labels"] = List(Value("float32"), length=2)
    features["split"] = Value("string")
    features["source"] = Value("string")
    return features


def generate_features(generator: torch.nn.Module, layout: SpecLayout, labels: np.ndarray, seed: int = 0,
                      batch_size: int = 64) -> Iterator[np.ndarray]:
    """Full-size feature arrays [b, *feature_shape] for `labels`, batch by batch (reproducible)."""
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    generator.eval()
    with torch.no_grad():
        for i in range(0, len(labels), batch_size):
            y = torch.from_numpy(np.asarray(labels[i : i + batch_size], np.float32))
            z = torch.randn(len(y), generator.config.z_dim, generator=rng)
            yield layout.from_gan(generator(z.to(device), y.to(device)))


def generated_blocks(generator: torch.nn.Module, layout: SpecLayout, labels: np.ndarray,
                     seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(features, labels) blocks: one window per label, unfiltered."""
    start = 0
    for block in generate_features(generator, layout, labels, seed):
        yield block, np.asarray(labels[start : start + len(block)], np.float32)
        start += len(block)


def filtered_blocks(generator: torch.nn.Module, layout: SpecLayout, labels: np.ndarray,
                    predict: Callable[[np.ndarray], np.ndarray], threshold: float, tries: int,
                    seed: int = 0) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], FilterReport]:
    """(features, labels) blocks of windows whose `predict`ed labels are within `threshold` of
    their conditioning labels in both dimensions (see guide.consistent_windows), and its report."""
    def generate(y: np.ndarray, call: int) -> np.ndarray:
        # Every call its own noise, reproducible from `seed`; distinct from the unfiltered draws.
        return np.concatenate(list(generate_features(generator, layout, y, seed=seed * 1_000_003 + call + 1)))

    return consistent_windows(generate, predict, labels, threshold, tries)


def write_synthetic(output_dir: str | Path, blocks: Iterable[tuple[np.ndarray, np.ndarray]], layout: SpecLayout,
                    extractor: SentioFeatureExtractor) -> Dataset:
    """Save (features, labels) blocks as the split and its manifest; returns the saved dataset."""
    out = Path(output_dir)
    schema = synthetic_schema(extractor)
    parts, start = [], 0
    for block, labels in blocks:
        n = len(block)
        ids = [f"syn-{start + i + 1:06d}" for i in range(n)]
        parts.append(Dataset.from_dict({
            "song_id": ids, "clip": list(range(start, start + n)), "window": [0] * n, "start": [0.0] * n,
            "length": [layout.full_time] * n,  # every synthetic window is a full one
            layout.feature_name: block, "labels": np.asarray(labels, np.float32).tolist(),
            "split": ["train"] * n, "source": ["synthetic"] * n,
        }, features=schema))
        start += n
    if not parts:
        raise DataError("no synthetic window to write: none was generated, or none passed --filter_consistency "
                        "(raise its threshold or --filter_tries)")
    dataset = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    dataset.save_to_disk(str(out / SUBDIR))
    extractor.save_pretrained(str(out / SUBDIR))
    labels = np.asarray(dataset.with_format("numpy", columns=["labels"])["labels"], np.float32)
    pd.DataFrame({"song_id": dataset["song_id"], "valence": labels[:, 0], "arousal": labels[:, 1],
                  "split": "train", "source": "synthetic"}).to_csv(out / MANIFEST, index=False)
    return load_from_disk(str(out / SUBDIR))


def load_synthetic(path: str | Path, extractor: SentioFeatureExtractor) -> Dataset:
    """The synthetic split at `path` (train_gan.py's output folder or its synthetic/ subfolder),
    checked against the run's extractor: same model input, shape and feature params, train only."""
    path = Path(path)
    folder = path / SUBDIR if (path / SUBDIR).is_dir() else path
    if not (folder / "dataset_info.json").is_file() or not (folder / "preprocessor_config.json").is_file():
        raise MissingFileError(f"{path}: no synthetic split here; pass the --output_dir of train_gan.py")
    dataset = load_from_disk(str(folder))
    saved = SentioFeatureExtractor.from_pretrained(str(folder))
    name, shape = extractor.feature_name, tuple(extractor.params.feature_shape)
    if saved.feature_kind != extractor.feature_kind or name not in dataset.column_names:
        raise DataError(f"{folder}: synthetic {saved.feature_kind} features ({saved.feature_name}) do not fit this "
                         f"{extractor.feature_kind} run ({name}); train the GAN with the same --model")
    theirs = tuple(dataset.features[name].shape)
    if theirs != shape:
        raise DataError(f"{folder}: synthetic {name} have shape {list(theirs)}, this run's extractor makes {list(shape)}; "
                         "train the GAN with the same --model/--demo/--max_length")
    mine, other = extractor.params.to_dict(), saved.params.to_dict()
    differ = sorted(k for k in mine if k not in _WINDOWING_ONLY and mine[k] != other.get(k))
    if differ:
        k = differ[0]
        raise DataError(f"{folder}: synthetic features were made with {k}={other.get(k)!r}, this run uses {mine[k]!r}")
    meta = dataset.select_columns(["split", "source"]).with_format("arrow")[:]
    bad = [i for i, (s, src) in enumerate(zip(meta["split"].to_pylist(), meta["source"].to_pylist()))
           if s != "train" or src != "synthetic"]
    if bad:
        raise DataError(f"{folder}: row {bad[0]} is not a synthetic train row; synthetic data may only join training")
    return dataset


class MixedTrainDataset(torch.utils.data.ConcatDataset):
    """Real training items followed by synthetic ones (one window each); `song_ids` of both."""

    def __init__(self, real: SongWindowDataset, synthetic: SongWindowDataset):
        super().__init__([real, synthetic])
        self.song_ids = list(real.song_ids) + list(synthetic.song_ids)
        self.num_real, self.num_synthetic = len(real), len(synthetic)


def with_synthetic(train: SongWindowDataset, path: str | Path, ratio: float | None,
                   extractor: SentioFeatureExtractor, seed: int = 0) -> tuple[MixedTrainDataset, dict[str, Any]]:
    """The training dataset plus synthetic rows: `ratio` rows per real train song (None: all rows).

    Only ever called on the TRAIN dataset: validation and test are built from real features alone.
    The rows are a seeded random subset, and get the same on-the-fly augmentation as real rows.
    """
    dataset = load_synthetic(path, extractor)
    songs = len(set(train.song_ids))
    if ratio is not None and ratio < 0:
        raise ArgumentError(f"--synthetic_ratio must be >= 0, got {ratio}")
    count = len(dataset) if ratio is None else int(round(ratio * songs))
    if count > len(dataset):
        raise ArgumentError(f"--synthetic_ratio {ratio} asks for {count} synthetic rows ({songs} real train songs) "
                         f"but {path} has {len(dataset)}; generate more with train_gan.py --num_synthetic")
    rows = sorted(np.random.default_rng(seed).choice(len(dataset), count, replace=False).tolist())
    synthetic = SongWindowDataset(dataset.select(rows), extractor.feature_name, "train", augment=train.augment,
                                  every_window=True)
    info = {"synthetic_dir": str(path), "synthetic_ratio": ratio if ratio is not None else count / max(songs, 1),
            "synthetic_rows": count, "real_train_songs": songs}
    logger.info("training on %d real songs + %d synthetic windows from %s", songs, count, path)
    return MixedTrainDataset(train, synthetic), info
