"""Predicting many files at once: threads decode files into windows (`WindowStream`) while the
model runs; windows of several files share a batch, one forward per batch; a file's result comes
out as soon as its last window is predicted. Memory is bounded by the batch and a few chunks of
windows per thread, whatever the files' lengths.

One file never ends the run: an unreadable file, an exception of a decoder, a file changed while it
was read, or a decoder that makes no progress for `file_timeout` seconds each end that file with
its FileOutcome error; an exception raised in Sentio's own code (a bug) also carries its traceback.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

import numpy as np
from tqdm.auto import tqdm

from ..features.audio import STDERR, AudioError
from ..errors import SentioError
from .results import Result, ResultBuilder
from .runner import WindowRunner, batches_of, run_batches
from .stream import WindowCollator, Windows, WindowStream, window_items


class LibraryPredictor(Protocol):
    """What predicting a library asks of a predictor (EmotionPredictor is one): named here, so the
    library path depends on the predictor's parts, not on the predictor module."""

    extractor: Any  # SentioFeatureExtractor or, for an ONNX run, NumpyFeatureExtractor
    max_duration: float | None
    batch_size: int
    collate: WindowCollator
    runner: WindowRunner
    results: ResultBuilder

CHUNKS_PER_WORKER = 2  # decoded chunks waiting per thread: decoding runs ahead of the model this far
FILE_TIMEOUT_S = 300.0  # a decoder that gives no block for this long is stuck: the file is skipped
_SENTIO = str(Path(__file__).resolve().parents[1])  # where a bug of our own is raised
_DECODERS = {"soundfile", "audioread", "librosa", "soxr", "mutagen", "av"}  # libraries that read the files


def default_workers() -> int:
    """Decoding threads: one per CPU core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class FileOutcome:
    """One file's end: its result, or the AudioError that stopped it, and the seconds of audio decoded.
    `traceback` is set when the error was a bug in Sentio's own code (its text, to be shown)."""

    path: str
    result: Result | None = None
    error: AudioError | None = None
    duration: float = 0.0
    traceback: str | None = None
    cut: bool = False  # longer than the predictor's max_duration: only its beginning was predicted

    @property
    def internal(self) -> bool:
        """Whether the file failed on a bug of Sentio's rather than on its content."""
        return self.traceback is not None


@dataclass
class _Decoded:
    """What a decoding thread sends: windows of file `index`, or the file's end (its duration or its error)."""

    index: int
    windows: Windows | None = None
    duration: float | None = None
    error: BaseException | None = None
    cut: bool = False


@dataclass
class _InFlight:
    """A file whose windows are being predicted."""

    path: str
    starts: list[float] = field(default_factory=list)
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)  # per window: the model's outputs for it
    duration: float | None = None  # set once decoding finished
    cut: bool = False

    @property
    def complete(self) -> bool:
        return self.duration is not None and len(self.outputs) == len(self.starts)

    def stacked(self) -> dict[str, np.ndarray]:
        """The windows' outputs, each field stacked over windows."""
        return {key: np.stack([window[key] for window in self.outputs]) for key in self.outputs[0]}


def file_error(path: str, exc: BaseException) -> tuple[AudioError, str | None]:
    """The one-line AudioError an exception while reading `path` becomes, and the traceback text
    when it is a bug of Sentio's own. What Sentio's innermost frame called decides: a decoder
    library raising says the file is one it cannot read; anything else (Sentio's own code, or
    numpy or torch as Sentio called them) is a bug to fix, shown with its traceback."""
    if isinstance(exc, AudioError):
        return exc, None
    if isinstance(exc, SentioError):
        return AudioError(path, exc.one_line()), None
    if isinstance(exc, OSError):  # e.g. a permission error the decoder did not wrap
        return AudioError(path, exc.strerror or str(exc) or type(exc).__name__), None
    if isinstance(exc, MemoryError):
        return AudioError(path, "not enough memory to decode it"), None
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [i for i, frame in enumerate(frames) if frame.filename.startswith(_SENTIO)]
    callee = frames[ours[-1] + 1] if ours and ours[-1] + 1 < len(frames) else None
    text = (str(exc).strip().splitlines() or [""])[0]
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if callee is not None and _DECODERS & {part.removesuffix(".py") for part in Path(callee.filename).parts}:
        return AudioError(path, f"cannot decode ({what})"), None
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return AudioError(path, f"internal error ({what}): a bug in Sentio, its traceback is above"), trace


class _Decoders:
    """Threads that turn files into window chunks on a bounded queue, each file in order. Threads,
    not processes: decoding, resampling and the features release the GIL, and one process keeps
    one copy of torch in memory. A thread stuck in a decoder cannot be stopped from Python: its
    file is given up (`overdue`), the thread is left to itself and a new one takes its place."""

    def __init__(self, predictor: LibraryPredictor, paths: list[str], num_workers: int,
                 on_start: Callable[[str], None] | None = None) -> None:
        self.extractor = predictor.extractor
        self.max_duration = predictor.max_duration
        self.paths = paths
        self.queue: queue.Queue[_Decoded] = queue.Queue(maxsize=CHUNKS_PER_WORKER * num_workers)
        self.todo: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        for item in enumerate(paths):
            self.todo.put(item)
        self.stop = threading.Event()
        self.on_start = on_start
        self.lock = threading.Lock()
        self.busy: dict[int, tuple[int, float]] = {}  # thread id -> (file index, since) while inside a decoder
        self.abandoned: set[int] = set()  # files given up: what their threads send is dropped
        self.retired: set[int] = set()  # threads left stuck in a decoder
        # torch only where the model or its features loaded it (an ONNX model's numpy features do not)
        self.torch = sys.modules.get("torch")
        self.torch_threads = self.torch.get_num_threads() if self.torch else 0  # what later threads get again
        self.threads: list[threading.Thread] = []
        for _ in range(num_workers):
            self._start_thread()

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._work, name=f"sentio-decode-{len(self.threads)}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def _work(self) -> None:
        # Features on one torch thread each: the decoding threads are the parallelism, and torch's
        # own threads inside each would fight over the same cores (tens of times slower when busy).
        if self.torch:
            self.torch.set_num_threads(1)
        while not self.stop.is_set():
            try:
                index, path = self.todo.get_nowait()
            except queue.Empty:
                return
            self._decode(index, path)
            if threading.get_ident() in self.retired:
                return

    def _decode(self, index: int, path: str) -> None:
        try:
            if self.on_start is not None:
                self.on_start(path)
            before = _stat(path)
            stream = WindowStream(self.extractor, path, max_duration=self.max_duration)
            chunks = iter(stream)
            while True:
                with self.lock:
                    self.busy[threading.get_ident()] = (index, time.monotonic())
                try:
                    windows = next(chunks)
                except StopIteration:
                    break
                finally:
                    with self.lock:
                        self.busy.pop(threading.get_ident(), None)
                if not self._put(_Decoded(index, windows=windows)):
                    return
            if _stat(path) != before:  # replaced or rewritten while it was read: its key would lie
                raise AudioError(path, "changed while it was read: rerun to predict its new content")
            self._put(_Decoded(index, duration=stream.duration, cut=stream.cut))
        except Exception as exc:
            self._put(_Decoded(index, error=exc))

    def _put(self, message: _Decoded) -> bool:
        while not self.stop.is_set() and message.index not in self.abandoned:
            try:
                self.queue.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def overdue(self, limit: float) -> list[int]:
        """Give up the files whose decoder has given nothing for `limit` seconds; a new thread
        replaces each stuck one."""
        now = time.monotonic()
        with self.lock:
            stuck = [(ident, index) for ident, (index, since) in self.busy.items() if now - since > limit]
            for ident, index in stuck:
                del self.busy[ident]
                self.abandoned.add(index)
                self.retired.add(ident)
        for _ in stuck:
            self._start_thread()
        return [index for _, index in stuck]

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            if thread.ident not in self.retired:
                thread.join()
        if self.torch:
            self.torch.set_num_threads(self.torch_threads)  # a thread's setting is also the default of new threads


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class _Progress:
    """A files bar (tqdm's files/s) with the audio hours predicted per second beside it."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, desc="predict", unit="file", disable=not enabled, dynamic_ncols=True)
        self.started = time.monotonic()
        self.seconds = 0.0

    def update(self, outcome: FileOutcome) -> None:
        if self.bar.disable:
            return
        self.seconds += outcome.duration
        hours_per_s = self.seconds / 3600 / max(time.monotonic() - self.started, 1e-6)
        with STDERR.free():
            self.bar.set_postfix_str(f"{hours_per_s:.3g} audio-h/s", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        with STDERR.free():
            self.bar.close()


def predict_library(predictor: LibraryPredictor, paths: Iterable[str | os.PathLike], timeline: bool = False,
                    num_workers: int | None = None, progress: bool = False, file_timeout: float | None = FILE_TIMEOUT_S,
                    on_start: Callable[[str], None] | None = None) -> Iterator[FileOutcome]:
    """Every file's FileOutcome, in the order files finish; an unreadable file gives its AudioError
    and the others go on. `num_workers` decoding threads (default `default_workers()`); a bar on
    stderr with `progress` and more than one file. A file whose decoder gives nothing for
    `file_timeout` seconds (None: no limit) is given up. `on_start(path)` is called just before a
    file is opened (in its decoding thread)."""
    paths = [os.fspath(p) for p in paths]
    if not paths:
        return
    decoders = _Decoders(predictor, paths, num_workers or default_workers(), on_start)
    bar = _Progress(len(paths), progress and len(paths) > 1)
    try:
        for outcome in _predict(predictor, paths, decoders, timeline, file_timeout):
            bar.update(outcome)
            yield outcome
    finally:
        decoders.close()
        bar.close()


def _predict(predictor: LibraryPredictor, paths: list[str], decoders: _Decoders,
             timeline: bool, file_timeout: float | None) -> Iterator[FileOutcome]:
    files: dict[int, _InFlight] = {}
    batch: list[tuple[int, dict[str, Any]]] = []  # (file index, window item)
    name, size = predictor.extractor.feature_name, predictor.batch_size
    ended = 0
    while ended < len(paths):
        try:
            message = decoders.queue.get(timeout=min(1.0, file_timeout) if file_timeout else None)
        except queue.Empty:
            message = None
        if file_timeout:
            for index in decoders.overdue(file_timeout):
                ended += 1
                files.pop(index, None)  # windows of it still in the batch are dropped when predicted
                yield FileOutcome(paths[index], error=AudioError(
                    paths[index], f"the decoder gave nothing for {file_timeout:g} s: skipped (see --file_timeout)"))
        if message is None or message.index in decoders.abandoned:
            continue
        state = files.setdefault(message.index, _InFlight(paths[message.index]))
        if message.windows is not None:
            state.starts.extend(float(s) for s in message.windows["start"])
            batch.extend((message.index, item) for item in window_items(message.windows, name))
            while len(batch) >= size:
                _forward(predictor, batch[:size], files)
                batch = batch[size:]
        elif message.error is not None:
            ended += 1
            del files[message.index]  # windows of it still in the batch are dropped when predicted
            error, trace = file_error(state.path, message.error)
            yield FileOutcome(state.path, error=error, traceback=trace)
        else:
            ended += 1
            state.duration, state.cut = message.duration, message.cut
        yield from _finished(files, timeline, predictor.results)
    if batch:
        _forward(predictor, batch, files)
    yield from _finished(files, timeline, predictor.results)


def _forward(predictor: LibraryPredictor, batch: list[tuple[int, dict[str, Any]]], files: dict[int, _InFlight]) -> None:
    """One forward over a batch of windows from any files; each file collects its windows' outputs."""
    batches = batches_of((item for _, item in batch), predictor.collate, len(batch))
    outputs = run_batches(predictor.runner, batches)
    for row, (index, _) in enumerate(batch):
        if index in files:
            files[index].outputs.append({key: value[row] for key, value in outputs.items()})


def _finished(files: dict[int, _InFlight], timeline: bool, results: "ResultBuilder") -> Iterator[FileOutcome]:
    for index in [i for i, state in files.items() if state.complete]:
        state = files.pop(index)
        try:
            result = results(state.stacked(), np.asarray(state.starts, dtype=np.float64), timeline, state.duration)
        except Exception as exc:  # one file's summary failing ends that file, not the run
            error, trace = file_error(state.path, exc)
            yield FileOutcome(state.path, error=error, traceback=trace)
            continue
        if state.cut:
            result["cut_at"] = state.duration
        yield FileOutcome(state.path, result=result, duration=state.duration or 0.0, cut=state.cut)


