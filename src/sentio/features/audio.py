"""Audio decoding: any common file -> mono float32 at the sample rate a backbone needs.

soundfile (libsndfile) reads WAV/FLAC/OGG/Opus/MP3 without system libraries and is fast; other
formats (M4A/AAC, ...) stream from an ffmpeg child (features/ffmpeg_pipe.py), or without ffprobe
through audioread (librosa's fallback), which needs ffmpeg on the PATH.

`AudioBlocks` decodes block by block (soundfile's block reads, soxr's streaming resampler), so a
two-hour file never lies in memory whole; `load_audio` joins its blocks. Every header is checked
before anything is allocated from it, and a block bounds the memory of decoding AND resampling,
whatever the header claims and whatever the ratio of the rates (a file is a stranger's input).
"""

from __future__ import annotations

import contextlib
import math
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
# libsndfile 1.2's MP3 decoder (mpg123) gives wrong samples after the first of several reads: zeros
# and stray values in the first ~2,000 samples of each later read, measured on the demo's MP3s at
# every block size tried (all 24 mono clips; 12 of 12 stereo 22.05 kHz clips; stereo 44.1 kHz ones
# wherever a read cuts an MP3 frame), while one whole-file read equals ffmpeg's decode to 6e-8. So
# an MP3 is read in ONE call when its decoded samples fit MP3_WHOLE_READ_VALUES (115 MB of float32:
# 5 minutes of 48 kHz stereo, 10 of mono). A longer one is read block by block, each block from a
# seek MP3_OVERLAP_FRAMES before it, the overlap dropped: the damage never reaches past 4,608 frames
# of a read (measured: every demo clip, CBR and VBR at 22.05 to 48 kHz, LAME with and without a
# Xing header; then equal to the whole read, or within 2e-7 of it). Each block's overlap also holds
# the previous block's last MP3_CHECK_FRAMES, decoded again: a file whose seek does not land on
# the same samples is refused in one line rather than decoded wrong.
MP3_WHOLE_READ_VALUES = 2 * 48_000 * 300
MP3_OVERLAP_FRAMES = 8 * 1152  # eight MPEG-1 layer III frames: twice the deepest damage measured
MP3_CHECK_FRAMES = 2 * 1152  # compared with the previous block; they lie past the damaged part
MP3_CHECK_TOLERANCE = 1e-5  # the same samples decoded twice differ by float32 rounding only (<= 2e-7)
BLOCK_FRAMES = 1 << 16  # frames per streaming read: 1.5 s at 44.1 kHz
BLOCK_SAMPLES = 2 * BLOCK_FRAMES  # values per decoded block, whatever the channel count
# Headers outside these bounds are refused before anything is allocated (see _check_header).
MIN_SAMPLE_RATE = 4_000  # below telephone speech (8 kHz) and old samplers (5.5 kHz)
MAX_SAMPLE_RATE = 768_000  # the highest rate studio converters record
MAX_CHANNELS = 64  # third-order ambisonics (16) and multitrack stems stay below
MAX_FRAMES_PER_BYTE = 16_384  # no codec packs more audio into a byte (FLAC's silence: ~350 frames)
# Uncompressed subtypes: bytes per sample, to compare a header's frame count with the file's size.
_PCM_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
              "ULAW": 1, "ALAW": 1}
_COMPRESSED_CONTAINERS = {"FLAC", "OGG", "MPEG", "MP3"}


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
    """Duration, sample rate and channel count, read from the header where possible (the ffmpeg
    formats are decoded block by block to count their frames). Refuses implausible headers."""
    path = os.fspath(path)
    _check_file(path)
    try:
        with STDERR.muted():
            info = sf.info(path)
    except Exception:
        # Not a libsndfile format: decode once through the fallback (in blocks) to learn its length.
        source = _fallback(path)
        try:
            sr, channels, frames = source.rate, source.channels, 0
            while (read := source.read(BLOCK_SAMPLES // channels).shape[0]) > 0:
                frames += read
        finally:
            source.close()
    else:
        frames, sr, channels = info.frames, info.samplerate, info.channels
        _check_header(path, sr, channels, frames, _pcm_bytes(info.format, info.subtype))
    if frames <= 0 or sr <= 0:
        raise AudioError(path, "no audio samples")
    return AudioInfo(duration=frames / sr, sample_rate=int(sr), channels=int(channels))


def _pcm_bytes(container: str, subtype: str) -> int | None:
    """Bytes per sample of an uncompressed file, None for a compressed one (FLAC says PCM_16 too)."""
    return None if container in _COMPRESSED_CONTAINERS else _PCM_BYTES.get(subtype)


def _check_header(path: str, sample_rate: int, channels: int, frames: int | None, pcm_bytes: int | None) -> None:
    """Refuse a header no real recording has, before anything is allocated from it: a rate of 1 Hz
    would make the resampler write 16,000 samples per decoded one, hundreds of channels multiply
    every block, and a frame count far beyond what the file's bytes can hold is a forged length."""
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(path, f"the header claims a sample rate of {sample_rate} Hz, outside the "
                               f"{MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz of real audio (a damaged or forged file)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(path, f"the header claims {channels} channels (at most {MAX_CHANNELS} are read): "
                               "a damaged or forged file")
    if frames is None or frames <= 0:
        return
    size = os.path.getsize(path)
    # uncompressed: the samples themselves must fit in the file; compressed: no codec packs more
    # than MAX_FRAMES_PER_BYTE frames of audio into one byte (FLAC's silence: ~350).
    if (frames * channels * pcm_bytes > size + 4096) if pcm_bytes else (frames > size * MAX_FRAMES_PER_BYTE):
        raise AudioError(path, f"the header claims {frames} frames ({frames / sample_rate:.0f} s), more than its "
                               f"{size} bytes can hold: a damaged or forged file")


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


def load_audio(path: str | os.PathLike, sample_rate: int | None = None,
               max_duration: float | None = None) -> np.ndarray:
    """Decode `path` to a mono float32 waveform, resampled to `sample_rate` (None keeps the file's),
    at most its first `max_duration` seconds.

    Raises AudioError (one line naming the file) for missing, empty, corrupt, silent-length or
    implausible (see `_check_header`) files.
    """
    wave, sr = load_audio_with_rate(path, sample_rate, max_duration)
    return wave


def load_audio_with_rate(path: str | os.PathLike, sample_rate: int | None = None,
                         max_duration: float | None = None) -> tuple[np.ndarray, int]:
    """Like load_audio, also returning the rate of the returned waveform. The blocks of
    `audio_blocks` joined: the same samples, and no more memory than the waveform returned plus a
    block, whatever the header claims."""
    blocks = AudioBlocks(path, sample_rate, max_duration=max_duration)
    wave = np.concatenate(list(blocks))
    return wave, blocks.rate


FREE_WAIT_S = 2.0  # the longest a message waits for the decoders' muted sections to end


class _StderrMute:
    """Mutes file descriptor 2 while any thread decodes: libmpg123 prints "Note: Illegal
    Audio-MPEG-Header" lines straight to it on a damaged MP3, while the AudioError already says
    what went wrong. Counted, so decoding threads overlap; fd 2 is restored when the last section
    ends. Our own messages go inside `free()`, which waits for the current reads to end and holds
    new ones back, so none is swallowed.

    One per process (fd 2 is the process's), used only around the decoder calls. Re-entrant: a
    thread already inside `muted()` nests without waiting, and `muted()` inside the same thread's
    `free()` leaves fd 2 open (the message wins). A child forked while fd 2 is muted gets it back."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _reset(self) -> None:
        self._lock = threading.Condition()
        self._depth = 0  # decoding sections open
        self._writers = 0  # threads waiting in or inside free()
        self._saved: int | None = None
        self._since: dict[object, float] = {}  # open sections: when each began
        self._local = threading.local()  # this thread's open sections and messages

    def _mine(self, name: str) -> int:
        return getattr(self._local, name, 0)

    def _stuck(self) -> bool:
        """Whether a section has been open for longer than a message waits (a hung decoder)."""
        return bool(self._since) and time.monotonic() - min(self._since.values()) > FREE_WAIT_S

    @contextlib.contextmanager
    def muted(self) -> Iterator[None]:
        if self._mine("writing"):  # a decoder called inside this thread's own message: it stays unmuted
            yield
            return
        token = object()
        with self._lock:
            if not self._mine("sections"):  # a nested section never waits (a message waits for its outer one)
                self._lock.wait_for(lambda: self._writers == 0)
            if self._depth == 0:
                self._saved = self._mute()
            self._depth += 1
            self._since[token] = time.monotonic()
        self._local.sections = self._mine("sections") + 1
        try:
            yield
        finally:
            self._local.sections -= 1
            with self._lock:
                del self._since[token]
                self._depth -= 1
                if self._depth == 0:
                    self._restore()
                    self._lock.notify_all()

    @contextlib.contextmanager
    def free(self) -> Iterator[None]:
        own = self._mine("sections") > 0  # a message from inside this thread's own decoding section
        with self._lock:
            self._writers += 1
            # A decoder that hangs inside muted() must not silence the run for good: after a
            # while the message goes out anyway, fd 2 unmuted around it.
            stuck = own or not self._lock.wait_for(lambda: self._depth == 0 or self._stuck(), timeout=FREE_WAIT_S)
            stuck = stuck or self._depth > 0
            if stuck and self._saved is not None:
                sys.stderr.flush()
                os.dup2(self._saved, 2)
        self._local.writing = self._mine("writing") + 1
        try:
            yield
        finally:
            self._local.writing -= 1
            with self._lock:
                if stuck and self._depth > 0 and self._saved is not None:
                    sys.stderr.flush()
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, 2)
                    os.close(devnull)
                self._writers -= 1
                self._lock.notify_all()

    def _after_fork(self) -> None:
        """In a forked child: no thread of the parent runs here, so no section is open; fd 2 is
        restored if the fork came while it was muted."""
        saved = self._saved
        self._reset()
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)

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


class _Source:
    """An open audio file: its rate and channels (header checked), and `read(frames)`: up to
    `frames` (frames, channels) float32, fewer only at the end."""

    rate: int
    channels: int

    def read(self, frames: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _SndfileSource(_Source):
    def __init__(self, path: str, sound: sf.SoundFile) -> None:
        self.path, self.sound = path, sound
        self.rate, self.channels = int(sound.samplerate), int(sound.channels)
        try:
            _check_header(path, self.rate, self.channels, sound.frames, _pcm_bytes(sound.format, sound.subtype))
        except AudioError:
            sound.close()
            raise

    def read(self, frames: int) -> np.ndarray:
        try:
            with STDERR.muted():
                return self.sound.read(frames, dtype="float32", always_2d=True)
        except Exception:  # libsndfile gives up on a damaged stream part-way
            raise _undecodable(self.path) from None

    def close(self) -> None:
        self.sound.close()


class _AudioreadSource(_Source):
    """The decoder librosa.load falls back to (audioread: ffmpeg, the standard library's WAV/AIFF
    readers), read here directly because librosa.load holds the whole file in memory and audioread
    gives its PCM in buffers of any size. Samples equal librosa's (16-bit PCM / 32768)."""

    def __init__(self, path: str) -> None:
        import audioread

        self.path = path
        try:
            with STDERR.muted(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.source = audioread.audio_open(path)
        except Exception:  # audioread raises several unrelated types, none of them more telling
            raise _undecodable(path) from None
        try:
            self.rate, self.channels = int(self.source.samplerate), int(self.source.channels)
            _check_header(path, self.rate, self.channels, None, None)
        except Exception as exc:
            self.source.close()
            if isinstance(exc, AudioError):
                raise
            raise _undecodable(path) from None
        self.buffers = iter(self.source)
        self.pending = bytearray()
        self.ended = False

    def read(self, frames: int) -> np.ndarray:
        frame_bytes = 2 * self.channels
        while not self.ended and len(self.pending) < frames * frame_bytes:
            try:
                with STDERR.muted():
                    data = next(self.buffers, None)
            except Exception:  # a stream damaged part-way
                raise _undecodable(self.path) from None
            if data is None:
                self.ended = True
            else:
                self.pending += data
        take = min(frames, len(self.pending) // frame_bytes)  # whole frames: a buffer may end inside one
        block = np.frombuffer(bytes(self.pending[: take * frame_bytes]), "<i2").astype(np.float32) * np.float32(1 / 32768)
        del self.pending[: take * frame_bytes]
        return block.reshape(take, self.channels)

    def close(self) -> None:
        self.source.close()


class _FfmpegSource(_Source):
    """The formats libsndfile lacks, streamed as float32 from an ffmpeg child (ffmpeg_pipe): unlike
    audioread, whose reader thread queues the whole file when decoding runs ahead of the model,
    the pipe's buffer holds ffmpeg back, so memory stays a block whatever the file's length."""

    def __init__(self, path: str, shape: ffmpeg_pipe.StreamShape) -> None:
        self.path, self.rate, self.channels = path, shape.sample_rate, shape.channels
        _check_header(path, self.rate, self.channels, None, None)
        self.reader = ffmpeg_pipe.Reader(path, shape)

    def read(self, frames: int) -> np.ndarray:
        try:
            return self.reader.read(frames)
        except ffmpeg_pipe.DecodeFailed:
            raise _undecodable(self.path) from None

    def close(self) -> None:
        self.reader.close()


class _WholeSource(_Source):
    """A short MP3, decoded by ONE libsndfile read (see MP3_WHOLE_READ_VALUES) and handed out in
    blocks: the only way libsndfile 1.2 decodes every MP3 sample right."""

    def __init__(self, source: _SndfileSource) -> None:
        self.path, self.rate, self.channels = source.path, source.rate, source.channels
        try:
            # seek(0) first, as soundfile.read does: mpg123 decodes a few samples 6e-8 apart without it
            with STDERR.muted():
                source.sound.seek(0)
            self.wave = source.read(-1)  # at most the header's frame count: bounded by the caller's check
        finally:
            source.close()
        self.offset = 0

    def read(self, frames: int) -> np.ndarray:
        block = self.wave[self.offset: self.offset + frames]
        self.offset += block.shape[0]
        return block

    def close(self) -> None:
        self.wave = self.wave[:0]


class _SeekingMp3Source(_Source):
    """A long MP3 through libsndfile, block by block: each read starts MP3_OVERLAP_FRAMES early
    (see MP3_WHOLE_READ_VALUES) and drops them, and the part of them that the previous block
    already gave must come out the same, or the file is refused. Memory: a block and the check."""

    def __init__(self, source: _SndfileSource) -> None:
        self.source, self.path, self.rate, self.channels = source, source.path, source.rate, source.channels
        self.position = 0  # the next frame to hand out
        self.tail = np.zeros((0, self.channels), np.float32)  # the last frames handed out, to check

    def read(self, frames: int) -> np.ndarray:
        back = min(self.position, MP3_OVERLAP_FRAMES)
        try:
            with STDERR.muted():  # mpg123 complains of the overlap's damaged frames on fd 2
                self.source.sound.seek(self.position - back)  # seek(0) first too, as soundfile.read does
        except Exception:  # a stream damaged past the part already read
            raise _undecodable(self.path) from None
        block = self.source.read(frames + back)
        check = min(back, self.tail.shape[0], MP3_CHECK_FRAMES)
        if check:
            again, before = block[back - check: back], self.tail[-check:]
            if again.shape != before.shape or np.abs(again - before).max() > MP3_CHECK_TOLERANCE:
                raise AudioError(self.path, "libsndfile cannot decode this long MP3 block by block (its seek does "
                                            "not land on the same samples): convert it, e.g. to FLAC")
        block = block[back:]
        self.position += block.shape[0]
        kept = np.concatenate([self.tail, block]) if block.shape[0] < MP3_CHECK_FRAMES else block
        self.tail = kept[-MP3_CHECK_FRAMES:].copy()
        return block

    def close(self) -> None:
        self.source.close()


def _fallback(path: str) -> _Source:
    """A file libsndfile cannot read: through ffmpeg's pipe where ffprobe finds an audio stream,
    else audioread (which also words the error)."""
    shape = ffmpeg_pipe.probe(path) if ffmpeg_pipe.available() else None
    return _FfmpegSource(path, shape) if shape is not None else _AudioreadSource(path)


def _mp3_length_guessed(path: str) -> bool:
    """Whether an MP3 lacks the Xing/Info/VBRI header that states its length. libsndfile then takes
    the length from the first frame's bitrate and stops decoding there: a VBR file whose first
    frame is richer than its average loses its end without a word (measured: a LAME VBR file
    written without the header decoded to 1.40 M of its 4.82 M frames). mutagen reads the header."""
    try:
        from mutagen.mp3 import MP3, BitrateMode

        return MP3(path).info.bitrate_mode == BitrateMode.UNKNOWN
    except Exception:  # no MPEG frame mutagen recognises: libsndfile's own reading decides
        return False


def _open(path: str) -> _Source:
    """libsndfile where it reads the file, else the ffmpeg/audioread fallback; header checked either way."""
    try:
        with STDERR.muted():
            sound = sf.SoundFile(path)
    except Exception:
        return _fallback(path)
    source = _SndfileSource(path, sound)
    if sound.format != "MP3":
        return source
    if ffmpeg_pipe.available() and _mp3_length_guessed(path):  # without ffmpeg nothing reads further
        shape = ffmpeg_pipe.probe(path)
        if shape is not None:  # libsndfile would stop at its guess of the length: ffmpeg reads to the end
            source.close()
            return _FfmpegSource(path, shape)
    if sound.frames * sound.channels <= MP3_WHOLE_READ_VALUES:
        return _WholeSource(source)
    return _SeekingMp3Source(source)  # libsndfile's plain block reads are wrong (see MP3_WHOLE_READ_VALUES)


class AudioBlocks:
    """Decode a file block by block: mono float32 blocks that, joined, are `load_audio(path,
    sample_rate, max_duration)` sample for sample (soxr's streaming resampler gives the one-shot
    resampler's output).

    Memory is bounded by a block, whatever the header claims: a block holds at most
    `block_frames` frames and BLOCK_SAMPLES values, and when resampling up, fewer frames are read
    per block so that the resampler's OUTPUT stays within `block_frames` samples too. With
    `max_duration`, decoding stops after that many seconds (`cut` then tells, after iterating).
    Raises AudioError (one line), possibly after some blocks (a stream damaged part-way).
    """

    def __init__(self, path: str | os.PathLike, sample_rate: int | None = None, block_frames: int = BLOCK_FRAMES,
                 max_duration: float | None = None) -> None:
        self.path = os.fspath(path)
        self.sample_rate = sample_rate
        self.block_frames = max(1, block_frames)
        self.max_duration = max_duration
        self.rate = sample_rate or 0  # the rate of the blocks, known once the header is read
        self.cut = False  # True once decoding stopped at max_duration with audio left

    def __iter__(self) -> Iterator[np.ndarray]:
        path = self.path
        _check_file(path)
        source = _open(path)
        try:
            yield from self._blocks(source)
        finally:
            source.close()

    def _blocks(self, source: _Source) -> Iterator[np.ndarray]:
        path, sr = self.path, source.rate
        self.rate = self.sample_rate or sr
        ratio = self.rate / sr
        resampler = soxr.ResampleStream(sr, self.rate, 1, dtype="float32", quality="HQ") if ratio != 1 else None
        # a block: at most block_frames frames, BLOCK_SAMPLES values, and block_frames resampled samples
        frames_per_block = max(1, min(self.block_frames, BLOCK_SAMPLES // source.channels,
                                      int(self.block_frames / max(ratio, 1.0))))
        limit = None if self.max_duration is None else max(1, math.ceil(self.max_duration * self.rate))
        frames = emitted = 0
        while True:
            block = source.read(frames_per_block)
            if block.shape[0] == 0:
                break
            mono = _downmix(block)
            if not np.all(np.isfinite(mono)):
                raise AudioError(path, "audio contains NaN or infinite samples")
            frames += mono.shape[0]
            if resampler is not None:
                mono = resampler.resample_chunk(mono)
            if limit is not None and emitted + mono.size > limit:
                # stop here: the first `limit` samples are those of the whole decode
                self.cut = True
                if limit > emitted:
                    yield np.ascontiguousarray(mono[: limit - emitted], dtype=np.float32)
                return
            if mono.size:
                emitted += mono.size
                yield np.ascontiguousarray(mono, dtype=np.float32)
        if frames == 0:
            raise AudioError(path, "no audio samples")
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if limit is not None and emitted + tail.size > limit:
                self.cut, tail = True, tail[: limit - emitted]
            if tail.size:
                emitted += tail.size
                yield np.ascontiguousarray(tail, dtype=np.float32)
        if emitted == 0:  # a few frames that the resampler turns into none
            raise AudioError(path, f"no audio samples at {self.rate} Hz (the file holds {frames} frames)")


def audio_blocks(path: str | os.PathLike, sample_rate: int | None = None, block_frames: int = BLOCK_FRAMES,
                 max_duration: float | None = None) -> Iterator[np.ndarray]:
    """The blocks of `AudioBlocks(path, sample_rate, block_frames, max_duration)`."""
    return iter(AudioBlocks(path, sample_rate, block_frames, max_duration))


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
