"""Library outputs: CSV and JSONL files that grow as files finish and resume after a kill.

- `ResultLog`: a .csv or .jsonl output that tells which files a previous run finished (keyed by
  path, size and modification time), so a rerun skips them. A kill loses at most the files in
  flight; a record it cut short is dropped on the rerun. A full disk ends the run with one line
  and the records already written stay whole.
- `merge_parts`: the part files of a run over several processes appended to the one output.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable

import numpy as np

from ..data.labels import from_unit, quadrant
from ..errors import OutputError
from .results import Result

COLUMNS = ["file", "valence", "arousal", "valence_1_9", "arousal_1_9", "quadrant", "num_windows"]
KEY_COLUMNS = ["size_bytes", "mtime_ns"]  # with `file`: what makes a file done for a rerun
TIMELINE_KIND = "kind"  # --timeline CSV: what a row is (file, window or curve)

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


Segment = tuple[FileKey, int, int]  # a file's record: its key and the byte range it takes in the output


def _done_jsonl(data: bytes, name: str, timeline: bool) -> tuple[list[Segment], int]:
    """(the records' segments, bytes they take)."""
    done: list[Segment] = []
    kept = 0
    for number, line in enumerate(_whole_lines(data), 1):
        try:
            item = json.loads(line)
            key = FileKey(item["file"], int(item["size_bytes"]), int(item["mtime_ns"]))
        except (ValueError, KeyError, TypeError):
            raise OutputError(f"{name} line {number} is not a record predict.py wrote: write to another --output") from None
        if number == 1 and ("timeline" in item) != timeline:
            raise _other_timeline(name, "timeline" in item)
        done.append((key, kept, kept + len(line)))
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


def _done_csv(data: bytes, name: str, timeline: bool) -> tuple[list[str] | None, list[Segment], int]:
    """(header, segments of the complete files, bytes to keep); only the last file's rows may be cut short."""
    lines = _whole_lines(data)
    if not lines:
        return None, [], 0
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
    ends = [int(offsets[g.first_line]) for g in groups[1:]] + [kept]
    return header, [(g.key, int(offsets[g.first_line]), end) for g, end in zip(groups, ends)], kept


def _parse(path: Path, timeline: bool) -> tuple[bytes, list[str] | None, list[Segment], int]:
    """(the file's bytes, its CSV header, its records' segments, bytes to keep) of an output or part file."""
    data = path.read_bytes() if path.is_file() else b""
    if path.suffix.lower() == ".jsonl":
        segments, kept = _done_jsonl(data, str(path), timeline)
        return data, None, segments, kept
    header, segments, kept = _done_csv(data, str(path), timeline)
    return data, header, segments, kept


class _Appender:
    """A text sink that appends each write whole or not at all: a failed write (a full disk, a
    size limit) is cut back off the file and ends the run with one line, so the records already
    there stay readable and the rerun resumes after them. By hand: a buffered text file keeps
    the part it could not write and tries it again on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        start = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            try:
                os.ftruncate(self.fd, start)  # shrinking works on a full disk
            except OSError:
                pass  # the rerun drops the cut record
            raise OutputError(f"cannot write to {self.path} ({exc.strerror or exc}): make room and rerun; "
                              "the files written before are kept and not predicted again") from None

    def flush(self) -> None:
        """Every write already went to the file."""

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.fsync(self.fd)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1


class ResultLog:
    """A .csv or .jsonl output that grows as files finish. Opening it reads which files a previous
    run finished (`done`) and drops a record a kill cut short; `write` appends one file's record."""

    def __init__(self, path: str | os.PathLike, timeline: bool) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise OutputError(f"--output {path}: folder {self.path.parent} does not exist")
        if self.path.is_dir():
            raise OutputError(f"--output {path} is a folder: name a .csv or .jsonl file")
        data, header, segments, kept = _parse(self.path, timeline)
        self.done = {key for key, _, _ in segments}
        if kept < len(data):
            os.truncate(self.path, kept)
        self.sink = _Appender(self.path)
        jsonl = self.path.suffix.lower() == ".jsonl"
        self.writer = JsonlWriter(self.sink) if jsonl else CsvWriter(self.sink, timeline, True, header, str(path))

    def write(self, path: str, result: Result, key: FileKey | None) -> None:
        self.writer.write(path, result, key)

    def close(self) -> None:
        self.sink.close()


def done_in(path: str | os.PathLike, timeline: bool) -> set[FileKey]:
    """The files an output or part file holds whole (a record cut short is left out), reading only."""
    return {key for key, _, _ in _parse(Path(path), timeline)[2]}


def merge_parts(output: str | os.PathLike, parts: Iterable[Path], timeline: bool, order: dict[str, int]) -> int:
    """Append the records of `parts` that `output` lacks to it, sorted by `order` (a file's place in
    the input; others after them), fsync it, then delete the parts. Safe to repeat after a kill
    anywhere: a record already in the output is never appended twice. Returns the records appended."""
    log = ResultLog(output, timeline)
    header = log.writer.header if isinstance(log.writer, CsvWriter) else None
    header_line = b""  # a part's header, written first when the output is new
    have = set(log.done)
    records: list[tuple[int, str, bytes]] = []
    parts = list(parts)
    for part in parts:
        data, part_header, segments, _ = _parse(part, timeline)
        if part_header is not None and header is not None and part_header != header:
            log.close()
            raise OutputError(f"{part} has the columns {','.join(part_header)} and {output} "
                              f"{','.join(header)}: write to another --output")
        if header is None and part_header is not None:
            header, header_line = part_header, data[: data.index(b"\n") + 1]
        for key, start, end in segments:
            if key not in have:
                have.add(key)
                records.append((order.get(key.path, len(order)), key.path, data[start:end]))
    records.sort(key=lambda r: r[:2])
    text = b"".join(r[2] for r in records)
    if text:
        text = header_line + text
    try:
        if text:
            log.sink.write(text.decode("utf-8"))
    finally:
        log.close()
    for part in parts:
        part.unlink(missing_ok=True)
    return len(records)
