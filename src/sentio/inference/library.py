"""Predicting a music library: thousands of files, fast, resumably and in constant memory.

- `predict_library`: threads decode files into windows (`WindowStream`) while the model runs;
  windows of several files share a batch, one forward per batch; a file's result comes out as
  soon as its last window is predicted. Memory is bounded by the batch and a few chunks of
  windows per thread, whatever the files' lengths.
- `ResultLog`: a .csv or .jsonl output that grows as files finish and tells which files a
  previous run finished (keyed by path, size and modification time), so a rerun skips them. A
  kill loses at most the files in flight; a record it cut short is dropped on the rerun.
- `write_tags`: valence, arousal and quadrant into a file's own tags, with mutagen.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from ..features.audio import STDERR, AudioError
from ..data.labels import from_unit, quadrant
from ..errors import OutputError
from .predictor import Result, ResultBuilder
from .runner import batches_of, run_batches
from .stream import Windows, WindowStream, window_items

if TYPE_CHECKING:
    from .predictor import EmotionPredictor

COLUMNS = ["file", "valence", "arousal", "valence_1_9", "arousal_1_9", "quadrant", "num_windows"]
KEY_COLUMNS = ["size_bytes", "mtime_ns"]  # with `file`: what makes a file done for a rerun
TIMELINE_KIND = "kind"  # --timeline CSV: what a row is (file, window or curve)
TAG_NAMES = {"valence": "SENTIO_VALENCE", "arousal": "SENTIO_AROUSAL", "quadrant": "SENTIO_QUADRANT"}
CHUNKS_PER_WORKER = 2  # decoded chunks waiting per thread: decoding runs ahead of the model this far


def default_workers() -> int:
    """Decoding threads: one per CPU core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class FileOutcome:
    """One file's end: its result, or the AudioError that stopped it, and the seconds of audio decoded."""

    path: str
    result: Result | None = None
    error: AudioError | None = None
    duration: float = 0.0


@dataclass
class _Decoded:
    """What a decoding thread sends: windows of file `index`, or the file's end (its duration or its error)."""

    index: int
    windows: Windows | None = None
    duration: float | None = None
    error: BaseException | None = None


@dataclass
class _InFlight:
    """A file whose windows are being predicted."""

    path: str
    starts: list[float] = field(default_factory=list)
    outputs: list[dict[str, np.ndarray]] = field(default_factory=list)  # per window: the model's outputs for it
    duration: float | None = None  # set once decoding finished

    @property
    def complete(self) -> bool:
        return self.duration is not None and len(self.outputs) == len(self.starts)

    def stacked(self) -> dict[str, np.ndarray]:
        """The windows' outputs, each field stacked over windows."""
        return {key: np.stack([window[key] for window in self.outputs]) for key in self.outputs[0]}


class _Decoders:
    """Threads that turn files into window chunks on a bounded queue, each file in order. Threads,
    not processes: decoding, resampling and the features release the GIL, and one process keeps
    one copy of torch in memory."""

    def __init__(self, predictor: "EmotionPredictor", paths: list[str], num_workers: int) -> None:
        self.extractor = predictor.extractor
        self.queue: queue.Queue[_Decoded] = queue.Queue(maxsize=CHUNKS_PER_WORKER * num_workers)
        self.todo: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        for item in enumerate(paths):
            self.todo.put(item)
        self.stop = threading.Event()
        self.torch_threads = torch.get_num_threads()  # what threads started later should get again
        self.threads = [threading.Thread(target=self._work, name=f"sentio-decode-{i}", daemon=True)
                        for i in range(num_workers)]
        for thread in self.threads:
            thread.start()

    def _work(self) -> None:
        # Features on one torch thread each: the decoding threads are the parallelism, and torch's
        # own threads inside each would fight over the same cores (tens of times slower when busy).
        torch.set_num_threads(1)
        while not self.stop.is_set():
            try:
                index, path = self.todo.get_nowait()
            except queue.Empty:
                return
            self._decode(index, path)

    def _decode(self, index: int, path: str) -> None:
        stream = WindowStream(self.extractor, path)
        try:
            for windows in stream:
                if not self._put(_Decoded(index, windows=windows)):
                    return
            self._put(_Decoded(index, duration=stream.duration))
        except AudioError as exc:
            self._put(_Decoded(index, error=exc))
        except OSError as exc:  # e.g. a permission error the decoder did not wrap
            self._put(_Decoded(index, error=AudioError(path, exc.strerror or str(exc))))
        except Exception as exc:  # a bug: the consumer re-raises it with its traceback
            self._put(_Decoded(index, error=exc))

    def _put(self, message: _Decoded) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()
        torch.set_num_threads(self.torch_threads)  # a thread's setting is also the default of new threads


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


def predict_library(predictor: "EmotionPredictor", paths: Iterable[str | os.PathLike], timeline: bool = False,
                    num_workers: int | None = None, progress: bool = False) -> Iterator[FileOutcome]:
    """Every file's FileOutcome, in the order files finish; an unreadable file gives its AudioError
    and the others go on. `num_workers` decoding threads (default `default_workers()`); a bar on
    stderr with `progress` and more than one file."""
    paths = [os.fspath(p) for p in paths]
    if not paths:
        return
    decoders = _Decoders(predictor, paths, num_workers or default_workers())
    bar = _Progress(len(paths), progress and len(paths) > 1)
    try:
        for outcome in _predict(predictor, paths, decoders, timeline):
            bar.update(outcome)
            yield outcome
    finally:
        decoders.close()
        bar.close()


def _predict(predictor: "EmotionPredictor", paths: list[str], decoders: _Decoders,
             timeline: bool) -> Iterator[FileOutcome]:
    files: dict[int, _InFlight] = {}
    batch: list[tuple[int, dict[str, Any]]] = []  # (file index, window item)
    name, size = predictor.extractor.feature_name, predictor.batch_size
    ended = 0
    while ended < len(paths):
        message = decoders.queue.get()
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
            if not isinstance(message.error, AudioError):
                raise message.error
            yield FileOutcome(state.path, error=message.error)
        else:
            ended += 1
            state.duration = message.duration
        yield from _finished(files, timeline, predictor.results)
    if batch:
        _forward(predictor, batch, files)
    yield from _finished(files, timeline, predictor.results)


def _forward(predictor: "EmotionPredictor", batch: list[tuple[int, dict[str, Any]]], files: dict[int, _InFlight]) -> None:
    """One forward over a batch of windows from any files; each file collects its windows' outputs."""
    batches = batches_of((item for _, item in batch), predictor.collate, len(batch))
    outputs = run_batches(predictor.runner, batches)
    for row, (index, _) in enumerate(batch):
        if index in files:
            files[index].outputs.append({key: value[row] for key, value in outputs.items()})


def _finished(files: dict[int, _InFlight], timeline: bool, results: "ResultBuilder") -> Iterator[FileOutcome]:
    for index in [i for i, state in files.items() if state.complete]:
        state = files.pop(index)
        result = results(state.stacked(), np.asarray(state.starts, dtype=np.float64), timeline, state.duration)
        yield FileOutcome(state.path, result=result, duration=state.duration or 0.0)


# ---- outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileKey:
    """A file as a previous run saw it: a changed or replaced file is predicted again."""

    path: str
    size_bytes: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str) -> "FileKey | None":
        """The key of `path` now, or None when it cannot be read (it is then predicted and reported)."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return cls(path, stat.st_size, stat.st_mtime_ns)

    def columns(self) -> dict[str, int]:
        return {"size_bytes": self.size_bytes, "mtime_ns": self.mtime_ns}


def optional_fields(result: Result) -> dict[str, Any]:
    """The optional fields of a result as flat CSV columns: `scale`, `<dim>_spread`,
    `<dim>_low_<level>` / `<dim>_high_<level>` (intervals) and `p_<quadrant>`, those present."""
    out: dict[str, Any] = {}
    if "scale" in result:
        out["scale"] = result["scale"]
    for dim, sd in result.get("spread", {}).items():
        out[f"{dim}_spread"] = sd
    for level, dims in result.get("intervals", {}).items():
        for dim, (low, high) in dims.items():
            out[f"{dim}_low_{level}"], out[f"{dim}_high_{level}"] = low, high
    for name, p in result.get("quadrant_probabilities", {}).items():
        out[f"p_{name}"] = p
    return out


def _point_row(path: str, column: str, time_s: float, valence: float, arousal: float) -> dict[str, Any]:
    return {"file": path, column: time_s, "valence": valence, "arousal": arousal,
            "valence_1_9": float(from_unit(valence)), "arousal_1_9": float(from_unit(arousal)),
            "quadrant": str(quadrant(valence, arousal))}


def csv_rows(path: str, result: Result, timeline: bool, key: FileKey | None = None) -> list[dict[str, Any]]:
    """The file's row (with its optional fields and `key`), then with `timeline` one row per window
    (`start`) and one per point of a 2 Hz curve (`time`); floats with 6 decimals."""

    def fmt(values: dict[str, Any]) -> dict[str, Any]:
        return {k: f"{v:.6f}" if isinstance(v, float) else v for k, v in values.items()}

    row = {"file": path, **{c: result[c] for c in COLUMNS[1:]}, **optional_fields(result)}
    kind = (lambda name: {"kind": name}) if timeline else (lambda name: {})  # noqa: E731  (a timeline's rows say theirs)
    rows = [fmt({**row, **(key.columns() if key else {}), **kind("file")})]
    if timeline:
        rows += [fmt({**_point_row(path, "start", w["start"], w["valence"], w["arousal"]), **kind("window")})
                 for w in result.get("timeline", [])]
        curve = result.get("curve") or {"times": [], "valence": [], "arousal": []}
        rows += [fmt({**_point_row(path, "time", float(t), float(v), float(a)), **kind("curve")})
                 for t, v, a in zip(curve["times"], curve["valence"], curve["arousal"])]
    return rows


def csv_columns(result: Result, timeline: bool, keyed: bool) -> list[str]:
    """The header a file of results like `result` gets (its optional fields decide the extra columns)."""
    points = (["start"] + (["time"] if "curve" in result else [])) if timeline else []
    # a timeline's `kind` (file, window, curve) goes last: the columns before it stay where they were
    return (COLUMNS[:1] + points + COLUMNS[1:] + list(optional_fields(result)) + (KEY_COLUMNS if keyed else [])
            + ([TIMELINE_KIND] if timeline else []))


def record(path: str, result: Result) -> dict[str, Any]:
    """The JSON record of one file (what predict.py writes for it)."""
    return {"file": path, **result}


class CsvWriter:
    """CSV rows of finished files on a text stream; the header comes with the first file, whose
    optional fields decide the columns. With `keyed`, each file row carries its FileKey."""

    def __init__(self, sink: IO[str], timeline: bool, keyed: bool = False, header: list[str] | None = None,
                 name: str = "the output") -> None:
        self.sink, self.timeline, self.keyed, self.header, self.name = sink, timeline, keyed, header, name

    def write(self, path: str, result: Result, key: FileKey | None = None) -> None:
        columns = csv_columns(result, self.timeline, self.keyed)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns)
        if self.header is None:
            writer.writeheader()
            self.header = columns
        elif self.header != columns:
            raise OutputError(f"{self.name} has the columns {','.join(self.header)}; this run writes "
                              f"{','.join(columns)}: write to another --output")
        writer.writerows(csv_rows(path, result, self.timeline, key if self.keyed else None))
        self.sink.write(text.getvalue())  # one write per file: a kill cuts at most this file's rows
        self.sink.flush()


class JsonlWriter:
    """One JSON record per line per finished file, with its FileKey."""

    def __init__(self, sink: IO[str]) -> None:
        self.sink = sink

    def write(self, path: str, result: Result, key: FileKey | None = None) -> None:
        fields = key.columns() if key else {}
        self.sink.write(json.dumps({**record(path, result), **fields}) + "\n")
        self.sink.flush()


def _whole_lines(data: bytes) -> list[bytes]:
    """`data` cut after each newline; a last piece without one was cut short by a kill and is left out."""
    return [line + b"\n" for line in data.split(b"\n")[:-1]]


def _done_jsonl(data: bytes, name: str, timeline: bool) -> tuple[set[FileKey], int]:
    """(keys of the records, bytes they take)."""
    done, kept = set(), 0
    for number, line in enumerate(_whole_lines(data), 1):
        try:
            item = json.loads(line)
            key = FileKey(item["file"], int(item["size_bytes"]), int(item["mtime_ns"]))
        except (ValueError, KeyError, TypeError):
            raise OutputError(f"{name} line {number} is not a record predict.py wrote: write to another --output") from None
        if number == 1 and ("timeline" in item) != timeline:
            raise _other_timeline(name, "timeline" in item)
        done.add(key)
        kept += len(line)
    return done, kept


def _other_timeline(name: str, had: bool) -> OutputError:
    return OutputError(f"{name} was written {'with' if had else 'without'} --timeline: rerun the same way "
                       "or write to another --output")


@dataclass
class _Group:
    """One file's rows in a CSV output: its row, then (with a timeline) its window and curve rows."""

    key: FileKey
    first_line: int
    windows: int  # window rows its row announces (0 without a timeline)
    seen: int = 0

    @property
    def complete(self) -> bool:
        return self.seen == self.windows


def _done_csv(data: bytes, name: str, timeline: bool) -> tuple[list[str] | None, set[FileKey], int]:
    """(header, keys of the complete files, bytes to keep); only the last file's rows may be cut short."""
    lines = _whole_lines(data)
    if not lines:
        return None, set(), 0
    offsets = np.cumsum([0] + [len(line) for line in lines])
    reader = csv.reader(line.decode("utf-8", errors="replace") for line in lines)
    header = next(reader)
    if not {"file", "num_windows", *KEY_COLUMNS} <= set(header):
        raise OutputError(f"{name} was not written by predict.py --output (no {'/'.join(KEY_COLUMNS)} columns): "
                          "write to another --output")
    if ("start" in header) != timeline:
        raise _other_timeline(name, "start" in header)
    column = {c: i for i, c in enumerate(header)}
    points = [column[c] for c in ("start", "time") if c in column]
    groups: list[_Group] = []
    line = reader.line_num
    try:
        for row in reader:
            if len(row) != len(header):
                raise csv.Error("a row of another width")
            if not any(row[i] for i in points):
                key = FileKey(row[column["file"]], int(row[column["size_bytes"]]), int(row[column["mtime_ns"]]))
                groups.append(_Group(key, line, int(row[column["num_windows"]]) if timeline else 0))
            elif groups and timeline and row[column["start"]]:
                groups[-1].seen += 1
            line = reader.line_num
    except (csv.Error, ValueError):
        if reader.line_num < len(lines):  # not the end a kill leaves: an edit by something else
            raise OutputError(f"{name} line {line + 1} is not a row predict.py wrote: write to another --output") from None
    kept = int(offsets[line])
    if groups and not groups[-1].complete:  # the last file's window rows were cut short: redo it
        kept = int(offsets[groups.pop().first_line])
    return header, {g.key for g in groups}, kept


class ResultLog:
    """A .csv or .jsonl output that grows as files finish. Opening it reads which files a previous
    run finished (`done`) and drops a record a kill cut short; `write` appends one file's record."""

    def __init__(self, path: str | os.PathLike, timeline: bool) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise OutputError(f"--output {path}: folder {self.path.parent} does not exist")
        if self.path.is_dir():
            raise OutputError(f"--output {path} is a folder: name a .csv or .jsonl file")
        data = self.path.read_bytes() if self.path.is_file() else b""
        jsonl = self.path.suffix.lower() == ".jsonl"
        if jsonl:
            self.done, kept = _done_jsonl(data, str(path), timeline)
        else:
            header, self.done, kept = _done_csv(data, str(path), timeline)
        if kept < len(data):
            os.truncate(self.path, kept)
        self.sink = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        self.writer = JsonlWriter(self.sink) if jsonl else CsvWriter(self.sink, timeline, True, header, str(path))

    def write(self, path: str, result: Result, key: FileKey | None) -> None:
        self.writer.write(path, result, key)

    def close(self) -> None:
        self.sink.close()


# ---- tags ---------------------------------------------------------------------------------------


def tag_values(result: Result) -> dict[str, str]:
    """The tag texts of a result: valence and arousal on [-1, 1] (4 decimals) and the quadrant."""
    return {TAG_NAMES["valence"]: f"{result['valence']:.4f}", TAG_NAMES["arousal"]: f"{result['arousal']:.4f}",
            TAG_NAMES["quadrant"]: str(result["quadrant"])}


def write_tags(path: str, result: Result) -> None:
    """Write valence, arousal and quadrant into the file's own tags, leaving the audio data as it
    is: ID3 TXXX frames (MP3, WAV, AIFF), Vorbis comments (OGG, Opus, FLAC), MP4 freeform atoms
    (M4A). Raises AudioError (one line) for a file mutagen cannot tag."""
    import mutagen
    from mutagen._vorbis import VCommentDict
    from mutagen.id3 import ID3, TXXX
    from mutagen.mp4 import MP4FreeForm, MP4Tags

    try:
        audio = mutagen.File(path)
        if audio is None:
            raise AudioError(path, "cannot write tags: mutagen does not know this format")
        if audio.tags is None:
            audio.add_tags()
        tags = audio.tags
        for name, value in tag_values(result).items():
            if isinstance(tags, ID3):
                tags.setall(f"TXXX:{name}", [TXXX(encoding=3, desc=name, text=[value])])
            elif isinstance(tags, MP4Tags):
                tags[f"----:com.apple.iTunes:{name}"] = [MP4FreeForm(value.encode())]
            elif isinstance(tags, VCommentDict):
                tags[name] = [value]
            else:
                raise AudioError(path, f"cannot write tags to {type(audio).__name__} files")
        audio.save()
    except (mutagen.MutagenError, OSError) as exc:
        raise AudioError(path, f"cannot write tags ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
