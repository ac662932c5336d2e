"""The windows of an audio file, computed as it is decoded: memory is bounded by a chunk of
windows, not by the file.

`WindowStream(extractor, path)` yields exactly the windows `extractor(path)` gives for the whole
file (same starts, same lengths, the end-aligned last window included), a few at a time. Windows
on the hop grid are computed as soon as their samples are decoded; the end-aligned last window
needs the file's length, so the stream keeps the last window's samples (and one step of the
params' start grid, onto which that window moves back) until the end.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator, Sequence, Union

import numpy as np

from ..features.audio import BLOCK_FRAMES, AudioBlocks

if TYPE_CHECKING:  # a type only: the ONNX path's extractor loads no transformers
    from ..features.extractor import SentioFeatureExtractor
    from ..features.numpy_features import NumpyFeatureExtractor

    Extractor = Union[SentioFeatureExtractor, NumpyFeatureExtractor]

Windows = dict[str, np.ndarray]  # {feature_name: [k, ...], "length": [k], "start": [k] (s)}
CHUNK_WINDOWS = 8  # windows computed together: the fbank's own chunk (features._WINDOWS_PER_CHUNK)


class _Tail:
    """The decoded samples from `base` on: blocks appended at the end, dropped from the front."""

    def __init__(self) -> None:
        self.samples = np.zeros(0, np.float32)
        self.base = 0

    @property
    def end(self) -> int:
        return self.base + self.samples.size

    def append(self, block: np.ndarray) -> None:
        self.samples = np.concatenate([self.samples, block])

    def drop_before(self, offset: int) -> None:
        if offset > self.base:
            self.samples = self.samples[offset - self.base :].copy()  # a copy frees the dropped part
            self.base = offset

    def span(self, start: int, stop: int) -> np.ndarray:
        return self.samples[start - self.base : stop - self.base]


class WindowStream:
    """Iterates over the windows of the audio file at `path` as `extractor` cuts them, at most
    `chunk_windows` per item. With `max_duration`, only the file's first `max_duration` seconds
    are cut into windows. After the iteration, `starts` holds every window's start (s),
    `duration` the seconds of audio decoded and `cut` whether audio was left beyond
    `max_duration`. Raises AudioError like `extractor(path)`."""

    def __init__(self, extractor: Extractor, path: str | os.PathLike,
                 chunk_windows: int = CHUNK_WINDOWS, block_frames: int = BLOCK_FRAMES,
                 max_duration: float | None = None) -> None:
        self.params = extractor.params
        self.features = extractor.features  # the extractor's own computation (numpy for an ONNX run)
        self.path = os.fspath(path)
        self.chunk_windows = max(1, chunk_windows)
        self.block_frames = block_frames
        self.max_duration = max_duration
        self.starts: list[float] = []
        self.num_samples = 0
        self.cut = False

    @property
    def duration(self) -> float:
        return self.num_samples / self.params.sampling_rate

    def __iter__(self) -> Iterator[Windows]:
        p = self.params
        window, hop, grid = p.window_samples, p.hop_samples, p.grid_samples or 0
        tail, done = _Tail(), 0  # `done`: windows of the hop grid yielded so far
        blocks = AudioBlocks(self.path, p.sampling_rate, self.block_frames, self.max_duration)
        for block in blocks:
            tail.append(block)
            ready = (tail.end - window) // hop + 1 if tail.end >= window else 0
            while ready - done >= self.chunk_windows:
                yield self._grid(tail, done, done + self.chunk_windows)
                done += self.chunk_windows
            # keep what the next windows of the hop grid and a last window aligned to the end
            # (moved back onto the start grid, when the params have one) need
            tail.drop_before(min(done * hop, tail.end - window - grid))
        self.num_samples = n = tail.end
        self.cut = blocks.cut
        starts = p.starts(n)
        on_grid = (n - window) // hop + 1 if n >= window else 0
        for first in range(done, on_grid, self.chunk_windows):
            yield self._grid(tail, first, min(first + self.chunk_windows, on_grid))
        for start in starts[on_grid:]:  # the end-aligned last window, or a clip shorter than one window
            yield self._compute(tail.span(start, min(start + window, n)), [start])

    def _grid(self, tail: _Tail, first: int, stop: int) -> Windows:
        """Windows `first`..`stop - 1` of the hop grid. Their span holds exactly these windows:
        (k - 1) hops plus one window leave no tail for an extra end-aligned one."""
        hop = self.params.hop_samples
        starts = [i * hop for i in range(first, stop)]
        return self._compute(tail.span(starts[0], starts[-1] + self.params.window_samples), starts)

    def _compute(self, wave: np.ndarray, starts: list[int]) -> Windows:
        windows = self.features(wave)
        # absolute starts, in the same float32 seconds the whole-file extractor gives
        windows["start"] = (np.asarray(starts) / self.params.sampling_rate).astype(np.float32)
        self.starts.extend(float(s) for s in windows["start"])
        return windows


def window_items(windows: Windows, feature_name: str) -> Iterator[dict[str, np.ndarray]]:
    """One collator item ({feature_name, length}) per window of a chunk."""
    for feature, length in zip(windows[feature_name], windows["length"]):
        yield {feature_name: feature, "length": length}


def stream_items(stream: WindowStream, feature_name: str) -> Iterator[dict[str, np.ndarray]]:
    """The collator items of every window of a stream, in order."""
    for windows in stream:
        yield from window_items(windows, feature_name)


class WindowCollator:
    """Stacks window items into one batch of numpy arrays: the feature [B, ...] as float32 and an
    `attention_mask` [B, T] (int64) from `length` over the time axis, as `EmotionCollator` does
    for training but without torch (an ONNX runner takes the arrays; TorchRunner wraps them)."""

    def __init__(self, feature_name: str, time_axis: int = 0) -> None:
        self.feature_name, self.time_axis = feature_name, time_axis

    @classmethod
    def for_extractor(cls, extractor: Any) -> "WindowCollator":
        return cls(extractor.feature_name, extractor.time_axis)

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
        features = np.stack([np.asarray(it[self.feature_name], dtype=np.float32) for it in items])
        lengths = np.array([int(it["length"]) for it in items])
        mask = np.arange(features.shape[1 + self.time_axis])[None, :] < lengths[:, None]
        return {self.feature_name: features, "attention_mask": mask.astype(np.int64)}
