"""Torch views of the cached window dataset, and the collator that batches them.

Features are read memory-mapped from the cache; nothing here copies the dataset. Training sees
one item per song and draws one of its windows at random on every access (a new window each
epoch); evaluation and prediction see every window, averaged per song afterwards.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

if TYPE_CHECKING:  # only a type here: importing datasets costs predict.py's start-up a third of a second
    from datasets import Dataset


def _rows_of_split(ds: Dataset, split: str | None) -> list[int]:
    if split is None:
        return list(range(len(ds)))
    splits = ds.select_columns("split").with_format("arrow")[:]["split"].to_pylist()
    return [i for i, s in enumerate(splits) if s == split]


# What a window can carry besides its features: the song's labels, the raters' spread of them, and
# the 2 Hz labels of the window's half-seconds. The model takes each under the same name.
TARGET_COLUMNS = ("labels", "label_spread", "frame_labels")


class WindowDataset(torch.utils.data.Dataset):
    """Every window of one split (or all rows): evaluation and prediction.

    Items hold the model input, `length` and the `targets` columns the dataset has (default: the
    labels only). `song_ids` and `starts` (seconds) say where each window comes from.
    """

    def __init__(self, ds: Dataset, feature_name: str, split: str | None = None,
                 targets: Sequence[str] = ("labels",)):
        rows = _rows_of_split(ds, split)
        self.feature_name = feature_name
        self.ds = ds.select(rows) if split is not None else ds
        self.song_ids: list[str] = [str(s) for s in self.ds["song_id"]]
        self.starts = np.asarray(self.ds.data.column("start").to_numpy(), np.float64) \
            if "start" in ds.column_names else np.zeros(len(self.song_ids))
        columns = [feature_name, "length"] + [c for c in targets if c in ds.column_names]
        self.view = self.ds.with_format("numpy", columns=columns)

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return dict(self.view[int(index)])

    def labels(self) -> np.ndarray:
        return np.asarray(self.ds.with_format("numpy", columns=["labels"])["labels"], dtype=np.float32)


class SongWindowDataset(WindowDataset):
    """One item per song; each access returns one of its windows at random (training).

    The draw uses torch's global generator, which the Trainer seeds, so runs are reproducible.
    With `every_window=True` each window is an item of its own instead (more steps per epoch).
    `augment`, if given, transforms the feature array of the drawn window (e.g. SpecAugment).
    """

    def __init__(self, ds: Dataset, feature_name: str, split: str | None = "train",
                 augment: Callable[[np.ndarray, int], np.ndarray] | None = None, every_window: bool = False,
                 targets: Sequence[str] = ("labels",)):
        super().__init__(ds, feature_name, split, targets)
        if every_window:
            self.windows = [[i] for i in range(len(self.song_ids))]
        else:
            by_song: dict[str, list[int]] = defaultdict(list)
            for i, song in enumerate(self.song_ids):
                by_song[song].append(i)
            self.windows = list(by_song.values())
        self.augment = augment

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        windows = self.windows[int(index)]
        pick = windows[int(torch.randint(len(windows), (1,)))] if len(windows) > 1 else windows[0]
        item = super().__getitem__(pick)
        if self.augment is not None:
            item[self.feature_name] = self.augment(item[self.feature_name], int(item["length"]))
        return item


class EmotionCollator:
    """Stacks windows into a batch and turns `length` into an `attention_mask` over the time axis
    (`time_axis` of one window's array, as the feature params say)."""

    def __init__(self, feature_name: str, time_axis: int = 0):
        self.feature_name, self.time_axis = feature_name, time_axis

    @classmethod
    def for_extractor(cls, extractor: Any) -> "EmotionCollator":
        """The collator of a SentioFeatureExtractor's windows."""
        return cls(extractor.feature_name, extractor.time_axis)

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        features = torch.from_numpy(np.stack([np.asarray(it[self.feature_name], dtype=np.float32) for it in items]))
        time_steps = features.shape[1 + self.time_axis]
        lengths = torch.tensor([int(it["length"]) for it in items])
        batch = {
            self.feature_name: features,
            "attention_mask": (torch.arange(time_steps)[None, :] < lengths[:, None]).long(),
        }
        batch.update(stack_targets(items))
        return batch


def stack_targets(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The target columns the items carry, stacked. An item without one (e.g. a GAN window: no
    raters, no curve) gets NaN there, which the loss skips."""
    out = {}
    for name in TARGET_COLUMNS:
        present = [np.asarray(it[name], np.float32) for it in items if name in it]
        if not present:
            continue
        blank = np.full_like(present[0], np.nan)
        out[name] = torch.from_numpy(np.stack([np.asarray(it[name], np.float32) if name in it else blank
                                               for it in items]))
    return out
