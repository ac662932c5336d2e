"""Listening and looking: features -> audio (Griffin-Lim), spectrogram grids, label-distribution plots.

Griffin-Lim only estimates phase, and the features keep only mel energies (fbank: Kaldi fbank with
pre-emphasis; mel_image: a resized dB image), so the audio is a rough rendering for listening checks,
not a reconstruction. Real windows rendered the same way are written beside for comparison.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ..features.extractor import SentioFeatureExtractor
from ..features.params import FbankParams, MelImageParams, kaldi_mel_matrix

GRIFFIN_LIM_ITERS = 32


def features_to_audio(features: np.ndarray, extractor: SentioFeatureExtractor) -> tuple[np.ndarray, int]:
    """One window of fbank or mel_image features -> (mono waveform in [-1, 1], sampling rate)."""
    import librosa

    p = extractor.params
    x = np.asarray(features, np.float64)
    if isinstance(p, FbankParams):
        log_mel = x * 2 * p.std + p.mean if p.do_normalize else x  # [time, mel]
        mel = kaldi_mel_matrix(p).T  # [mel, fft bins]: the exact matrix the features were made with
        fft = 1 << (p.frame_length - 1).bit_length()
        # Mel -> linear power by the pseudo-inverse, clipped at 0: librosa's NNLS gives a slightly
        # better estimate but takes ~15 s per window on a CPU; Griffin-Lim blurs the difference anyway.
        power = np.maximum(np.linalg.pinv(mel.astype(np.float64)) @ np.exp(log_mel.T), 0.0)
        wave = librosa.griffinlim(np.sqrt(power), n_iter=GRIFFIN_LIM_ITERS, hop_length=p.frame_shift,
                                  win_length=p.frame_length, n_fft=fft, random_state=0)
    elif isinstance(p, MelImageParams):
        import torch

        scaled = np.clip(x * p.image_std + p.image_mean, 0.0, 1.0)  # [freq, time] image in 0..1
        db = torch.nn.functional.interpolate(torch.from_numpy(scaled)[None, None], size=(p.n_mels, p.num_frames),
                                             mode="bilinear", align_corners=False)[0, 0].numpy()
        power = 10.0 ** ((db * p.top_db + p.ref_db - p.top_db) / 10.0)
        wave = librosa.feature.inverse.mel_to_audio(power, sr=p.sampling_rate, n_fft=p.n_fft, hop_length=p.hop_length,
                                                    n_iter=GRIFFIN_LIM_ITERS, random_state=0)
    else:
        raise ValueError(f"{p.kind} features are not spectrograms")
    peak = float(np.max(np.abs(wave))) or 1.0
    return (0.9 * wave / peak).astype(np.float32), p.sampling_rate


def write_audio_samples(folder: str | Path, features: np.ndarray, labels: np.ndarray, extractor: SentioFeatureExtractor,
                        prefix: str) -> list[Path]:
    """WAV files `<prefix>-<i>_v<valence>_a<arousal>.wav`, one per window."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (feat, (v, a)) in enumerate(zip(features, labels)):
        wave, sr = features_to_audio(feat, extractor)
        path = folder / f"{prefix}-{i + 1:02d}_v{v:+.2f}_a{a:+.2f}.wav"
        sf.write(path, wave, sr)
        paths.append(path)
    return paths


def _as_image(feature: np.ndarray, freq_axis: int) -> np.ndarray:
    return feature.T if freq_axis == 1 else feature  # always [freq, time] for display


def spectrogram_grid(path: str | Path, real: np.ndarray, real_labels: np.ndarray, synthetic: np.ndarray,
                     synthetic_labels: np.ndarray, freq_axis: int) -> Path:
    """PNG: one row per synthetic window, beside the real train window with the nearest label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(synthetic)
    fig, axes = plt.subplots(rows, 2, figsize=(7, 1.8 * rows), squeeze=False)
    lo, hi = np.percentile(real, [1, 99]) if len(real) else (-1, 1)
    for r in range(rows):
        nearest = int(np.argmin(((real_labels - synthetic_labels[r]) ** 2).sum(1)))
        for c, (feat, lab, what) in enumerate(((real[nearest], real_labels[nearest], "real"),
                                                (synthetic[r], synthetic_labels[r], "synthetic"))):
            ax = axes[r, c]
            ax.imshow(_as_image(feat, freq_axis), origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
            ax.set_title(f"{what}: v {lab[0]:+.2f}, a {lab[1]:+.2f}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def label_distributions(path: str | Path, real: np.ndarray, synthetic: np.ndarray) -> Path:
    """PNG: valence-arousal scatter and both marginals, real train songs vs synthetic labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    axes[0].scatter(real[:, 0], real[:, 1], s=8, alpha=0.6, label=f"real train songs ({len(real)})")
    axes[0].scatter(synthetic[:, 0], synthetic[:, 1], s=4, alpha=0.4, label=f"synthetic ({len(synthetic)})")
    axes[0].set_xlabel("valence")
    axes[0].set_ylabel("arousal")
    axes[0].legend(fontsize=7)
    bins = np.linspace(-1, 1, 21)
    for ax, d, name in ((axes[1], 0, "valence"), (axes[2], 1, "arousal")):
        ax.hist(real[:, d], bins=bins, density=True, alpha=0.5, label="real")
        ax.hist(synthetic[:, d], bins=bins, density=True, alpha=0.5, label="synthetic")
        ax.set_xlabel(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
