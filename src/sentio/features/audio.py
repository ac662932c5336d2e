"""Audio decoding: any common file -> mono float32 at the sample rate a backbone needs.

soundfile (libsndfile) reads WAV/FLAC/OGG/Opus/MP3 without system libraries and is fast; other
formats (M4A/AAC, ...) stream from an ffmpeg child (features/ffmpeg_pipe.py), or without ffmpeg go
through librosa/audioread.

`audio_blocks` decodes the same way block by block (soundfile's block reads, soxr's streaming
resampler), so a two-hour file never lies in memory whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from ..errors import DataError
from . import ffmpeg_pipe

# Formats libsndfile decodes without ffmpeg (see module docstring), and the ones that need it.
_SNDFILE_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"}
FFMPEG_EXTENSIONS = {".m4a", ".aac", ".mp4", ".m4b", ".wma", ".webm", ".mka", ".ac3", ".amr", ".3gp"}
BLOCK_FRAMES = 1 << 16  # frames per streaming read: 1.5 s at 44.1 kHz


class AudioError(DataError):
    """A file that cannot be used as audio. The message names the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(path, reason)  # both in args, so the error pickles across worker processes
        self.path, self.reason = path, reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    sample_rate: int
    channels: int


def _undecodable(path: str) -> AudioError:
    """Why neither libsndfile nor the ffmpeg fallback could read `path`, in words that lead somewhere."""
    ext = os.path.splitext(path)[1].lower()
    if ext in _SNDFILE_EXTENSIONS:
        # libsndfile reads this format itself (its own message is often misleading here): the file
        # is damaged or not audio, and an "install ffmpeg" hint would send users astray.
        return AudioError(path, "corrupt or not an audio file (cannot decode it)")
    if ext in FFMPEG_EXTENSIONS and shutil.which("ffmpeg") is None:
        return AudioError(path, f"cannot decode {ext} audio: this format needs ffmpeg (install it, e.g. "
                                "`apt-get install ffmpeg`, or convert the file to WAV/FLAC/MP3)")
    return AudioError(path, "not an audio file (no decoder here reads it)")


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise AudioError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "empty file")


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Duration, sample rate and channel count, read from the header where possible."""
    path = os.fspath(path)
    _check_file(path)
    try:
        info = sf.info(path)
        frames, sr, channels = info.frames, info.samplerate, info.channels
    except Exception:
        # Not a libsndfile format: decode once through the fallback to learn its shape.
        wave, sr = _decode_fallback(path)
        frames, channels = wave.shape[0], wave.shape[1]
    if frames <= 0 or sr <= 0:
        raise AudioError(path, "no audio samples")
    return AudioInfo(duration=frames / sr, sample_rate=int(sr), channels=int(channels))


def _decode_fallback(path: str) -> tuple[np.ndarray, int]:
    """librosa/audioread decode, (frames, channels) float32; one-line AudioError on failure."""
    shape = ffmpeg_pipe.probe(path) if ffmpeg_pipe.available() else None
    if shape is not None:  # the same decoder audio_blocks streams through, so both agree
        try:
            wave = np.concatenate(list(ffmpeg_pipe.blocks(path, shape, BLOCK_FRAMES)))
        except (ffmpeg_pipe.DecodeFailed, ValueError):  # ValueError: no block at all
            raise _undecodable(path) from None
        return wave, shape.sample_rate
    try:
        import librosa

        with warnings.catch_warnings():  # librosa warns that it falls back; we say so ourselves on failure
            warnings.simplefilter("ignore")
            wave, sr = librosa.load(path, sr=None, mono=False)
    except Exception:  # audioread raises several unrelated types, none of them more telling
        raise _undecodable(path) from None
    wave = np.atleast_2d(wave).T  # librosa gives (channels, frames)
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)


def _downmix(wave: np.ndarray) -> np.ndarray:
    """Mean over channels of (frames, channels). Column adds: wave.mean(axis=1) reduces along the
    short strided axis and costs ~10 ms per 45 s stereo clip, as much as the MP3 decode itself."""
    if wave.shape[1] == 1:
        return wave[:, 0]
    mono = wave[:, 0] + wave[:, 1]
    for c in range(2, wave.shape[1]):
        mono += wave[:, c]
    mono *= np.float32(1.0 / wave.shape[1])
    return mono


def load_audio(path: str | os.PathLike, sample_rate: int | None = None) -> np.ndarray:
    """Decode `path` to a mono float32 waveform, resampled to `sample_rate` (None keeps the file's).

    Raises AudioError (one line naming the file) for missing, empty, corrupt or silent-length files.
    """
    wave, sr = load_audio_with_rate(path, sample_rate)
    return wave


def load_audio_with_rate(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Like load_audio, also returning the rate of the returned waveform."""
    path = os.fspath(path)
    _check_file(path)
    try:
        wave, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception:
        wave, sr = _decode_fallback(path)
    if wave.shape[0] == 0:
        raise AudioError(path, "no audio samples")
    mono = _downmix(wave)
    if not np.all(np.isfinite(mono)):
        raise AudioError(path, "audio contains NaN or infinite samples")
    if sample_rate is not None and sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
        sr = sample_rate
    return np.ascontiguousarray(mono, dtype=np.float32), int(sr)


FREE_WAIT_S = 2.0  # the longest a message waits for the decoders' muted sections to end


class _StderrMute:
    """Mutes file descriptor 2 while any thread decodes: libmpg123 prints "Note: Illegal
    Audio-MPEG-Header" lines straight to it on a damaged MP3, while the AudioError already says
    what went wrong. Counted, so decoding threads overlap. Our own messages go inside `free()`,
    which waits for the current reads to end and holds new ones back, so none is swallowed."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._depth = 0  # decoding sections open
        self._writers = 0  # threads waiting in or inside free()
        self._saved: int | None = None
        self._since: dict[object, float] = {}  # open sections: when each began

    def _stuck(self) -> bool:
        """Whether a section has been open for longer than a message waits (a hung decoder)."""
        return bool(self._since) and time.monotonic() - min(self._since.values()) > FREE_WAIT_S

    @contextlib.contextmanager
    def muted(self) -> Iterator[None]:
        token = object()
        with self._lock:
            self._lock.wait_for(lambda: self._writers == 0)
            if self._depth == 0:
                self._saved = self._mute()
            self._depth += 1
            self._since[token] = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                del self._since[token]
                self._depth -= 1
                if self._depth == 0:
                    self._restore()
                    self._lock.notify_all()

    @contextlib.contextmanager
    def free(self) -> Iterator[None]:
        with self._lock:
            self._writers += 1
            # A decoder that hangs inside muted() must not silence the run for good: after a
            # while the message goes out anyway, fd 2 unmuted around it.
            stuck = not self._lock.wait_for(lambda: self._depth == 0 or self._stuck(), timeout=FREE_WAIT_S)
            stuck = stuck or self._depth > 0
            if stuck and self._saved is not None:
                sys.stderr.flush()
                os.dup2(self._saved, 2)
        try:
            yield
        finally:
            with self._lock:
                if stuck and self._depth > 0 and self._saved is not None:
                    sys.stderr.flush()
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, 2)
                    os.close(devnull)
                self._writers -= 1
                self._lock.notify_all()

    @staticmethod
    def _mute() -> int | None:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no real fd 2 (some embedded interpreters): nothing to mute
            return None
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return saved

    def _restore(self) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None


STDERR = _StderrMute()


def _sndfile_blocks(path: str, block_frames: int) -> Iterator[tuple[np.ndarray, int]]:
    """(frames, channels) float32 blocks and the file's rate from libsndfile, else streamed from an
    ffmpeg child; without ffmpeg, the librosa fallback decodes the whole file first."""
    try:
        with STDERR.muted():
            sound = sf.SoundFile(path)
    except Exception:
        shape = ffmpeg_pipe.probe(path) if ffmpeg_pipe.available() else None
        if shape is not None:
            try:
                for block in ffmpeg_pipe.blocks(path, shape, block_frames):
                    yield block, shape.sample_rate
            except ffmpeg_pipe.DecodeFailed:
                raise _undecodable(path) from None
            return
        with STDERR.muted():  # librosa tries libsndfile again first
            wave, sr = _decode_fallback(path)
        for start in range(0, wave.shape[0], block_frames):
            yield wave[start : start + block_frames], sr
        return
    with sound:
        while True:
            try:
                with STDERR.muted():
                    block = sound.read(block_frames, dtype="float32", always_2d=True)
            except Exception:  # libsndfile gives up on a damaged stream part-way
                raise _undecodable(path) from None
            if block.shape[0] == 0:
                return
            yield block, sound.samplerate


def audio_blocks(path: str | os.PathLike, sample_rate: int | None = None,
                 block_frames: int = BLOCK_FRAMES) -> Iterator[np.ndarray]:
    """Decode `path` block by block: mono float32 blocks that, joined, equal
    `load_audio(path, sample_rate)` sample for sample (soxr's streaming resampler gives the
    one-shot resampler's output).

    Raises AudioError like load_audio, possibly after some blocks (a stream damaged part-way).
    """
    path = os.fspath(path)
    _check_file(path)
    resampler: soxr.ResampleStream | None = None
    frames = 0
    for block, sr in _sndfile_blocks(path, block_frames):
        mono = _downmix(block)
        if not np.all(np.isfinite(mono)):
            raise AudioError(path, "audio contains NaN or infinite samples")
        if frames == 0 and sample_rate is not None and sr != sample_rate:
            resampler = soxr.ResampleStream(sr, sample_rate, 1, dtype="float32", quality="HQ")
        frames += mono.shape[0]
        if resampler is not None:
            mono = resampler.resample_chunk(mono)
        if mono.size:
            yield np.ascontiguousarray(mono, dtype=np.float32)
    if frames == 0:
        raise AudioError(path, "no audio samples")
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
        if tail.size:
            yield tail


def window_starts(num_samples: int, window: int, hop: int, min_last: float = 0.5) -> list[int]:
    """Start offsets of the windows that cover a clip of `num_samples`.

    Full windows every `hop` samples; a tail longer than `min_last` of a window gets one more window
    aligned to the clip's end, so no large part of a long song is ignored. A clip shorter than one
    window gets a single window at 0 (the caller pads it).
    """
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    covered = starts[-1] + window
    if num_samples - covered > min_last * window:
        starts.append(num_samples - window)
    return starts
