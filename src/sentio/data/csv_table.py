"""CSV files as users have them, and the generic label CSV of `audio path, valence, arousal`
(any dataset that is not DEAM or EmoMusic)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ..errors import DataError, MissingFileError, first_line


class CsvFormatError(DataError):
    """A CSV cannot be parsed or lacks a column Sentio was told to read; the message names file and column."""


def clean_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip the spaces DEAM puts in headers: ' valence_mean' -> 'valence_mean', 'valence_ max_mean' -> 'valence_max_mean'."""
    frame.columns = [re.sub(r"\s+", "", str(c)) for c in frame.columns]
    return frame


def read_csv_file(path: str | Path, **kwargs) -> pd.DataFrame:
    """pd.read_csv with spaces after commas skipped and headers cleaned; a missing or unparsable file
    is one line (MissingFileError, CsvFormatError) instead of a pandas traceback."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: file not found; check the path")
    try:
        frame = pd.read_csv(path, skipinitialspace=True, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CsvFormatError(f"{path}: not a readable CSV ({first_line(exc)}); "
                             "save it as comma-separated UTF-8 text") from None
    return clean_columns(frame)


def numbers(values: pd.Series) -> pd.Series:
    """pd.to_numeric(values, errors="coerce"), which still raises OverflowError on an integer too long
    for a float (a cell of 400 digits): then cell by cell, such a cell becoming inf as float() makes
    it (the row checks refuse it) and anything else that is not a number NaN."""
    try:
        return pd.to_numeric(values, errors="coerce")
    except OverflowError:
        return pd.Series([_number(v) for v in values], index=values.index, dtype=float)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int pandas read whole: out of any scale
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    except (TypeError, ValueError):
        return float("nan")


def song_ids(values: pd.Series) -> list[str]:
    """Numeric ids as text without the decimal point pandas may add ('2.0' -> '2'); other ids stripped."""
    numbers_ = numbers(values)
    return ["" if pd.isna(raw) else str(int(n)) if pd.notna(n) and float(n).is_integer() else str(raw).strip()
            for raw, n in zip(values, numbers_)]


def resolve_audio_paths(raw_paths: pd.Series, base: Path) -> list[str]:
    """Absolute, resolved audio paths; a relative path is relative to `base` (the CSV's folder). Empty stays empty,
    and so does a path with a NUL byte, which no file system has (its row is then skipped as a missing file)."""
    return [str((base / p).resolve()) if p and "\0" not in p else p for p in raw_paths]


def read_label_csv(
    csv_path: str | Path,
    path_column: str = "path",
    valence_column: str = "valence",
    arousal_column: str = "arousal",
    id_column: str | None = None,
    split_column: str | None = "split",
    valence_std_column: str | None = None,
    arousal_std_column: str | None = None,
) -> pd.DataFrame:
    """Read a label CSV into Sentio's source table (labels and spreads still on the file's scale).

    Relative audio paths are resolved against the CSV's own folder, so a dataset folder can be
    moved as a whole. Without an id column, the song id is the audio path relative to that folder
    minus its extension (unique per file). Column names are matched after stripping spaces. The
    spread columns (`valence_std`, `arousal_std`) appear only when their CSV columns are named.
    """
    csv_path = Path(csv_path)
    frame = read_csv_file(csv_path, dtype={path_column: str})
    optional = [c for c in (id_column, valence_std_column, arousal_std_column) if c]
    missing = [c for c in [path_column, valence_column, arousal_column, *optional] if c not in frame.columns]
    if missing:
        raise CsvFormatError(
            f"{csv_path}: missing column(s) {missing}; found {list(frame.columns)} "
            "(set --path_column/--valence_column/--arousal_column/--id_column/--valence_std_column/--arousal_std_column)"
        )
    raw_paths = frame[path_column].fillna("").astype(str).str.strip()
    if id_column:
        ids = frame[id_column].astype(str).str.strip()
    else:
        ids = [str(Path(p).with_suffix("")) if p and not Path(p).is_absolute() else Path(p).stem for p in raw_paths]
    out = pd.DataFrame(
        {
            "song_id": list(ids),
            "path": resolve_audio_paths(raw_paths, csv_path.resolve().parent),
            "valence": numbers(frame[valence_column]),
            "arousal": numbers(frame[arousal_column]),
            "subset": [""] * len(frame),
        }
    )
    for name, column in (("valence_std", valence_std_column), ("arousal_std", arousal_std_column)):
        if column:
            out[name] = numbers(frame[column])
    if split_column and split_column in frame.columns:
        out["split"] = frame[split_column].astype(object).fillna("").astype(str).str.strip().str.lower()
    # line numbers as the user sees them in an editor (header is line 1)
    out["source"] = [f"{csv_path.name}:{i + 2}" for i in range(len(frame))]
    return out
