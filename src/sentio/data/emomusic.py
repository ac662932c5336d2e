"""EmoMusic ("1000 songs for emotional analysis of music", MediaEval 2013) reader.

Files are found anywhere under the folder (shallow paths first), as DeamReader finds DEAM's:
    clips_45seconds/<song_id>.mp3
    static_annotations.csv      song_id,mean_arousal,std_arousal,mean_valence,std_valence (1..9, arousal first)
    valence_cont_average.csv, arousal_cont_average.csv   2 Hz from 15 s, values on [-1, 1]
    songs_info.csv (optional)   its `Mediaeval 2013 set` (development/evaluation) becomes the subset
DEAM's static values for its ids <= 1000 equal these with valence and arousal exchanged; EmoMusic's
own static and dynamic files agree with each other, so nothing is swapped here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import MissingFileError
from .csv_table import CsvFormatError, numbers, read_csv_file, song_ids
from .deam import find_dynamic_pair, find_in_tree
from .dynamic import DynamicTable, read_wide_dynamic

STATIC_FILE = "static_annotations.csv"
# file column -> source table column; the file lists arousal before valence
STATIC_COLUMNS = {"mean_valence": "valence", "mean_arousal": "arousal",
                  "std_valence": "valence_std", "std_arousal": "arousal_std"}
DYNAMIC_FILES = ("valence_cont_average.csv", "arousal_cont_average.csv")
INFO_FILE = "songs_info.csv"
SUBSET_COLUMN = "Mediaeval2013set"  # "Mediaeval 2013 set" once clean_columns has removed the spaces
ARTIST_COLUMN = "Artist"
AUDIO_DIR_NAME = "clips_45seconds"
EMOMUSIC_SCALE = "1-9"


def is_emomusic(root: str | Path) -> bool:
    """Whether the folder holds EmoMusic's static_annotations.csv (recognised by its mean_arousal etc. columns)."""
    path = find_in_tree(Path(root), STATIC_FILE, want_dir=False)
    return path is not None and set(STATIC_COLUMNS) <= set(read_csv_file(path, nrows=0).columns)


@dataclass
class EmoMusicReader:
    """Read an EmoMusic folder into one table of songs with labels on its 1..9 scale."""

    root: Path
    name = "emomusic"  # the manifest's `dataset` value
    title = "EmoMusic"
    label_scale = EMOMUSIC_SCALE

    @classmethod
    def detects(cls, root: Path) -> bool:
        return is_emomusic(root)

    def read(self, options: Any = None) -> tuple[pd.DataFrame, dict]:
        """The source table and the checks for data_report.json (none: EmoMusic's files agree with each other)."""
        return self.read_static(), {}

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        static = find_in_tree(self.root, STATIC_FILE, want_dir=False) if self.root.is_dir() else None
        if static is None:
            raise MissingFileError(f"{self.root}: no EmoMusic {STATIC_FILE} found; pass --data the EmoMusic folder")
        audio_dir = find_in_tree(self.root, AUDIO_DIR_NAME, want_dir=True)
        if audio_dir is None:
            raise MissingFileError(f"{self.root}: no {AUDIO_DIR_NAME}/ audio folder found "
                                   f"(expected {AUDIO_DIR_NAME}/<song_id>.mp3 in the EmoMusic folder)")
        self.static_path = static
        self.audio_dir = audio_dir.resolve()
        self.dynamic_paths = find_dynamic_pair(self.root, *DYNAMIC_FILES)

    def read_static(self) -> pd.DataFrame:
        """Columns: song_id (str), valence, arousal, valence_std, arousal_std (1..9), subset, path, source."""
        frame = read_csv_file(self.static_path)
        missing = [c for c in ["song_id", *STATIC_COLUMNS] if c not in frame.columns]
        if missing:
            raise CsvFormatError(f"{self.static_path}: missing column(s) {missing}; EmoMusic's header is "
                                 "song_id,mean_arousal,std_arousal,mean_valence,std_valence")
        out = pd.DataFrame({"song_id": song_ids(frame["song_id"])})
        for column, name in STATIC_COLUMNS.items():
            out[name] = numbers(frame[column])
        subsets, artists = self._info()
        out["subset"] = [subsets.get(sid, "") for sid in out["song_id"]]
        out["artist"] = [artists.get(sid, "") for sid in out["song_id"]]
        out["source"] = [f"{self.static_path.name}:{i + 2}" for i in range(len(frame))]
        out["path"] = [str(self.audio_dir / f"{sid}.mp3") for sid in out["song_id"]]
        return out

    def _info(self) -> tuple[dict[str, str], dict[str, str]]:
        """Song id -> MediaEval 2013 set, and song id -> artist, from songs_info.csv (its values are
        quoted and tab-padded); empty without the file or the column."""
        path = find_in_tree(self.root, INFO_FILE, want_dir=False)
        if path is None:
            return {}, {}
        info = read_csv_file(path, dtype=str)
        if "song_id" not in info.columns:
            return {}, {}
        ids = song_ids(info["song_id"])
        columns = [dict(zip(ids, info[c].fillna("").str.strip())) if c in info.columns else {}
                   for c in (SUBSET_COLUMN, ARTIST_COLUMN)]
        return columns[0], columns[1]

    @cached_property
    def dynamic(self) -> DynamicTable | None:
        """The 2 Hz annotations (values on [-1, 1]), read once; None when the folder has none."""
        return read_wide_dynamic(*self.dynamic_paths) if self.dynamic_paths else None
