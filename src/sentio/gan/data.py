"""Backbone features <-> GAN images, and the train-split spectrograms the GAN learns from.

The GAN never sees audio: it learns from the exact cached features the regressor trains on
(`build_feature_dataset` with the run's own extractor), so synthetic rows drop into the training
set without any conversion. Internally it works on [1, freq, time] images at a reduced resolution
(default 64 x 64, area-averaged) to keep training cheap on small data; generated images are
resized back to the backbone's full feature shape with bilinear interpolation. Fine detail below
the GAN's resolution (e.g. single 10 ms frames of a 256-frame AST window) is therefore smooth in
synthetic rows: the quality report measures what that costs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from datasets import Dataset
from torch.nn import functional as F

from ..features.extractor import SentioFeatureExtractor
from ..errors import ArgumentError, DataError

_CHUNK = 256  # windows read from the memory-mapped cache at a time


@dataclass
class SpecLayout:
    """Where frequency and time are in a model's feature array, and the GAN's scale.

    fbank: input_values [time, freq]; mel_image: pixel_values [freq (row 0 lowest), time].
    mean/std: one scalar standardisation over the train images (set by `fit`).
    """

    feature_name: str
    feature_shape: tuple[int, int]
    freq_axis: int
    height: int
    width: int
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def for_extractor(cls, extractor: SentioFeatureExtractor, height: int, width: int) -> "SpecLayout":
        params = extractor.params
        if not params.is_spectrogram:
            raise ArgumentError(f"{params.kind} features are not spectrograms: the GAN imitates spectrogram "
                                "features (train it with a spectrogram backbone)")
        return cls(extractor.feature_name, tuple(params.feature_shape), params.freq_axis, height, width)  # type: ignore[arg-type]

    @property
    def full_time(self) -> int:
        """Time steps of a full (unpadded) window: what `length` counts."""
        return self.feature_shape[1 - self.freq_axis]

    def to_dict(self) -> dict:
        return asdict(self)

    def to_gan(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        """[N, *feature_shape] -> standardised [N, 1, height, width] (area average)."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if self.freq_axis == 1:
            x = x.transpose(1, 2)  # AST [time, freq] -> [freq, time]
        x = F.adaptive_avg_pool2d(x[:, None], (self.height, self.width))
        return (x - self.mean) / self.std

    def to_features(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised [N, 1, height, width] -> [N, *feature_shape] in the backbone's scale, on the
        images' device and differentiable (the consistency loss runs a regressor on it)."""
        freq, time = self.feature_shape[self.freq_axis], self.full_time
        x = F.interpolate(images.float() * self.std + self.mean, size=(freq, time), mode="bilinear",
                          align_corners=False)[:, 0]
        return x.transpose(1, 2) if self.freq_axis == 1 else x

    def from_gan(self, images: torch.Tensor) -> np.ndarray:
        """Standardised [N, 1, height, width] -> [N, *feature_shape] float32 numpy arrays."""
        return np.ascontiguousarray(self.to_features(images.detach().cpu()).numpy(), dtype=np.float32)

    def fit(self, images: torch.Tensor) -> torch.Tensor:
        """Set mean/std from un-standardised images and return them standardised."""
        self.mean, self.std = float(images.mean()), float(images.std()) or 1.0
        return (images - self.mean) / self.std


def keep_train_songs(features: Dataset, songs: list[str]) -> Dataset:
    """`features` without the train windows of songs outside `songs` (validation and test rows stay:
    the GAN never trains on them). Every listed song must be a train song of the data."""
    meta = features.select_columns(["split", "song_id"]).with_format("arrow")[:]
    split, ids = meta["split"].to_pylist(), [str(s) for s in meta["song_id"].to_pylist()]
    wanted = {str(s) for s in songs}
    missing = sorted(wanted - {s for s, sp in zip(ids, split) if sp == "train"})
    if missing:
        raise DataError(f"--train_songs: {missing[0]!r} is not a train song of this data ({len(missing)} listed "
                        "song(s) are not); list song ids of the train split")
    return features.select([i for i, (s, sp) in enumerate(zip(ids, split)) if sp != "train" or s in wanted])


def train_images(features: Dataset, layout: SpecLayout) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """GAN images [N, 1, H, W] (un-standardised), labels [N, 2] and song ids of the FULL train windows.

    Only split == "train": validation and test songs never reach the GAN. Only full windows: a
    padded window's zero tail is not music, and a generator that learned it would write silence
    into synthetic rows whose `length` says the window is full.
    """
    meta = features.select_columns(["split", "length", "song_id"]).with_format("arrow")[:]
    split, length = meta["split"].to_pylist(), meta["length"].to_numpy()
    rows = [i for i, (s, n) in enumerate(zip(split, length)) if s == "train" and n >= layout.full_time]
    if not rows:
        raise DataError("no full-length window in the train split: clips are shorter than one window")
    part = features.select(rows)
    song_ids = [str(s) for s in part["song_id"]]
    labels = np.asarray(part.with_format("numpy", columns=["labels"])["labels"], dtype=np.float32)
    view = part.with_format("numpy", columns=[layout.feature_name])
    images = torch.cat([layout.to_gan(view[i : i + _CHUNK][layout.feature_name]) for i in range(0, len(part), _CHUNK)])
    return images, labels, song_ids


def real_features(features: Dataset, layout: SpecLayout, split: str, full_only: bool = True,
                  limit: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Feature arrays [N, *shape], labels and song ids of one split (quality metrics, plots)."""
    meta = features.select_columns(["split", "length"]).with_format("arrow")[:]
    rows = [i for i, (s, n) in enumerate(zip(meta["split"].to_pylist(), meta["length"].to_numpy()))
            if s == split and (not full_only or n >= layout.full_time)]
    if limit is not None and len(rows) > limit:
        rows = sorted(np.random.default_rng(seed).choice(rows, limit, replace=False).tolist())
    part = features.select(rows).with_format("numpy", columns=[layout.feature_name, "labels"])
    arrays = np.concatenate([part[i : i + _CHUNK][layout.feature_name] for i in range(0, len(part), _CHUNK)]) \
        if len(part) else np.zeros((0, *layout.feature_shape), np.float32)
    labels = np.asarray(part["labels"], np.float32) if len(part) else np.zeros((0, 2), np.float32)
    return arrays.astype(np.float32), labels, [str(s) for s in features.select(rows)["song_id"]]
