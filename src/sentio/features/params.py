"""Model inputs: a mono clip -> fixed-size windows plus their real lengths, per feature kind.

Every model sees a clip as one or more fixed-size windows (a long song gives several, a short
clip one padded window). Each window comes with `length` (its real, unpadded extent in the units
of the model input) and `start` (seconds) so models can mask padding and average per song.
The kinds are named by what they are; each backbone (sentio.models) says which kind it reads.

- fbank:     Kaldi-style log-mel fbank, identical to transformers' ASTFeatureExtractor (NumPy
             path) but computed for all windows at once with torch (rfft + mel matmul).
- waveform:  raw windows at the model's rate, zero-mean unit-variance over the real samples (or
             not, per `do_normalize`), zero-padded.
- mel_image: librosa-style log-mel (power -> dB on a FIXED reference, so loudness stays a cue),
             resized to one square channel and scaled like ViT's image processor.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sentio.features.audio import window_starts

if TYPE_CHECKING:
    import torch

# Bump whenever a change here alters feature values: it is part of every feature-cache key.
FEATURE_VERSION = "1"

AUDIOSET_MEAN = -4.2677393
AUDIOSET_STD = 4.5689974
_KALDI_MEL_FLOOR = 1.192092955078125e-07  # float32 eps, as in ASTFeatureExtractor
_WINDOWS_PER_CHUNK = 8  # bounds the transient memory of a very long song


@dataclass
class FeatureParams:
    """Windowing shared by every kind; each kind adds its own parameters and computation.

    Class-level facts the rest of Sentio asks instead of comparing kind names:
    kind (the name saved in preprocessor_config.json), feature_name (the model input),
    time_axis (the axis of one window's array that `length` counts), and, for spectrograms,
    freq_axis (None for a waveform: no SpecAugment, nothing for the GAN to imitate).
    """

    kind: ClassVar[str] = ""
    feature_name: ClassVar[str] = "input_values"
    time_axis: ClassVar[int] = 0
    freq_axis: ClassVar[int | None] = None
    sampling_rate: int = 16000
    hop_seconds: float | None = None  # None: hop = window length (no overlap)
    min_last: float = 0.5  # an end-aligned last window when the tail exceeds this part of a window
    # Windows start on this grid (seconds) when set: time-resolved labels (2 Hz) then fall on the
    # same frames of every window. The hop is rounded down to the grid, the end-aligned last
    # window moves back onto it.
    start_grid_seconds: float | None = None

    @property
    def window_samples(self) -> int:
        raise NotImplementedError

    @property
    def feature_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def is_spectrogram(self) -> bool:
        return self.freq_axis is not None

    @property
    def step_seconds(self) -> float:
        """Seconds between two steps of the time axis (what `length` counts)."""
        raise NotImplementedError

    @property
    def grid_samples(self) -> int | None:
        """The start grid in samples (None: no grid); it must be a whole number of samples."""
        if self.start_grid_seconds is None:
            return None
        grid = self.start_grid_seconds * self.sampling_rate
        if grid < 1 or abs(grid - round(grid)) > 1e-6:
            raise ValueError(f"a start grid of {self.start_grid_seconds} s is not a whole number of samples "
                             f"at {self.sampling_rate} Hz")
        return int(round(grid))

    @property
    def hop_samples(self) -> int:
        hop = self.window_samples if self.hop_seconds is None else max(1, int(round(self.hop_seconds * self.sampling_rate)))
        grid = self.grid_samples
        return hop if grid is None else max(grid, hop // grid * grid)

    @property
    def window_duration(self) -> float:
        """The seconds of audio one full window covers."""
        return self.window_samples / self.sampling_rate

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def starts(self, num_samples: int) -> list[int]:
        """Window start offsets (samples) for a clip of `num_samples`."""
        starts = window_starts(num_samples, self.window_samples, self.hop_samples, self.min_last)
        grid = self.grid_samples
        return starts if grid is None else sorted({s // grid * grid for s in starts})

    def compute(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        """All windows of a mono waveform at `sampling_rate`: {feature_name, length, start}."""
        raise NotImplementedError


@dataclass
class FbankParams(FeatureParams):
    """Kaldi fbank (AST's input): 25 ms / 10 ms frames, `max_length` frames per window
    (1024 = 10.24 s), normalised (x - mean) / (2 std). One window is [time, freq]."""

    kind: ClassVar[str] = "fbank"
    freq_axis: ClassVar[int | None] = 1
    num_mel_bins: int = 128
    max_length: int = 1024
    frame_length: int = 400  # samples (25 ms at 16 kHz)
    frame_shift: int = 160  # samples (10 ms)
    do_normalize: bool = True
    mean: float = AUDIOSET_MEAN
    std: float = AUDIOSET_STD

    @property
    def window_samples(self) -> int:
        # The samples that yield exactly max_length frames, so a full window has no padding.
        return (self.max_length - 1) * self.frame_shift + self.frame_length

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.max_length, self.num_mel_bins)

    @property
    def step_seconds(self) -> float:
        return self.frame_shift / self.sampling_rate

    def compute(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        return fbank_features(wave, self)


@dataclass
class WaveformParams(FeatureParams):
    """Raw waveform windows of `window_seconds`. One window is [samples]."""

    kind: ClassVar[str] = "waveform"
    window_seconds: float = 10.0
    do_normalize: bool = True

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sampling_rate))

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.window_samples,)

    @property
    def step_seconds(self) -> float:
        return 1.0 / self.sampling_rate

    def compute(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        return waveform_features(wave, self)


@dataclass
class MelImageParams(FeatureParams):
    """Log-mel image of `window_seconds`, resized to `image_size` squared, one channel
    (ViT's input). One window is [freq (row 0 lowest), time]."""

    kind: ClassVar[str] = "mel_image"
    feature_name: ClassVar[str] = "pixel_values"
    time_axis: ClassVar[int] = 1
    freq_axis: ClassVar[int | None] = 0
    sampling_rate: int = 22050
    window_seconds: float = 10.0
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    image_size: int = 224
    # dB scale: 0..1 maps [ref_db - top_db, ref_db] of 10*log10(mel power). ref_db=40 puts a
    # full-scale sine near 1.0; the range is fixed, not per clip, so loudness stays a cue.
    ref_db: float = 40.0
    top_db: float = 80.0
    image_mean: float = 0.5  # ViT (in21k) image processor: (x - 0.5) / 0.5
    image_std: float = 0.5

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sampling_rate))

    @property
    def num_frames(self) -> int:
        return 1 + self.window_samples // self.hop_length  # librosa, center=True

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.image_size, self.image_size)

    @property
    def step_seconds(self) -> float:
        return self.window_duration / self.image_size  # the image is the window resized

    def compute(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        return mel_image_features(wave, self)


PARAM_CLASSES: dict[str, type[FeatureParams]] = {c.kind: c for c in (FbankParams, WaveformParams, MelImageParams)}
# Names older versions of Sentio saved for a kind in preprocessor_config.json (they named kinds
# after the backbone that read them), so runs saved then still load, with or without the model
# package (an exported .onnx run never imports it). Each backbone's `legacy_feature_kind` must be
# listed here (models/backbone.py checks it).
LEGACY_KINDS: dict[str, str] = {"ast": "fbank", "wav2vec2": "waveform", "vit": "mel_image"}


def canonical_kind(kind: str) -> str:
    """The current name of a feature kind (a legacy name is translated)."""
    kind = LEGACY_KINDS.get(kind, kind)
    if kind not in PARAM_CLASSES:
        raise ValueError(f"unknown feature kind {kind!r}; expected one of {', '.join(PARAM_CLASSES)}")
    return kind


def params_for(kind: str, **overrides: Any) -> FeatureParams:
    """Default params of `kind`, with `overrides`; unknown names raise a TypeError naming them."""
    cls = PARAM_CLASSES[canonical_kind(kind)]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"{cls.kind} features have no parameter(s) {', '.join(unknown)}")
    return cls(**overrides)


def param_names(kind: str) -> list[str]:
    """The parameter names of feature kind `kind` (ValueError for an unknown kind)."""
    return [f.name for f in dataclasses.fields(PARAM_CLASSES[canonical_kind(kind)])]


def _as_wave(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {wave.shape}")
    if wave.size == 0:
        raise ValueError("empty waveform")
    return wave


def _segments(wave: torch.Tensor, starts: list[int], span: int) -> torch.Tensor:
    """[K, span] windows of `wave`, zero-padded at the end where the clip is shorter."""
    import torch

    n = wave.numel()
    if n < span + starts[-1]:
        wave = torch.nn.functional.pad(wave, (0, span + starts[-1] - n))
    return torch.stack([wave[s : s + span] for s in starts])


@lru_cache(maxsize=8)
def _kaldi_tables(num_mel_bins: int, sampling_rate: int, frame_length: int) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Mel matrix and window exactly as ASTFeatureExtractor builds them for its NumPy path, plus
    the mel bands in groups of 16 with the FFT-bin range each group touches (see _apply_mel)."""
    from transformers.audio_utils import mel_filter_bank, window_function
    import torch

    fft_length = 1 << (frame_length - 1).bit_length()
    with warnings.catch_warnings():  # 128 bins over 257 FFT bins leave one filter empty, as in AST
        warnings.simplefilter("ignore")
        mel = mel_filter_bank(
            num_frequency_bins=fft_length // 2 + 1,
            num_mel_filters=num_mel_bins,
            min_frequency=20,
            max_frequency=sampling_rate // 2,
            sampling_rate=sampling_rate,
            norm=None,
            mel_scale="kaldi",
            triangularize_in_mel_space=True,
        )
    window = window_function(frame_length, "hann", periodic=False)
    groups = []
    for first in range(0, num_mel_bins, 16):
        rows = np.flatnonzero(mel[:, first : first + 16].any(axis=1))
        groups.append((first, min(first + 16, num_mel_bins), int(rows.min()) if rows.size else 0,
                       int(rows.max()) + 1 if rows.size else 0))
    return torch.from_numpy(mel.astype(np.float32)), torch.from_numpy(window.astype(np.float32)), tuple(groups)


def kaldi_mel_matrix(params: FbankParams) -> np.ndarray:
    """The [fft bins, mel] filter matrix the fbank features are made with."""
    return _kaldi_tables(params.num_mel_bins, params.sampling_rate, params.frame_length)[0].numpy()


def _apply_mel(power: torch.Tensor, mel: torch.Tensor, groups: tuple) -> torch.Tensor:
    """power @ mel, band group by band group: triangular filters touch few FFT bins each, so this
    skips the zeros of the dense matrix (3.5x less time than one dense matmul, same values)."""
    import torch

    out = torch.empty(*power.shape[:-1], mel.shape[1], dtype=power.dtype)
    for first, last, lo, hi in groups:
        if hi > lo:
            torch.matmul(power[..., lo:hi], mel[lo:hi, first:last], out=out[..., first:last])
        else:
            out[..., first:last] = 0.0
    return out


def fbank_framing(wave: np.ndarray, p: FbankParams) -> tuple[np.ndarray, Any, int, int]:
    """What both fbank implementations (torch here, numpy in numpy_features) frame alike: the mono
    wave (a clip shorter than one frame padded to one), the window starts, the window's samples and
    the FFT length."""
    wave = _as_wave(wave)
    if wave.size < p.frame_length:  # one frame needs frame_length samples: pad the tiny clip
        wave = np.pad(wave, (0, p.frame_length - wave.size))
    return wave, p.starts(wave.size), p.window_samples, 1 << (p.frame_length - 1).bit_length()


def kaldi_fbank(wave: np.ndarray, params: FbankParams | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Un-normalised log-mel fbank per window: ([K, max_length, bins] zero-padded, lengths, starts)."""
    import torch  # here: an ONNX model's features (numpy_fbank) load no torch

    p = params or FbankParams()
    wave, starts, span, fft_length = fbank_framing(wave, p)
    mel, window, groups = _kaldi_tables(p.num_mel_bins, p.sampling_rate, p.frame_length)
    x = torch.from_numpy(wave)
    out = np.zeros((len(starts), p.max_length, p.num_mel_bins), dtype=np.float32)
    lengths = np.array([min(p.max_length, 1 + (wave.size - s - p.frame_length) // p.frame_shift) for s in starts])
    with torch.no_grad():
        for c in range(0, len(starts), _WINDOWS_PER_CHUNK):
            chunk = starts[c : c + _WINDOWS_PER_CHUNK]
            frames = _segments(x, chunk, span).unfold(-1, p.frame_length, p.frame_shift)  # [k, T, L] view
            # The FFT input buffer, zero-padded to fft_length once (rfft(n=...) would copy again).
            buf = torch.empty(*frames.shape[:-1], fft_length)
            buf[..., p.frame_length :] = 0.0
            pre = buf[..., : p.frame_length]
            # remove_dc_offset then pre-emphasis 0.97 (first sample scaled by 0.03), as transformers'
            # spectrogram(), in one pass: (x_i - m) - 0.97 (x_i-1 - m) = x_i - 0.97 x_i-1 - 0.03 m.
            dc = frames.mean(dim=-1, keepdim=True)
            torch.sub(frames[..., 1:], frames[..., :-1], alpha=0.97, out=pre[..., 1:])
            pre[..., 1:] -= (1 - 0.97) * dc
            pre[..., :1] = (frames[..., :1] - dc) * (1 - 0.97)
            pre *= window
            spec = torch.fft.rfft(buf)
            fbank = _apply_mel(spec.real.square() + spec.imag.square(), mel, groups)
            out[c : c + len(chunk)] = fbank.clamp_(min=_KALDI_MEL_FLOOR).log_().numpy()
    # ASTFeatureExtractor pads with zeros BEFORE normalising: keep padded frames at 0 here.
    for i, n in enumerate(lengths):
        out[i, n:] = 0.0
    return out, lengths.astype(np.int32), np.asarray(starts) / p.sampling_rate


def fbank_features(wave: np.ndarray, params: FbankParams | None = None) -> dict[str, np.ndarray]:
    """`input_values` [K, max_length, bins] (normalised), `length` (real frames), `start` (s)."""
    p = params or FbankParams()
    values, lengths, starts = kaldi_fbank(wave, p)
    if p.do_normalize:
        values -= p.mean
        values /= 2 * p.std
    return {"input_values": values, "length": lengths, "start": starts.astype(np.float32)}


def waveform_features(wave: np.ndarray, params: WaveformParams | None = None) -> dict[str, np.ndarray]:
    """`input_values` [K, samples] normalised over real samples, `length` (samples), `start` (s)."""
    p = params or WaveformParams()
    wave = _as_wave(wave)
    width = p.window_samples
    starts = p.starts(wave.size)
    out = np.zeros((len(starts), width), dtype=np.float32)
    lengths = np.zeros(len(starts), dtype=np.int32)
    for i, s in enumerate(starts):
        seg = wave[s : s + width]
        lengths[i] = seg.size
        if p.do_normalize:  # as Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm, padding stays 0
            seg64 = seg.astype(np.float64)
            seg = (seg64 - seg64.mean()) / np.sqrt(seg64.var() + 1e-7)
        out[i, : seg.size] = seg
    return {"input_values": out, "length": lengths, "start": (np.asarray(starts) / p.sampling_rate).astype(np.float32)}


@lru_cache(maxsize=8)
def _librosa_mel(sampling_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    import librosa
    import torch

    return torch.from_numpy(librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float32))


def mel_db(segments: torch.Tensor, p: MelImageParams) -> torch.Tensor:
    """10*log10 of librosa's melspectrogram (hann, center, zero pad, slaney) of [K, samples]: [K, mels, frames]."""
    import torch

    mel = _librosa_mel(p.sampling_rate, p.n_fft, p.n_mels)
    window = torch.hann_window(p.n_fft, periodic=True)  # librosa's 'hann' is periodic (fftbins=True)
    spec = torch.stft(segments, n_fft=p.n_fft, hop_length=p.hop_length, window=window, center=True,
                      pad_mode="constant", return_complex=True)  # librosa >= 0.10 pads with zeros
    power = mel @ (spec.real.square() + spec.imag.square())
    return 10.0 * torch.log10(torch.clamp(power, min=1e-10))  # power_to_db(ref=1, amin=1e-10)


def mel_image_features(wave: np.ndarray, params: MelImageParams | None = None) -> dict[str, np.ndarray]:
    """`pixel_values` [K, size, size] (one channel), `length` (real columns), `start` (s).

    Rows are mel bands (row 0 = lowest), columns are time; ViT repeats the channel to 3.
    """
    import torch

    p = params or MelImageParams()
    wave = _as_wave(wave)
    width, size = p.window_samples, p.image_size
    starts = p.starts(wave.size)
    out = np.empty((len(starts), size, size), dtype=np.float32)
    x = torch.from_numpy(wave)
    with torch.no_grad():
        for c in range(0, len(starts), _WINDOWS_PER_CHUNK):
            chunk = starts[c : c + _WINDOWS_PER_CHUNK]
            db = mel_db(_segments(x, chunk, width), p)
            scaled = torch.clamp((db - (p.ref_db - p.top_db)) / p.top_db, 0.0, 1.0)  # fixed range, not per clip
            image = torch.nn.functional.interpolate(scaled[:, None], size=(size, size), mode="bilinear",
                                                    align_corners=False)[:, 0]
            out[c : c + len(chunk)] = ((image - p.image_mean) / p.image_std).numpy()
    lengths = np.zeros(len(starts), dtype=np.int32)
    for i, s in enumerate(starts):
        frames = min(p.num_frames, math.ceil(min(width, wave.size - s) / p.hop_length))  # centred on real audio
        lengths[i] = max(1, min(size, math.ceil(frames * size / p.num_frames)))
    return {"pixel_values": out, "length": lengths, "start": (np.asarray(starts) / p.sampling_rate).astype(np.float32)}
