"""Formats libsndfile cannot read (M4A/AAC, ...), decoded block by block through an ffmpeg child.

ffmpeg writes raw float32 PCM (the file's own rate and channels) to a pipe and we read it a block
at a time: the pipe's small kernel buffer blocks ffmpeg while we are busy, so neither process ever
holds more than a block or two, whatever the file's length. librosa/audioread (the old fallback)
gathers the whole file in memory and converts it from 16-bit, so it is used only without ffmpeg.
Written by hand because no maintained Python package streams ffmpeg's decoded PCM with the child's
clean-up on error that we need (audioread's ffmpeg reader gives 16-bit integers only).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

PROBE_TIMEOUT_S = 60.0  # ffprobe reads the container header only


@dataclass(frozen=True)
class StreamShape:
    """The first audio stream's rate and channel count, as ffmpeg will write it."""

    sample_rate: int
    channels: int


def available() -> bool:
    """Whether ffmpeg and ffprobe are on the PATH."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def probe(path: str) -> StreamShape | None:
    """The first audio stream's shape, or None when ffprobe finds no usable audio stream."""
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
             "stream=sample_rate,channels", "-of", "json", "file:" + path],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
        stream = json.loads(out.stdout or b"{}").get("streams", [{}])[0]
        rate, channels = int(stream["sample_rate"]), int(stream["channels"])
    except (subprocess.TimeoutExpired, OSError, ValueError, KeyError, IndexError):
        return None
    return StreamShape(rate, channels) if rate > 0 and channels > 0 else None


class Reader:
    """An ffmpeg child decoding `path`'s first audio stream to float32 on a pipe. `read(frames)`
    gives up to `frames` (frames, channels) float32, fewer only at the end; raises DecodeFailed when
    ffmpeg ends with an error. `close()` kills and reaps the child, however far reading got."""

    def __init__(self, path: str, shape: StreamShape) -> None:
        self.path, self.shape = path, shape
        self.proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "quiet", "-i", "file:" + path, "-map", "0:a:0", "-vn", "-sn", "-dn",
             "-f", "f32le", "-acodec", "pcm_f32le", "-"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.ended = False

    def read(self, frames: int) -> np.ndarray:
        frame_bytes = 4 * self.shape.channels
        data = b"" if self.ended else self.proc.stdout.read(frames * frame_bytes)  # type: ignore[union-attr]
        if len(data) < frames * frame_bytes and not self.ended:  # a buffered read is short only at the end
            self.ended = True
            if self.proc.wait() != 0:
                raise DecodeFailed(self.path)
        whole = len(data) - len(data) % frame_bytes
        return np.frombuffer(data[:whole], np.float32).reshape(-1, self.shape.channels)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc.wait()


class DecodeFailed(Exception):
    """ffmpeg could not decode the file (the caller words the user's message)."""
