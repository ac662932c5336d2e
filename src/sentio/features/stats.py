"""Dataset statistics of features: the mean and std of the Kaldi fbank over a corpus's train clips
(`--dataset_stats`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from .audio import AudioError, load_audio
from .cache import one_torch_thread
from .params import FbankParams, kaldi_fbank


def compute_fbank_stats(manifest: pd.DataFrame, params: FbankParams | None = None,
                        max_clips: int | None = 200) -> tuple[float, float]:
    """Mean and std of the un-normalised Kaldi fbank over the real frames of (up to `max_clips`) clips.

    Pass train rows only; streaming float64 sums keep memory flat. Clips that fail to decode are
    skipped. Put the result in the params (`mean`, `std`) before building the feature dataset.
    """
    p = params or FbankParams()
    total = total_sq = 0.0
    count = 0
    paths = manifest["path"].astype(str).tolist()
    for path in paths[:max_clips] if max_clips else paths:
        try:
            with one_torch_thread():
                fbank, lengths, _ = kaldi_fbank(load_audio(path, p.sampling_rate), p)
        except (AudioError, ValueError):
            continue
        for window, n in zip(fbank, lengths):
            real = window[:n].astype(np.float64)
            total += real.sum()
            total_sq += np.square(real).sum()
            count += real.size
    if count == 0:
        raise DataError("no decodable clip to compute fbank statistics from")
    mean = total / count
    return float(mean), float(np.sqrt(max(total_sq / count - mean * mean, 0.0)))
