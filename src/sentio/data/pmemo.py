"""PMEmo (the 2019 release) reader.

Files are found anywhere under the folder (shallow paths first), as DeamReader finds DEAM's:
    chorus/<musicId>.mp3                      794 chorus excerpts
    metadata.csv                              musicId,fileName,title,artist,album,duration,... (optional)
    annotations/static_annotations.csv        musicId,Arousal(mean),Valence(mean)  on [0, 1]
    annotations/static_annotations_std.csv    musicId,Arousal(std),Valence(std)    on [0, 1] (optional)
    annotations/dynamic_annotations.csv       musicId,frameTime,Arousal(mean),Valence(mean), 2 Hz from 15.5 s
Values map onto [-1, 1] by 2x - 1 and spreads by x 2 (the `0-1` label scale). A chorus of the
metadata without static labels (27 in the release, all shorter than 15.5 s) is a skipped row with
its reason. `frameTime` T describes the audio in [T - 0.5 s, T), Sentio's (and DEAM's) convention:
the release's first value, 15.5, is the half-second after the unannotated first 15 s, and each
song's last frameTime is at most its duration (in 764 of 767 songs; the other 3 by <= 0.35 s),
which puts every labelled half-second inside the audio (see data/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import MissingFileError
from .csv_table import CsvFormatError, read_csv_file, song_ids
from .deam import find_in_tree
from .dynamic import DynamicTable, long_dynamic_table

STATIC_FILE = "static_annotations.csv"
STATIC_STD_FILE = "static_annotations_std.csv"
DYNAMIC_FILE = "dynamic_annotations.csv"
METADATA_FILE = "metadata.csv"
ID_COLUMN = "musicId"
# file column -> source table column
STATIC_COLUMNS = {"Valence(mean)": "valence", "Arousal(mean)": "arousal"}
STD_COLUMNS = {"Valence(std)": "valence_std", "Arousal(std)": "arousal_std"}
DYNAMIC_COLUMNS = {ID_COLUMN: "song_id", "frameTime": "time", "Valence(mean)": "valence", "Arousal(mean)": "arousal"}
AUDIO_DIR_NAME = "chorus"
PMEMO_SCALE = "0-1"
UNLABELLED_REASON = "no annotations in the release (PMEmo labels only choruses of 15.5 s or more)"


def is_pmemo(root: str | Path) -> bool:
    """Whether the folder holds PMEmo's static_annotations.csv (recognised by its musicId, Arousal(mean) columns)."""
    path = find_in_tree(Path(root), STATIC_FILE, want_dir=False)
    return path is not None and {ID_COLUMN, *STATIC_COLUMNS} <= set(read_csv_file(path, nrows=0).columns)


@dataclass
class PmemoReader:
    """Read a PMEmo2019 folder into one table of songs with labels on its [0, 1] scale."""

    root: Path
    name = "pmemo"  # the manifest's `dataset` value
    title = "PMEmo"
    label_scale = PMEMO_SCALE

    @classmethod
    def detects(cls, root: Path) -> bool:
        return is_pmemo(root)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        static = find_in_tree(self.root, STATIC_FILE, want_dir=False) if self.root.is_dir() else None
        if static is None:
            raise MissingFileError(f"{self.root}: no PMEmo annotations/{STATIC_FILE} found; pass --data the "
                                   "PMEmo2019 folder")
        audio_dir = find_in_tree(self.root, AUDIO_DIR_NAME, want_dir=True)
        if audio_dir is None:
            raise MissingFileError(f"{self.root}: no {AUDIO_DIR_NAME}/ audio folder found "
                                   f"(expected {AUDIO_DIR_NAME}/<musicId>.mp3 in the PMEmo2019 folder)")
        self.static_path = static
        self.audio_dir = audio_dir.resolve()
        self.std_path = _beside_or_found(self.root, static, STATIC_STD_FILE)
        self.dynamic_path = _beside_or_found(self.root, static, DYNAMIC_FILE)
        self.metadata_path = find_in_tree(self.root, METADATA_FILE, want_dir=False)

    def read(self, options: Any = None) -> tuple[pd.DataFrame, dict]:
        """The source table and the checks for data_report.json (none for PMEmo)."""
        return self.read_static(), {}

    def read_static(self) -> pd.DataFrame:
        """Columns: song_id (str), valence, arousal, valence_std, arousal_std (0..1), subset, artist, path,
        source, skip_reason. Every chorus of metadata.csv is a row; one without labels carries its skip_reason."""
        frame = self._read(self.static_path, STATIC_COLUMNS, "musicId,Arousal(mean),Valence(mean)")
        out = pd.DataFrame({"song_id": song_ids(frame[ID_COLUMN])})
        for column, name in STATIC_COLUMNS.items():
            out[name] = pd.to_numeric(frame[column], errors="coerce")
        out["source"] = [f"{self.static_path.name}:{i + 2}" for i in range(len(frame))]
        if self.std_path is not None:
            std = self._read(self.std_path, STD_COLUMNS, "musicId,Arousal(std),Valence(std)")
            std = pd.DataFrame({"song_id": song_ids(std[ID_COLUMN]),
                                **{name: pd.to_numeric(std[c], errors="coerce") for c, name in STD_COLUMNS.items()}})
            # a labelled song without a spread row gets NaN spreads: the manifest skips it with that reason
            out = out.merge(std.drop_duplicates("song_id"), on="song_id", how="left")
        metadata = self._metadata()
        out["skip_reason"] = ""
        if metadata is not None:
            unlabelled = metadata[~metadata["song_id"].isin(out["song_id"])]
            extra = pd.DataFrame({"song_id": unlabelled["song_id"], "source": unlabelled["source"],
                                  "skip_reason": UNLABELLED_REASON})
            out = pd.concat([out, extra], ignore_index=True)
            artists = dict(zip(metadata["song_id"], metadata["artist"]))
            out["artist"] = [artists.get(s, "") for s in out["song_id"]]
        out["subset"] = ""
        out["path"] = [str(self.audio_dir / f"{sid}.mp3") for sid in out["song_id"]]
        return out

    def _read(self, path: Path, columns: dict[str, str], header: str) -> pd.DataFrame:
        frame = read_csv_file(path)
        missing = [c for c in [ID_COLUMN, *columns] if c not in frame.columns]
        if missing:
            raise CsvFormatError(f"{path}: missing column(s) {missing}; PMEmo's header is {header}")
        return frame

    def _metadata(self) -> pd.DataFrame | None:
        """musicId -> artist and the row in metadata.csv; None without the file."""
        if self.metadata_path is None:
            return None
        info = read_csv_file(self.metadata_path, dtype=str, keep_default_na=False)
        if ID_COLUMN not in info.columns:
            raise CsvFormatError(f"{self.metadata_path}: no {ID_COLUMN} column; PMEmo's metadata.csv starts with "
                                 "musicId,fileName,title,artist,...")
        return pd.DataFrame({"song_id": song_ids(info[ID_COLUMN]),
                             "artist": info.get("artist", pd.Series("", index=info.index)).str.strip(),
                             "source": [f"{self.metadata_path.name}:{i + 2}" for i in range(len(info))]})

    @cached_property
    def dynamic(self) -> DynamicTable | None:
        """The 2 Hz annotations (values on [0, 1], mapped onto [-1, 1] in the curves); None without the file."""
        if self.dynamic_path is None:
            return None
        frame = read_csv_file(self.dynamic_path, dtype=str)
        missing = [c for c in DYNAMIC_COLUMNS if c not in frame.columns]
        if missing:
            raise CsvFormatError(f"{self.dynamic_path}: missing column(s) {missing}; PMEmo's header is "
                                 "musicId,frameTime,Arousal(mean),Valence(mean)")
        frame = frame.rename(columns=DYNAMIC_COLUMNS)
        return long_dynamic_table(frame, self.dynamic_path, PMEMO_SCALE, "song_id",
                                  {v: k for k, v in DYNAMIC_COLUMNS.items()})


def _beside_or_found(root: Path, static: Path, name: str) -> Path | None:
    """A companion file: beside the static file first, else anywhere under root."""
    beside = static.parent / name
    return beside if beside.is_file() else find_in_tree(root, name, want_dir=False)
