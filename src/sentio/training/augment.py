"""On-the-fly augmentation of cached spectrogram features (after the one-time .map())."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
