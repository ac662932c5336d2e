"""Shared fixtures: audio files written by the tests themselves, and the optional real reference data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Keep tests quiet and independent of the machine's thread count. The suite runs in as many
# workers as there are cores (pytest -n): one torch/BLAS thread per worker, and per script it starts
# (the variables are inherited), instead of every process spreading over every core.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")


def write_audio(path: str | Path, seconds: float = 2.0, sr: int = 22050, channels: int = 1, seed: int = 0,
                fmt: str | None = None) -> Path:
    """A short chord with a little noise, in any format soundfile writes (WAV/FLAC/OGG/MP3)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    base = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    wave = sum(np.sin(2 * np.pi * base * r * t) for r in (1.0, 1.25, 1.5)) / 3
    wave = 0.3 * wave * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(t.size)
    data = np.stack([wave * (1 - 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)
    fmt = fmt or path.suffix.lstrip(".").upper()
    sf.write(path, data, sr, format=fmt)
    return path


@pytest.fixture
def shared_data() -> Path:
    """The real reference files beside the repo; skip where they are absent (a user's fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A 16-clip demo corpus (seed 5), generated once per test session."""
    from sentio.demo.corpus import ensure_demo

    return ensure_demo(tmp_path_factory.mktemp("corpus") / "demo", num_clips=16, seed=5)
