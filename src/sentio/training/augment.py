"""On-the-fly augmentation of cached spectrogram features (after the one-time .map())."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..features.datasets import TARGET_COLUMNS


@dataclass
class SpecAugment:
    """SpecAugment-style masking (Park et al. 2019): zero out random time and frequency bands.

    Works on one window's features, normalised so that 0 is about the mean: AST [time, freq]
    (time_axis=0) and the ViT image [freq, time] (time_axis=1). Time masks fall inside the real
    (unpadded) part. Random draws use torch's global generator, which the Trainer seeds.
    """

    time_axis: int = 0
    num_time_masks: int = 2
    max_time_fraction: float = 0.1
    num_freq_masks: int = 2
    max_freq_fraction: float = 0.1

    def __call__(self, features: np.ndarray, length: int) -> np.ndarray:
        out = np.array(features, copy=True)
        time_len = min(int(length), out.shape[self.time_axis]) or out.shape[self.time_axis]
        freq_axis = 1 - self.time_axis
        for axis, span, count, fraction in (
            (self.time_axis, time_len, self.num_time_masks, self.max_time_fraction),
            (freq_axis, out.shape[freq_axis], self.num_freq_masks, self.max_freq_fraction),
        ):
            widest = int(span * fraction)
            for _ in range(count if widest > 0 else 0):
                width = int(torch.randint(widest + 1, (1,)))
                start = int(torch.randint(max(span - width, 0) + 1, (1,)))
                index = [slice(None)] * out.ndim
                index[axis] = slice(start, start + width)
                out[tuple(index)] = 0.0
        return out


class Mixup(torch.utils.data.Dataset):
    """mixup (Zhang et al. 2018) of training windows: each item is blended with another random item.

    features = lam * x_i + (1 - lam) * x_j and the same for the labels (valence/arousal are
    continuous, so a blended label is the natural target), lam ~ Beta(alpha, alpha) folded to
    >= 0.5 so the drawn item stays the dominant one. The blend covers the longer of the two real
    lengths. A dataset wrapper, not a collator, because the Trainer uses one collator for training
    and evaluation and evaluation must never be mixed. Draws use torch's global generator (seeded
    by the Trainer).
    """

    def __init__(self, dataset: torch.utils.data.Dataset, feature_name: str, alpha: float = 0.2, p: float = 1.0):
        if alpha <= 0 or not 0 <= p <= 1:
            raise ValueError(f"mixup needs alpha > 0 and p in [0, 1], got alpha={alpha}, p={p}")
        self.dataset, self.feature_name, self.alpha, self.p = dataset, feature_name, alpha, p
        self.song_ids = getattr(dataset, "song_ids", None)
        self._beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        if self.p < 1 and float(torch.rand(())) >= self.p:
            return item
        other = self.dataset[int(torch.randint(len(self.dataset), (1,)))]
        lam = float(self._beta.sample())
        lam = max(lam, 1.0 - lam)
        name = self.feature_name
        item[name] = (lam * np.asarray(item[name], np.float32) + (1 - lam) * np.asarray(other[name], np.float32))
        for target in TARGET_COLUMNS:  # labels, and the spread and 2 Hz labels where a run uses them
            if target in item and target in other:
                item[target] = lam * np.asarray(item[target], np.float32) + (1 - lam) * np.asarray(other[target], np.float32)
        item["length"] = max(int(item["length"]), int(other["length"]))
        return item
