"""Dynamic (2 Hz) valence/arousal annotations: reading and checking them, and labelling a window's frames.

Time convention, used everywhere in Sentio: the value at time T describes the audio in
[T - FRAME_SECONDS, T), so DEAM's `sample_15000ms` is the half-second [14.5 s, 15.0 s). It is
expressed once, in `frame_starts`.

Formats read:
- wide (DEAM, EmoMusic, the demo): one file per dimension, `song_id,sample_15000ms,sample_15500ms,...`
  (the time of each column is read from its name), rows padded with empty cells or NaN;
- long (any other dataset, and the `curves.csv` beside a manifest): `song_id` or `path`, `time`
  (seconds), `valence`, `arousal`.
Bad values (not a number, outside the scale, off the 0.5 s grid, outside the audio, duplicate
times, a value without its partner dimension) are skipped and counted by reason, or stop the
run with one line under strict=True.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from .csv_table import CsvFormatError, numbers, read_csv_file, resolve_audio_paths, song_ids
from .labels import check_scale, to_unit

FRAME_SECONDS = 0.5  # one label per half-second (2 Hz)
TIME_TOLERANCE = 1e-3  # seconds: a time within 1 ms of the grid is on it
CURVES_FILE = "curves.csv"
CURVE_COLUMNS = ["song_id", "time", "valence", "arousal"]
TIME_CONVENTION = f"the value at time T describes the audio in [T - {FRAME_SECONDS:g} s, T)"
MAX_EXAMPLES = 5  # per reason in the report: enough to find the pattern without listing thousands
_SAMPLE_COLUMN = re.compile(r"sample_(\d+(?:\.\d+)?)ms")


@dataclass(eq=False)
class Curve:
    """One song's dynamic labels: times [K] in seconds (float64, increasing) and values [K, 2]
    (valence, arousal) on [-1, 1] (float32)."""

    times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


def frame_starts(times) -> np.ndarray:
    """Start of the half-second each label describes: the value at T covers [T - FRAME_SECONDS, T)."""
    return np.asarray(times, dtype=np.float64) - FRAME_SECONDS


def on_grid(times) -> np.ndarray:
    """Whether each time is a multiple of FRAME_SECONDS (within TIME_TOLERANCE)."""
    steps = np.asarray(times, dtype=np.float64) / FRAME_SECONDS
    return np.abs(steps - np.round(steps)) * FRAME_SECONDS <= TIME_TOLERANCE


def frames_in_window(window_seconds: float) -> int:
    """Whole label frames in a window (the epsilon keeps float error such as 2.9999999999999996 s from losing a frame)."""
    return math.floor(window_seconds / FRAME_SECONDS + 1e-6)


def frame_labels(curve: Curve | None, window_start: float, num_frames: int) -> np.ndarray:
    """[num_frames, 2] float32 labels of a window's half-second frames, NaN where the curve has none.

    Frame j is [window_start + 0.5 j, window_start + 0.5 (j + 1)), labelled by the curve's value at
    window_start + 0.5 (j + 1). Windows must start on the 0.5 s grid (a bug otherwise: ValueError).
    """
    if not on_grid(window_start):
        raise ValueError(f"window start {window_start!r} s is not on the {FRAME_SECONDS:g} s grid of the dynamic labels")
    out = np.full((num_frames, 2), np.nan, dtype=np.float32)
    if curve is None or not len(curve):
        return out
    wanted = window_start + FRAME_SECONDS * np.arange(num_frames)
    starts = frame_starts(curve.times)
    index = np.minimum(np.searchsorted(starts, wanted - TIME_TOLERANCE), len(starts) - 1)
    hit = np.abs(starts[index] - wanted) <= TIME_TOLERANCE
    out[hit] = curve.values[index[hit]]
    return out


def window_frame_times(window_start: float, num_frames: int) -> np.ndarray:
    """The label times of a window's frames: frame j is labelled at window_start + 0.5 (j + 1)."""
    return window_start + FRAME_SECONDS * (np.arange(num_frames) + 1)


def stitch_frames(song_ids: Sequence[str], starts: Sequence[float], values: np.ndarray,
                  mask: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per song, (label times [K], values [K, D]) from per-window frame values [N, F, D] (windows
    overlap when the hop is shorter than the window): each label time gets the mean of every window
    frame at that time; frames where `mask` [N, F] is False (padding) are left out. Songs in
    first-seen order."""
    values = np.asarray(values, np.float64)
    frames = values.shape[1]
    mask = np.ones(values.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    sums: dict[str, dict[int, np.ndarray]] = {}
    counts: dict[str, dict[int, int]] = {}
    for song, start, window, keep in zip(song_ids, starts, values, mask):
        # integer half-second steps: exact dictionary keys, no float comparison
        steps = np.round(window_frame_times(float(start), frames) / FRAME_SECONDS).astype(np.int64)
        song_sums, song_counts = sums.setdefault(str(song), {}), counts.setdefault(str(song), {})
        for step, value, ok in zip(steps, window, keep):
            if ok:
                song_sums[int(step)] = song_sums.get(int(step), 0.0) + value
                song_counts[int(step)] = song_counts.get(int(step), 0) + 1
    out = {}
    for song, song_sums in sums.items():
        steps = sorted(song_sums)
        stitched = np.asarray([song_sums[k] / counts[song][k] for k in steps]).reshape(len(steps), values.shape[2])
        out[song] = (np.asarray(steps, np.float64) * FRAME_SECONDS, stitched)
    return out


def stitch_labelled(song_ids: Sequence[str], starts: Sequence[float], frame_predictions: np.ndarray,
                    frame_mask: np.ndarray, frame_labels: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per song with a labelled frame, (label times [K], predicted curve [K, D], label curve [K, D]):
    the windows' frame predictions [N, F, D] and frame labels stitched alike (stitch_frames) over
    the frames that are real (`frame_mask` [N, F]) and labelled (finite labels). Training's and
    evaluation's 2 Hz scores both read their curves from here."""
    labelled = np.asarray(frame_mask, bool) & np.isfinite(frame_labels).all(axis=-1)
    both = np.concatenate([np.asarray(frame_predictions, np.float64), np.asarray(frame_labels, np.float64)], axis=-1)
    split = np.shape(frame_predictions)[-1]
    return {song: (times, values[:, :split], values[:, split:])
            for song, (times, values) in stitch_frames(song_ids, starts, both, labelled).items() if len(times)}


@dataclass
class DynamicReport:
    """What the 2 Hz annotations gave: data_report.json's `dynamic` section."""

    files: list[str]
    label_scale: str
    songs_with_curve: int
    frames_kept: int
    frames_skipped_by_reason: dict[str, int]
    examples: list[dict]
    songs_not_in_manifest: int = 0

    @property
    def frames_skipped(self) -> int:
        return sum(self.frames_skipped_by_reason.values())

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "label_scale": self.label_scale,
            "labels_in_curves": "[-1, 1]",
            "time_convention": TIME_CONVENTION,
            "songs_with_curve": self.songs_with_curve,
            "frames_kept": self.frames_kept,
            "frames_skipped": self.frames_skipped,
            "frames_skipped_by_reason": self.frames_skipped_by_reason,
            "songs_not_in_manifest": self.songs_not_in_manifest,
            "examples": self.examples,
        }


@dataclass
class DynamicTable:
    """2 Hz annotations as read, one row per annotated (song, time) in file order.

    `frames` columns: key (song id, or the resolved audio path of a long CSV with paths), time (s),
    valence, arousal (on `label_scale`), file, line, column (where the value is), detail (the bad
    value, for messages) and problem ('' for a usable frame, else the reason it is skipped).
    """

    frames: pd.DataFrame
    files: list[str]
    label_scale: str
    by_path: bool = False

    def curves(self, songs: pd.DataFrame | None = None, strict: bool = False) -> tuple[dict[str, Curve], DynamicReport]:
        """One Curve per song (values on [-1, 1]) and the report of what was skipped.

        With `songs` (a manifest: song_id, path, duration) only its songs are kept, paths are matched
        to its song ids, and frames whose half-second starts after the audio ends are skipped. With
        strict=True the first bad frame raises DataError.
        """
        frames = self.frames
        not_in_manifest = 0
        if songs is not None:
            frames = frames.copy()
            index = songs.set_index(songs["path" if self.by_path else "song_id"].astype(str))
            index = index[~index.index.duplicated()]
            known = frames["key"].isin(index.index)
            not_in_manifest = frames.loc[~known, "key"].nunique()
            frames = frames[known].copy()
            duration = frames["key"].map(index["duration"]).to_numpy(np.float64)
            frames["key"] = frames["key"].map(index["song_id"].astype(str))
            outside = (frames["problem"] == "").to_numpy() & (frame_starts(frames["time"]) >= duration)
            frames.loc[outside, "problem"] = "time outside the audio"
            frames.loc[outside, "detail"] = [f"{t:g} s; the audio lasts {d:g} s"
                                             for t, d in zip(frames.loc[outside, "time"], duration[outside])]
        bad = frames[frames["problem"] != ""]
        if strict and len(bad):
            raise DataError(_strict_message(bad.iloc[0]))
        curves = _to_curves(frames[frames["problem"] == ""], self.label_scale)
        report = DynamicReport(
            files=self.files, label_scale=self.label_scale, songs_with_curve=len(curves),
            frames_kept=sum(len(c) for c in curves.values()),
            frames_skipped_by_reason={str(k): int(v) for k, v in bad["problem"].value_counts(sort=False).items()},
            examples=[_example(row) for _, row in bad.groupby("problem", sort=False).head(MAX_EXAMPLES).iterrows()],
            songs_not_in_manifest=int(not_in_manifest),
        )
        return curves, report


def _where(row: pd.Series) -> str:
    return f"{row['file']}:{row['line']}" + (f" column {row['column']}" if row["column"] else "")


def _strict_message(row: pd.Series) -> str:
    detail = f" ({row['detail']})" if row["detail"] else ""
    return f"{_where(row)}: {row['problem']}{detail}; fix or remove the value"


def _example(row: pd.Series) -> dict:
    time = float(row["time"])
    return {"where": _where(row), "song_id": str(row["key"]), "time": None if math.isnan(time) else time,
            "reason": row["problem"], "detail": row["detail"]}


def _to_curves(frames: pd.DataFrame, label_scale: str) -> dict[str, Curve]:
    """Group usable frames by song, sorted by time, with values mapped onto [-1, 1]."""
    if frames.empty:
        return {}
    frames = frames.sort_values(["key", "time"], kind="stable")
    keys = frames["key"].to_numpy()
    times = frames["time"].to_numpy(np.float64)
    values = to_unit(frames[["valence", "arousal"]].to_numpy(np.float64), label_scale).astype(np.float32)
    bounds = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return {str(k[0]): Curve(t, v)
            for k, t, v in zip(np.split(keys, bounds), np.split(times, bounds), np.split(values, bounds))}


def _value_problems(text: pd.Series, label_scale: str) -> tuple[pd.Series, np.ndarray]:
    """Numbers of the cells and, per cell, '' or why it cannot be used."""
    low, high = check_scale(label_scale)
    value = numbers(text.astype(str).str.strip())
    problem = np.where(value.isna(), "not a number",
                       np.where(value.between(low, high), "", f"outside the {low:g}..{high:g} scale"))
    return value, problem


def _check_times(frames: pd.DataFrame) -> pd.DataFrame:
    """Flag usable frames whose time is off the grid, before the audio starts, or repeated; snap the rest onto the grid."""
    usable = frames["problem"] == ""
    grid = on_grid(frames["time"])
    early = frame_starts(frames["time"]) < -TIME_TOLERANCE
    frames.loc[usable & ~grid, "problem"] = f"time off the {FRAME_SECONDS:g} s grid"
    frames.loc[usable & grid & early, "problem"] = "time outside the audio"
    _time_detail(frames, usable & (~grid | early))
    usable = frames["problem"] == ""
    frames.loc[usable, "time"] = np.round(frames.loc[usable, "time"] / FRAME_SECONDS) * FRAME_SECONDS
    repeated = usable & frames[["key", "time"]].where(usable).duplicated()
    frames.loc[repeated, "problem"] = "duplicate time"
    _time_detail(frames, repeated)
    return frames


def _time_detail(frames: pd.DataFrame, rows: pd.Series) -> None:
    frames.loc[rows, "detail"] = [f"{t:g} s" for t in frames.loc[rows, "time"]]


def _column_time(path: Path, column: str) -> float:
    match = _SAMPLE_COLUMN.fullmatch(column)
    if match is None:
        raise CsvFormatError(f"{path}: column {column!r} is not song_id or sample_<ms>ms; "
                             "expected the header song_id,sample_15000ms,sample_15500ms,...")
    return float(match.group(1)) / 1000.0


def _wide_cells(path: Path, label_scale: str) -> pd.DataFrame:
    """The non-empty cells of one dimension's wide file (empty and NaN cells are the padding of shorter songs)."""
    frame = read_csv_file(path, dtype=str)
    if "song_id" not in frame.columns:
        raise CsvFormatError(f"{path}: no song_id column; expected the header song_id,sample_15000ms,sample_15500ms,...")
    columns = [c for c in frame.columns if c != "song_id"]
    times = np.array([_column_time(path, c) for c in columns], dtype=np.float64)
    text = frame[columns].to_numpy(dtype=object)
    rows, cols = np.nonzero(pd.notna(text))  # row-major: file order
    keys = pd.Series(song_ids(frame["song_id"]))
    cells = pd.DataFrame({"key": keys.to_numpy(dtype=object)[rows], "time": times[cols], "file": path.name,
                          "line": rows + 2, "column": np.asarray(columns, dtype=object)[cols]})
    cells["value"], problem = _value_problems(pd.Series(text[rows, cols]), label_scale)
    cells["detail"] = np.where(problem != "", text[rows, cols], "")
    # A repeated row or column cannot be paired with the other dimension: it is skipped as a whole.
    problem = np.where(pd.Series(times).duplicated().to_numpy()[cols], "duplicate time", problem)
    problem = np.where(keys.duplicated().to_numpy()[rows], "duplicate song row", problem)
    cells["problem"] = np.where(keys.to_numpy()[rows] == "", "no song id", problem)
    return cells


_UNPAIRED = ("duplicate song row", "duplicate time", "no song id")


def _pair(valence: pd.DataFrame, arousal: pd.DataFrame) -> pd.DataFrame:
    """One frame per (song, time) from the cells of both dimensions; a value without its partner is skipped."""
    left, right = (cells[~cells["problem"].isin(_UNPAIRED)] for cells in (valence, arousal))
    both = left.merge(right, on=["key", "time"], how="outer", suffixes=("_v", "_a"), sort=False, indicator=True)
    has_v, has_a = both["_merge"] != "right_only", both["_merge"] != "left_only"
    own_v, own_a = both["problem_v"].fillna(""), both["problem_a"].fillna("")
    problem = np.select([own_v != "", own_a != "", ~has_a, ~has_v], [own_v, own_a, "no arousal value", "no valence value"], "")
    from_v = (own_v != "") | ((own_a == "") & has_v)  # the file a frame is reported in: the one with the problem
    frames = pd.DataFrame({"key": both["key"], "time": both["time"], "valence": both["value_v"], "arousal": both["value_a"]})
    for name in ("file", "line", "column", "detail"):
        frames[name] = np.where(from_v, both[f"{name}_v"], both[f"{name}_a"])
    frames["problem"] = problem
    unpaired = [cells[cells["problem"].isin(_UNPAIRED)].rename(columns={"value": dim}) for dim, cells in
                (("valence", valence), ("arousal", arousal))]
    frames = pd.concat([frames, *unpaired], ignore_index=True)
    frames["line"] = frames["line"].astype(int)
    return frames.sort_values("line", kind="stable").reset_index(drop=True)


def read_wide_dynamic(valence_csv: str | Path, arousal_csv: str | Path, label_scale: str = "-1-1") -> DynamicTable:
    """DEAM/EmoMusic-style dynamic files (one per dimension: `song_id,sample_<ms>ms,...`) as a DynamicTable."""
    valence_csv, arousal_csv = Path(valence_csv), Path(arousal_csv)
    frames = _pair(_wide_cells(valence_csv, label_scale), _wide_cells(arousal_csv, label_scale))
    return DynamicTable(_check_times(frames), [str(valence_csv), str(arousal_csv)], label_scale)


def read_long_dynamic(csv_path: str | Path, label_scale: str = "-1-1") -> DynamicTable:
    """A long CSV of dynamic labels as a DynamicTable: `song_id` or `path` (relative to the CSV's
    folder; `song_id` wins when both are there), `time` in seconds, `valence`, `arousal`."""
    csv_path = Path(csv_path)
    frame = read_csv_file(csv_path, dtype=str)
    key_column = next((c for c in ("song_id", "path") if c in frame.columns), None)
    missing = [c for c in ("time", "valence", "arousal") if c not in frame.columns] + ([] if key_column else ["song_id or path"])
    if missing:
        raise CsvFormatError(f"{csv_path}: missing column(s) {missing}; found {list(frame.columns)} "
                             "(dynamic labels need song_id or path, time, valence, arousal)")
    return long_dynamic_table(frame, csv_path, label_scale, key_column)


def long_dynamic_table(frame: pd.DataFrame, csv_path: Path, label_scale: str, key_column: str = "song_id",
                       file_columns: Mapping[str, str] | None = None) -> DynamicTable:
    """A DynamicTable from a long frame read as text with columns `key_column`, time, valence, arousal.
    `file_columns` names each of those as the file spells it, for the report (e.g. PMEmo's `frameTime`)."""
    names = {c: c for c in (key_column, "time", "valence", "arousal")} | dict(file_columns or {})
    raw_keys = frame[key_column].fillna("").astype(str).str.strip()
    by_path = key_column == "path"
    keys = resolve_audio_paths(raw_keys, csv_path.resolve().parent) if by_path else raw_keys.tolist()
    time = numbers(frame["time"].astype(str).str.strip())
    valence, problem_v = _value_problems(frame["valence"], label_scale)
    arousal, problem_a = _value_problems(frame["arousal"], label_scale)
    checks = [(raw_keys == "").to_numpy(), time.isna().to_numpy(), problem_v != "", problem_a != ""]
    frames = pd.DataFrame({
        "key": keys, "time": time, "valence": valence, "arousal": arousal, "file": csv_path.name,
        "line": np.arange(len(frame)) + 2,
        "column": np.select(checks, [names[c] for c in (key_column, "time", "valence", "arousal")], ""),
        "detail": np.select(checks, [raw_keys, *(frame[c].fillna("") for c in ("time", "valence", "arousal"))], ""),
        "problem": np.select(checks, [f"no {key_column}", "time is not a number", problem_v, problem_a], ""),
    })
    return DynamicTable(_check_times(frames), [str(csv_path)], label_scale, by_path=by_path)


def write_curves(curves: Mapping[str, Curve], path: str | Path, song_order: Iterable[str]) -> None:
    """Write the curves of `song_order`'s songs as a long CSV (song_id,time,valence,arousal on [-1, 1])."""
    parts = [pd.DataFrame({"song_id": sid, "time": curves[sid].times, "valence": curves[sid].values[:, 0],
                           "arousal": curves[sid].values[:, 1]}) for sid in song_order]
    pd.concat(parts, ignore_index=True)[CURVE_COLUMNS].to_csv(path, index=False)
