"""Generic CSV of `audio path, valence, arousal` (any dataset that is not DEAM)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .deam import clean_columns


class CsvFormatError(ValueError):
    """The CSV lacks a column Sentio was told to read; the message names file and column."""


def read_label_csv(
    csv_path: str | Path,
    path_column: str = "path",
    valence_column: str = "valence",
    arousal_column: str = "arousal",
    id_column: str | None = None,
    split_column: str | None = "split",
) -> pd.DataFrame:
    """Read a label CSV into Sentio's source table (labels still on the file's scale).

    Relative audio paths are resolved against the CSV's own folder, so a dataset folder can be
    moved as a whole. Without an id column, the song id is the audio path relative to that folder
    minus its extension (unique per file). Column names are matched after stripping spaces.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise CsvFormatError(f"{csv_path}: file not found")
    try:
        frame = clean_columns(pd.read_csv(csv_path, skipinitialspace=True, dtype={path_column: str}))
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise CsvFormatError(f"{csv_path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    wanted = [path_column, valence_column, arousal_column] + ([id_column] if id_column else [])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise CsvFormatError(
            f"{csv_path}: missing column(s) {missing}; found {list(frame.columns)} "
            "(set --path_column/--valence_column/--arousal_column)"
        )
    base = csv_path.resolve().parent
    raw_paths = frame[path_column].fillna("").astype(str).str.strip()
    paths = [str(p if Path(p).is_absolute() else (base / p)) if p else "" for p in raw_paths]
    if id_column:
        ids = frame[id_column].astype(str).str.strip()
    else:
        ids = [str(Path(p).with_suffix("")) if p and not Path(p).is_absolute() else Path(p).stem for p in raw_paths]
    out = pd.DataFrame(
        {
            "song_id": list(ids),
            "path": paths,
            "valence": pd.to_numeric(frame[valence_column], errors="coerce"),
            "arousal": pd.to_numeric(frame[arousal_column], errors="coerce"),
            "subset": [""] * len(frame),
        }
    )
    if split_column and split_column in frame.columns:
        out["split"] = frame[split_column].fillna("").astype(str).str.strip().str.lower()
    # line numbers as the user sees them in an editor (header is line 1)
    out["source"] = [f"{csv_path.name}:{i + 2}" for i in range(len(frame))]
    return out
