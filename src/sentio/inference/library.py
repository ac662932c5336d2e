"""Predicting a music library: thousands of files, fast, resumably, in constant memory, on one
process or many. The jobs live in their own modules; this one gathers what callers use.

- `batch`: threads decode files while the model runs (`predict_library`).
- `writers`: CSV/JSONL outputs that grow as files finish and resume after a kill (`ResultLog`).
- `tags`: valence, arousal and quadrant written into a file's own tags, never damaging it.
- `listing`: the audio files under folders, a symlink loop or an unreadable folder reported.
- `journal`: the files in flight, so a file that kills the process is recognised and skipped.
- `shards`: the file list split over processes (accelerate or torchrun) and their parts merged.
"""

from __future__ import annotations

from .batch import FILE_TIMEOUT_S, FileOutcome, default_workers, file_error, predict_library
from .predictor import song_result
from .tags import TAG_NAMES, remove_stale_copies, tag_values, write_tags
from .writers import (
    COLUMNS,
    KEY_COLUMNS,
    CsvWriter,
    FileKey,
    JsonlWriter,
    ResultLog,
    csv_columns,
    csv_rows,
    merge_parts,
    optional_fields,
    record,
)

__all__ = [
    "COLUMNS",
    "FILE_TIMEOUT_S",
    "KEY_COLUMNS",
    "TAG_NAMES",
    "CsvWriter",
    "FileKey",
    "FileOutcome",
    "JsonlWriter",
    "ResultLog",
    "csv_columns",
    "csv_rows",
    "default_workers",
    "file_error",
    "merge_parts",
    "optional_fields",
    "predict_library",
    "record",
    "remove_stale_copies",
    "song_result",
    "tag_values",
    "write_tags",
]
