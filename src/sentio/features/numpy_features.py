"""A run's features in NumPy alone, for models that need no torch (an exported ONNX student).

`params.kaldi_fbank` computes the fbank with torch and builds its mel filters with transformers'
`mel_filter_bank`, and `SentioFeatureExtractor` is a transformers class: importing them costs a
prediction with an ONNX model about 3 s of start-up, more than the forward pass of an hour of
audio. `kaldi_fbank_numpy` gives the same windows with numpy only (numpy's float32 FFT is closer to
ASTFeatureExtractor's float64 reference than torch's is; tests/features compare all three), and
`NumpyFeatureExtractor` reads a run's preprocessor_config.json into the same params, so
`predict.py` with an .onnx student loads neither torch nor transformers. The mel filters are
written out here because the only library that builds Kaldi's mel-space triangles (transformers'
`mel_filter_bank`) is the import this module exists to avoid; a test checks them against it.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from typing import Any

import numpy as np
import soxr

from sentio.features.audio import load_audio
from sentio.features.params import (
    _KALDI_MEL_FLOOR,
    FbankParams,
    FeatureParams,
    canonical_kind,
    fbank_framing,
    param_names,
    params_for,
)

_BAND_GROUP = 16  # mel bands per matmul: each group touches a narrow range of FFT bins


def _kaldi_mel(freq: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(freq, np.float64) / 700.0)


@lru_cache(maxsize=8)
def kaldi_mel_filters(num_mel_bins: int, sampling_rate: int, frame_length: int) -> np.ndarray:
    """[fft bins, mel] triangles in Kaldi's mel space from 20 Hz to Nyquist, no normalisation: the
    matrix `transformers.audio_utils.mel_filter_bank(..., norm=None, mel_scale="kaldi",
    triangularize_in_mel_space=True)` gives, as float32."""
    fft_length = 1 << (frame_length - 1).bit_length()
    bins = fft_length // 2 + 1
    edges = np.linspace(_kaldi_mel(20.0), _kaldi_mel(sampling_rate // 2), num_mel_bins + 2)
    fft_mels = _kaldi_mel(sampling_rate / ((bins - 1) * 2) * np.arange(bins))
    width = np.diff(edges)
    slopes = edges[None, :] - fft_mels[:, None]
    down = -slopes[:, :-2] / width[:-1]
    up = slopes[:, 2:] / width[1:]
    return np.maximum(0.0, np.minimum(down, up)).astype(np.float32)


@lru_cache(maxsize=8)
def _tables(num_mel_bins: int, sampling_rate: int, frame_length: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Mel filters, the symmetric Hann window (ASTFeatureExtractor's), and the mel bands in groups
    with the FFT-bin range each group touches (as params._kaldi_tables)."""
    mel = kaldi_mel_filters(num_mel_bins, sampling_rate, frame_length)
    window = np.hanning(frame_length).astype(np.float32)
    groups = []
    for first in range(0, num_mel_bins, _BAND_GROUP):
        rows = np.flatnonzero(mel[:, first : first + _BAND_GROUP].any(axis=1))
        if rows.size:
            groups.append((first, min(first + _BAND_GROUP, num_mel_bins), int(rows.min()), int(rows.max()) + 1))
    # contiguous blocks, so each matmul reads a compact matrix
    blocks = tuple((first, last, lo, hi, np.ascontiguousarray(mel[lo:hi, first:last])) for first, last, lo, hi in groups)
    return mel, window, blocks


class _Workspace(threading.local):
    """Per thread, the arrays one window's frames pass through, reused from window to window:
    fresh multi-megabyte arrays per call cost as much kernel time (page faults) as the FFT itself
    on a library of short clips, and one window's arrays stay in the CPU's cache."""

    def arrays(self, frames: int, fft_length: int, bins: int) -> tuple[np.ndarray, ...]:
        key = (frames, fft_length, bins)
        if getattr(self, "key", None) != key:
            self.key = key
            self.buf = np.zeros((frames, fft_length), np.float32)  # the tail past frame_length stays 0
            self.spec = np.empty((frames, fft_length // 2 + 1), np.complex64)
            self.power = np.empty((frames, fft_length // 2 + 1), np.float32)
            self.dc = np.empty((frames, 1), np.float32)
        return self.buf, self.spec, self.power, self.dc


_WORKSPACE = _Workspace()


def kaldi_fbank_numpy(wave: np.ndarray, params: FbankParams | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`params.kaldi_fbank` without torch: ([K, max_length, bins] un-normalised log-mel, zero-padded;
    lengths; starts in s)."""
    p = params or FbankParams()
    wave, starts, span, fft_length = fbank_framing(wave, p)
    _, window, blocks = _tables(p.num_mel_bins, p.sampling_rate, p.frame_length)
    out = np.empty((len(starts), p.max_length, p.num_mel_bins), dtype=np.float32)  # every value is set below
    lengths = np.array([min(p.max_length, 1 + (wave.size - s - p.frame_length) // p.frame_shift) for s in starts])
    if wave.size < span + starts[-1]:  # the last window runs past the clip: zeros, as params._segments
        wave = np.pad(wave, (0, span + starts[-1] - wave.size))
    all_frames = np.lib.stride_tricks.sliding_window_view(wave, p.frame_length)  # a view: no copy
    buf, spec, power, dc = _WORKSPACE.arrays(p.max_length, fft_length, p.num_mel_bins)
    pre = buf[:, : p.frame_length]
    alpha, rest = np.float32(0.97), np.float32(1 - 0.97)
    for k, start in enumerate(starts):
        frames = all_frames[start : start + span - p.frame_length + 1 : p.frame_shift]  # [max_length, L]
        # remove_dc_offset then pre-emphasis 0.97 (first sample scaled by 0.03), in the same float32
        # steps as params.kaldi_fbank: (x_i - m) - 0.97 (x_i-1 - m) = x_i - 0.97 x_i-1 - 0.03 m.
        np.mean(frames, axis=-1, keepdims=True, dtype=np.float32, out=dc)
        np.multiply(frames[:, :-1], alpha, out=pre[:, 1:])
        np.subtract(frames[:, 1:], pre[:, 1:], out=pre[:, 1:])
        dc *= rest
        pre[:, 1:] -= dc
        np.subtract(frames[:, :1] * rest, dc, out=pre[:, :1])
        pre *= window
        np.fft.rfft(buf, out=spec)  # float32 in, complex64 out (numpy >= 2)
        np.abs(spec, out=power)
        power *= power
        fbank = out[k]
        for first, last, lo, hi, mel in blocks:
            np.matmul(power[:, lo:hi], mel, out=fbank[:, first:last])
        np.maximum(fbank, _KALDI_MEL_FLOOR, out=fbank)
        np.log(fbank, out=fbank)
        fbank[lengths[k]:] = 0.0  # ASTFeatureExtractor pads with zeros BEFORE normalising
    return out, lengths.astype(np.int32), np.asarray(starts) / p.sampling_rate


def fbank_features_numpy(wave: np.ndarray, params: FbankParams) -> dict[str, np.ndarray]:
    """`params.fbank_features` without torch: `input_values` (normalised), `length`, `start` (s)."""
    values, lengths, starts = kaldi_fbank_numpy(wave, params)
    if params.do_normalize:
        values -= params.mean
        values /= 2 * params.std
    return {"input_values": values, "length": lengths, "start": starts.astype(np.float32)}


def mono_at_rate(audio: np.ndarray | list[float], sampling_rate: int | None, rate: int) -> np.ndarray:
    """A waveform as the extractors take it: stereo ([channels, samples] or [samples, channels])
    averaged to mono, resampled (soxr) from `sampling_rate` to `rate` (None: already at `rate`)."""
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim == 2:  # the short axis is the channels
        wave = wave.mean(axis=0 if wave.shape[0] <= wave.shape[1] else 1)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono or stereo waveform, got shape {wave.shape}")
    if sampling_rate is not None and sampling_rate != rate:
        wave = soxr.resample(wave, sampling_rate, rate, quality="HQ").astype(np.float32)
    return wave


class NumpyFeatureExtractor:
    """The windows `SentioFeatureExtractor` gives, from the same preprocessor_config.json, without
    torch or transformers: what an ONNX run predicts with. fbank windows come from
    `kaldi_fbank_numpy`; waveform windows are numpy already; mel_image windows still use torch."""

    def __init__(self, params: FeatureParams) -> None:
        self.params = params

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "NumpyFeatureExtractor":
        """From the dict of a preprocessor_config.json (ValueError for an unknown feature kind)."""
        kind = canonical_kind(config["feature_kind"])
        return cls(params_for(kind, **{name: config[name] for name in param_names(kind) if name in config}))

    @property
    def feature_kind(self) -> str:
        return self.params.kind

    @property
    def feature_name(self) -> str:
        return self.params.feature_name

    @property
    def time_axis(self) -> int:
        return self.params.time_axis

    @property
    def sampling_rate(self) -> int:
        return self.params.sampling_rate

    def features(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        """Windows of a mono waveform already at `sampling_rate`, as numpy arrays."""
        if isinstance(self.params, FbankParams):
            return fbank_features_numpy(wave, self.params)
        return self.params.compute(wave)

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Decode a file to mono float32 at this extractor's rate (AudioError on bad files)."""
        return load_audio(path, self.sampling_rate)

    def __call__(self, audio: np.ndarray | list[float] | str | os.PathLike, sampling_rate: int | None = None,
                 **kwargs: Any) -> dict[str, np.ndarray]:
        """All windows of one clip, as `SentioFeatureExtractor.__call__` (numpy arrays)."""
        if isinstance(audio, (str, os.PathLike)):
            return self.features(self.load(audio))
        return self.features(mono_at_rate(audio, sampling_rate, self.sampling_rate))
