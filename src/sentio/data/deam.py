"""DEAM (MediaEval Database for Emotional Analysis in Music) reader.

Finds the static annotation files and the audio folder in either layout users meet:
- as unpacked on Kaggle: `DEAM_audio/MEMD_audio/<id>.mp3` and
  `DEAM_Annotations/annotations/annotations averaged per song/song_level/*.csv`;
- the plain archive layout: `MEMD_audio/<id>.mp3` and `annotations/annotations averaged per song/...`.
The CSVs have spaced headers (`' valence_mean'`), a stray inner space in the second file
(`valence_ max_mean`), CRLF endings and whole numbers without decimals; all handled here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

STATIC_FILES = (
    "static_annotations_averaged_songs_1_2000.csv",
    "static_annotations_averaged_songs_2000_2058.csv",
)
DYNAMIC_FILES = {"valence": "valence.csv", "arousal": "arousal.csv"}
AUDIO_DIR_NAME = "MEMD_audio"
DEAM_SCALE = "1-9"


class DeamLayoutError(FileNotFoundError):
    """The folder does not look like DEAM; the message says what is missing."""


def deam_subset(song_id: int) -> str:
    """DEAM's release year by id: 2013 (<= 1000), 2014 (1001..2000), 2015 (2001..2058)."""
    if song_id <= 1000:
        return "2013"
    if song_id <= 2000:
        return "2014"
    return "2015"


def clean_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip the spaces DEAM puts in headers: ' valence_mean' -> 'valence_mean', 'valence_ max_mean' -> 'valence_max_mean'."""
    frame.columns = [re.sub(r"\s+", "", str(c)) for c in frame.columns]
    return frame


def _find(root: Path, name: str, want_dir: bool) -> Path | None:
    """First path called `name` under root (shallow paths first), skipping hidden folders."""
    best: Path | None = None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        pool = dirnames if want_dir else filenames
        if name in pool:
            cand = Path(dirpath) / name
            if best is None or len(cand.parts) < len(best.parts):
                best = cand
        if dirpath.count(os.sep) - str(root).count(os.sep) > 6:
            dirnames[:] = []
    return best


@dataclass
class DeamReader:
    """Read a DEAM folder into one table of songs with labels on DEAM's 1..9 scale."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise DeamLayoutError(f"{self.root}: not a folder")
        self.static_paths = [p for p in (_find(self.root, n, want_dir=False) for n in STATIC_FILES) if p]
        if not self.static_paths:
            raise DeamLayoutError(
                f"{self.root}: no DEAM static annotation file ({STATIC_FILES[0]}) found; "
                "expected DEAM_Annotations/annotations/annotations averaged per song/song_level/"
            )
        audio_dir = _find(self.root, AUDIO_DIR_NAME, want_dir=True)
        if audio_dir is None:
            raise DeamLayoutError(f"{self.root}: no {AUDIO_DIR_NAME}/ audio folder found (expected DEAM_audio/{AUDIO_DIR_NAME}/)")
        self.audio_dir = audio_dir

    def read_static(self) -> pd.DataFrame:
        """Columns: song_id (str), valence, arousal (1..9), valence_std, arousal_std, subset, path."""
        frames = []
        for path in self.static_paths:
            frame = clean_columns(pd.read_csv(path, skipinitialspace=True))
            missing = {"song_id", "valence_mean", "arousal_mean"} - set(frame.columns)
            if missing:
                raise DeamLayoutError(f"{path}: missing column(s) {sorted(missing)}")
            frame["source"] = [f"{path.name}:{i + 2}" for i in range(len(frame))]
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        ids = pd.to_numeric(table["song_id"], errors="coerce")
        out = pd.DataFrame(
            {
                "song_id": [str(int(i)) if pd.notna(i) else str(raw) for i, raw in zip(ids, table["song_id"])],
                "valence": pd.to_numeric(table["valence_mean"], errors="coerce"),
                "arousal": pd.to_numeric(table["arousal_mean"], errors="coerce"),
                "valence_std": pd.to_numeric(table.get("valence_std"), errors="coerce"),
                "arousal_std": pd.to_numeric(table.get("arousal_std"), errors="coerce"),
                "subset": [deam_subset(int(i)) if pd.notna(i) else "" for i in ids],
                "source": table["source"],
            }
        )
        out["path"] = [str(self.audio_dir / f"{sid}.mp3") for sid in out["song_id"]]
        return out

    def read_dynamic(self) -> dict[str, pd.DataFrame] | None:
        """Per-second (2 Hz) annotations, one frame per dimension indexed by song_id, or None if absent."""
        out = {}
        for dim, name in DYNAMIC_FILES.items():
            path = _find(self.root, name, want_dir=False)
            if path is None:
                return None
            frame = clean_columns(pd.read_csv(path, skipinitialspace=True))
            frame["song_id"] = frame["song_id"].astype(int).astype(str)
            out[dim] = frame.set_index("song_id")
        return out
