"""DEAM (MediaEval Database for Emotional Analysis in Music) reader.

Finds the static annotation files and the audio folder in either layout users meet:
- as unpacked on Kaggle: `DEAM_audio/MEMD_audio/<id>.mp3` and
  `DEAM_Annotations/annotations/annotations averaged per song/song_level/*.csv`;
- the plain archive layout: `MEMD_audio/<id>.mp3` and `annotations/annotations averaged per song/...`.
The CSVs have spaced headers (`' valence_mean'`), a stray inner space in the second file
(`valence_ max_mean`), CRLF endings and whole numbers without decimals; all handled here.
The dynamic (2 Hz) annotations, `valence.csv` and `arousal.csv` under `dynamic (per second
annotations)/`, are read when the folder has them (see sentio.data.dynamic).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import ArgumentError, MissingFileError
from .csv_table import numbers, read_csv_file, song_ids

logger = logging.getLogger(__name__)
from .dynamic import Curve, DynamicTable, read_wide_dynamic

STATIC_FILES = (
    "static_annotations_averaged_songs_1_2000.csv",
    "static_annotations_averaged_songs_2000_2058.csv",
)
DYNAMIC_FILES = ("valence.csv", "arousal.csv")
STATIC_COLUMNS = ("song_id", "valence_mean", "valence_std", "arousal_mean", "arousal_std")
AUDIO_DIR_NAME = "MEMD_audio"
DEAM_SCALE = "1-9"
# Below this many songs with dynamic annotations a subset's correlations say too little to act on.
_MIN_SONGS_FOR_CHECK = 10
logger = logging.getLogger(__name__)


class DeamLayoutError(MissingFileError):
    """The folder does not look like DEAM; the message says what is missing."""


def deam_subset(song_id: int) -> str:
    """DEAM's release year by id: 2013 (<= 1000), 2014 (1001..2000), 2015 (2001..2058)."""
    if song_id <= 1000:
        return "2013"
    if song_id <= 2000:
        return "2014"
    return "2015"


def find_in_tree(root: Path, name: str, want_dir: bool) -> Path | None:
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


def find_dynamic_pair(root: Path, valence_name: str, arousal_name: str) -> tuple[Path, Path] | None:
    """The valence and arousal dynamic files, side by side under root; None when there are none.
    One without the other is a MissingFileError."""
    valence = find_in_tree(root, valence_name, want_dir=False)
    arousal = valence.parent / arousal_name if valence else find_in_tree(root, arousal_name, want_dir=False)
    if valence is None and arousal is None:
        return None
    if valence is None or not arousal.is_file():
        found, lacking = (arousal, valence_name) if valence is None else (valence, arousal_name)
        raise MissingFileError(f"{found}: no {lacking} beside it; dynamic annotations need both files "
                               f"in one folder (add {lacking} or remove {found.name})")
    return valence, arousal


@dataclass
class DeamReader:
    """Read a DEAM folder into one table of songs with labels on DEAM's 1..9 scale."""

    root: Path
    name = "deam"  # the manifest's `dataset` value
    title = "DEAM"
    label_scale = DEAM_SCALE

    @classmethod
    def detects(cls, root: Path) -> bool:
        return any(find_in_tree(Path(root), n, want_dir=False) for n in STATIC_FILES)

    def read(self, options: Any = None) -> tuple[pd.DataFrame, dict]:
        """The static table with `options.deam_swapped_subsets` applied (default auto), and the check for
        data_report.json's `deam_label_check`."""
        mode = getattr(options, "deam_swapped_subsets", "auto")
        table, check = resolve_swapped_subsets(self, self.read_static(), mode)
        if check["swapped_subsets"]:
            logger.warning("DEAM subset(s) %s: static valence and arousal exchanged (--deam_swapped_subsets %s; "
                           "details in data_report.json)", ", ".join(check["swapped_subsets"]), check["mode"])
        return table, {"deam_label_check": check}

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise DeamLayoutError(f"{self.root}: not a folder; pass --data the DEAM (or EmoMusic) folder")
        self.static_paths = [p for p in (find_in_tree(self.root, n, want_dir=False) for n in STATIC_FILES) if p]
        if not self.static_paths:
            raise DeamLayoutError(
                f"{self.root}: no DEAM static annotation file ({STATIC_FILES[0]}) found; "
                "expected DEAM_Annotations/annotations/annotations averaged per song/song_level/ "
                "(or an EmoMusic folder with static_annotations.csv)"
            )
        audio_dir = find_in_tree(self.root, AUDIO_DIR_NAME, want_dir=True)
        if audio_dir is None:
            raise DeamLayoutError(f"{self.root}: no {AUDIO_DIR_NAME}/ audio folder found (expected DEAM_audio/{AUDIO_DIR_NAME}/)")
        self.audio_dir = audio_dir.resolve()
        self.dynamic_paths = find_dynamic_pair(self.root, *DYNAMIC_FILES)

    def read_static(self) -> pd.DataFrame:
        """Columns: song_id (str), valence, arousal, valence_std, arousal_std (1..9), subset, path, source."""
        frames = []
        for path in self.static_paths:
            frame = read_csv_file(path)
            missing = [c for c in STATIC_COLUMNS if c not in frame.columns]
            if missing:
                raise DeamLayoutError(f"{path}: missing column(s) {missing}; a DEAM static file starts with "
                                      f"the header {', '.join(STATIC_COLUMNS)}")
            frame["source"] = [f"{path.name}:{i + 2}" for i in range(len(frame))]
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        ids = numbers(table["song_id"])
        out = pd.DataFrame(
            {
                "song_id": song_ids(table["song_id"]),
                "valence": numbers(table["valence_mean"]),
                "arousal": numbers(table["arousal_mean"]),
                "valence_std": numbers(table["valence_std"]),
                "arousal_std": numbers(table["arousal_std"]),
                "subset": [deam_subset(int(i)) if np.isfinite(i) else "" for i in ids],  # inf: a huge id
                "source": table["source"],
            }
        )
        out["path"] = [str(self.audio_dir / f"{sid}.mp3") for sid in out["song_id"]]
        return out

    @cached_property
    def dynamic(self) -> DynamicTable | None:
        """The per-second (2 Hz) annotations (values on [-1, 1]), read once; None when the folder has none."""
        return read_wide_dynamic(*self.dynamic_paths) if self.dynamic_paths else None


def dynamic_agreement(static: pd.DataFrame, curves: Mapping[str, Curve]) -> dict[str, dict]:
    """Per subset: Pearson r of the static valence/arousal with each song's mean dynamic valence/arousal.

    DEAM's static values for ids <= 1000 equal EmoMusic's with valence and arousal exchanged. A
    subset whose static valence follows the dynamic arousal better than the dynamic valence, and
    the other way round, has its static columns swapped relative to its own dynamic annotations.
    """
    means = pd.DataFrame([c.values.mean(axis=0, dtype=np.float64) for c in curves.values()],
                         index=list(curves), columns=["valence", "arousal"])
    out: dict[str, dict] = {}
    for subset, rows in static.groupby("subset"):
        rows = rows[rows["song_id"].isin(means.index)].dropna(subset=["valence", "arousal"])
        if len(rows) < _MIN_SONGS_FOR_CHECK:
            out[str(subset)] = {"songs": len(rows), "checked": False}
            continue
        r = {f"static_{s}_vs_dynamic_{d}": float(np.corrcoef(rows[s], means.loc[rows["song_id"], d])[0, 1])
             for s in ("valence", "arousal") for d in ("valence", "arousal")}
        swapped = (r["static_valence_vs_dynamic_arousal"] > r["static_valence_vs_dynamic_valence"]
                   and r["static_arousal_vs_dynamic_valence"] > r["static_arousal_vs_dynamic_arousal"])
        out[str(subset)] = {"songs": len(rows), "checked": True, **r, "swapped": swapped}
    return out


def swap_valence_arousal(table: pd.DataFrame, subsets: list[str]) -> pd.DataFrame:
    """Exchange valence and arousal (means and stds) of the rows in `subsets`."""
    table = table.copy()
    rows = table["subset"].isin(subsets)
    for a, b in (("valence", "arousal"), ("valence_std", "arousal_std")):
        table.loc[rows, [a, b]] = table.loc[rows, [b, a]].to_numpy()
    return table


def resolve_swapped_subsets(reader: DeamReader, table: pd.DataFrame, mode: str) -> tuple[pd.DataFrame, dict]:
    """Apply `--deam_swapped_subsets`: `auto` swaps the subsets the dynamic annotations contradict
    (when the folder has them), `none` changes nothing, `2013,...` swaps those subsets. Returns the
    table and what was checked and done, for data_report.json."""
    mode = mode.strip().lower()
    report: dict = {"mode": mode, "swapped_subsets": []}
    if mode == "auto":
        if reader.dynamic is None:
            report["check"] = "no dynamic annotations (valence.csv, arousal.csv) in the folder: not checked"
            # on the console too: DEAM's 2013 static columns are known to be exchanged (see the README)
            logger.warning("DEAM: the valence/arousal swap check of each subset was skipped: %s (add them, or pass "
                           "--deam_swapped_subsets 2013 or none to decide yourself)", report["check"])
            return table, report
        curves, _ = reader.dynamic.curves()
        report["by_subset"] = dynamic_agreement(table, curves)
        chosen = [s for s, stats in report["by_subset"].items() if stats.get("swapped")]
        unchecked = [s for s, stats in report["by_subset"].items() if not stats.get("checked")]
        if unchecked:
            logger.warning("DEAM: the valence/arousal swap check skipped subset %s (too few songs with dynamic "
                           "annotations)", ", ".join(unchecked))
        if chosen:
            logger.info("DEAM: static valence and arousal of subset %s exchanged back (their dynamic annotations "
                        "contradict them; data_report.json has the correlations)", ", ".join(chosen))
    elif mode == "none":
        chosen = []
    else:
        chosen = [s.strip() for s in mode.split(",") if s.strip()]
        unknown = sorted(set(chosen) - set(table["subset"]))
        if unknown:
            raise ArgumentError(f"--deam_swapped_subsets: no subset {', '.join(unknown)} in this DEAM folder "
                                f"(it has {', '.join(sorted(set(table['subset'])))}); use auto, none or e.g. 2013")
    report["swapped_subsets"] = chosen
    return (swap_valence_arousal(table, chosen) if chosen else table), report
