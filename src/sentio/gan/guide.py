"""A trained regressor that steers the GAN: the consistency loss and the consistency filter.

Both judge a synthetic window by what a trained Sentio regressor reads in it, against the label
the window was generated for. The regressor must have seen no song the GAN may not see (in the
augmentation study: only the train songs of the current fraction), and it is a different run from
the one `--regressor` measures with, or the measurement would grade the GAN on its own teacher.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..features.extractor import SentioFeatureExtractor
from .data import SpecLayout


class FrozenRegressor(nn.Module):
    """GAN images [B, 1, h, w] -> the regressor's (valence, arousal) [B, 2], differentiably.

    The images go back to the full feature shape exactly as synthetic rows are written
    (`SpecLayout.to_features`), then through the regressor in eval mode. Its weights never change:
    they are excluded from autograd, so the loss's gradient flows through it to the generator only.
    """

    def __init__(self, model: nn.Module, layout: SpecLayout, extractor: SentioFeatureExtractor):
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.layout, self.feature_name, self.time_axis = layout, extractor.feature_name, extractor.time_axis

    def train(self, mode: bool = True) -> "FrozenRegressor":
        return super().train(False)  # dropout stays off: the loss must judge the window, not the noise

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.layout.to_features(images)
        mask = torch.ones(features.shape[0], features.shape[1 + self.time_axis], dtype=torch.long,
                          device=features.device)
        return self.model(**{self.feature_name: features, "attention_mask": mask}).predictions


@dataclass
class FilterReport:
    """What --filter_consistency kept: counts of labels asked for, windows generated and kept."""

    threshold: float
    tries: int
    labels_requested: int
    windows_generated: int
    windows_kept: int
    labels_dropped: int  # labels for which no try passed

    @property
    def pass_rate(self) -> float:
        return self.windows_kept / max(self.windows_generated, 1)

    def to_dict(self) -> dict:
        return {**asdict(self), "pass_rate": self.pass_rate}


def within(predictions: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Rows whose prediction is within `threshold` of the label in BOTH dimensions."""
    return (np.abs(np.asarray(predictions) - np.asarray(labels)) <= threshold).all(axis=1)


def consistent_windows(generate: Callable[[np.ndarray, int], np.ndarray], predict: Callable[[np.ndarray], np.ndarray],
                       labels: np.ndarray, threshold: float, tries: int,
                       chunk: int = 64) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], FilterReport]:
    """Blocks of (features, labels) that pass the filter, and a report filled as they are consumed.

    Each label gets up to `tries` windows (new noise on every call `generate(labels, call)`, where
    `call` counts the calls so each can seed its own noise); the first
    that passes is kept, and a label none passes is dropped. Retrying per label, rather than
    generating until enough windows pass, keeps the labels' distribution: labels that are hard to
    render (e.g. extreme valence) are not silently replaced by easy ones.
    """
    report = FilterReport(threshold, tries, len(labels), 0, 0, 0)

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        call = 0
        for start in range(0, len(labels), chunk):
            pending = np.asarray(labels[start : start + chunk], np.float32)
            for _ in range(tries):
                if not len(pending):
                    break
                features = generate(pending, call)
                call += 1
                ok = within(predict(features), pending, threshold)
                report.windows_generated += len(pending)
                report.windows_kept += int(ok.sum())
                if ok.any():
                    yield features[ok], pending[ok]
                pending = pending[~ok]
            report.labels_dropped += len(pending)

    return blocks(), report
