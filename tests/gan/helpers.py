"""Tiny GAN pieces shared by the GAN tests: 16 x 16 images, 8 channels, a forward pass in milliseconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sentio.gan.models import GanConfig
from sentio.gan.train import TrainConfig
from tests.conftest import write_audio

TINY_GAN = GanConfig(height=16, width=16, z_dim=16, channels=8, embed_dim=8)


def tiny_train_config(**overrides) -> TrainConfig:
    return TrainConfig(**{"batch_size": 8, "lr_g": 1e-3, "lr_d": 1e-3, **overrides})


def tiny_spectrograms(n: int, seed: int = 0, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """[n, 1, 16, 16] images whose brightness and tilt follow the labels, and those labels [n, 2]."""
    rng = np.random.default_rng(seed)
    labels = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    freq = np.linspace(-1, 1, 16)[None, :, None]
    images = labels[:, 0, None, None] * freq + labels[:, 1, None, None] + 0.1 * rng.standard_normal((n, 16, 16))
    return torch.from_numpy((images + shift).astype(np.float32))[:, None], torch.from_numpy(labels)


def labelled_clips(root: Path, seconds: float) -> Path:
    """12 clips of `seconds` at 16 kHz with labels spread over the plane: 8 train, 2 validation, 2
    test, in a labels.csv with paths relative to it."""
    rows = []
    for i in range(12):
        path = write_audio(root / "audio" / f"song{i:02d}.wav", seconds=seconds, sr=16000, seed=i)
        split = "train" if i < 8 else ("validation" if i < 10 else "test")
        rows.append({"path": f"audio/{path.name}", "valence": round(-0.9 + 0.15 * i, 3),
                     "arousal": round(0.8 - 0.12 * i, 3), "split": split})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"
