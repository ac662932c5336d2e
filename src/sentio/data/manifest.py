"""The manifest: one validated row per clip, labels on [-1, 1], split fixed and written down.

`build_manifest` checks every row (missing file, unreadable or empty audio, NaN or out-of-range
label, bad rater spread, duplicate id) and either skips it with its reason in the report or, with
strict=True, stops at the first problem. Audio paths are stored absolute and resolved, so a
manifest works from any working directory. Songs with dynamic (2 Hz) labels name the file that
holds their curve (`curves.csv`, beside manifest.csv) in the `curve` column.

Every row names its `dataset` (deam, emomusic, pmemo, csv, demo, hf) and its `group`: the copies
of one piece of music (in several datasets, or twice in one; found by their audio, see
sentio.data.duplicates) share a group, and a group is one unit for splits and labels. A song with
no copy is its own group, named by its song id, so a single-dataset manifest splits exactly as
before groups existed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .. import __version__
from ..errors import DataError, MissingFileError
from ..features.audio import AudioError, audio_info
from .csv_table import numbers, read_csv_file
from .dynamic import CURVES_FILE, Curve, read_long_dynamic, write_curves
from .labels import check_scale, std_to_unit, to_unit
from .splits import SPLITS, normalise_split_name, read_split_files, seeded_split

MANIFEST_FILE = "manifest.csv"
# Every manifest has these; the spread and curve columns came later and read_manifest adds them when absent.
REQUIRED_COLUMNS = ["song_id", "path", "valence", "arousal", "split", "subset", "duration", "sample_rate", "channels"]
_ADDED_COLUMNS = {"valence_std": np.nan, "arousal_std": np.nan, "curve": "", "curve_frames": 0, "dataset": "", "group": ""}
MANIFEST_COLUMNS = REQUIRED_COLUMNS + list(_ADDED_COLUMNS)
SPREAD_COLUMNS = ("valence_std", "arousal_std")
_TEXT_COLUMNS = ("song_id", "path", "split", "subset", "curve", "dataset", "group")
# How strongly a split holds a song out: a group whose copies were given different splits (by lists
# or a split column) goes wholly to the most held-out one, so no copy of a test song is trained on.
_HOLD_OUT_ORDER = {"train": 0, "validation": 1, "test": 2}


class ManifestError(DataError):
    """A bad row under --strict, a source that gives no usable rows, or a manifest.csv that cannot be used."""


@dataclass
class SplitSpec:
    """How to split: `seed` + `fractions`, or `files` (id lists), or the source's own `split` column."""

    seed: int = 42
    fractions: Sequence[float] = (0.8, 0.1, 0.1)
    files: str | None = None
    use_column: bool = True  # use a `split` column when the source has one


@dataclass
class ManifestReport:
    source: str
    label_scale: str
    rows_total: int = 0
    skipped: list[dict] = field(default_factory=list)
    split_method: str = ""
    splits: dict[str, int] = field(default_factory=dict)
    groups_moved_to_held_out: int = 0  # rows whose split a copy elsewhere overrode

    def skip(self, row: pd.Series, reason: str, strict: bool) -> None:
        where = row.get("source") or row.get("path")
        if strict:
            raise ManifestError(f"{where}: {reason}; fix or remove the row")
        self.skipped.append({"row": where, "song_id": str(row.get("song_id")), "path": str(row.get("path")), "reason": reason})

    def to_dict(self, rows_kept: int) -> dict:
        by_reason: dict[str, int] = {}
        for item in self.skipped:
            kind = item["reason"].split(":")[0].split(" (")[0]
            by_reason[kind] = by_reason.get(kind, 0) + 1
        return {
            "source": self.source,
            "label_scale": self.label_scale,
            "labels_in_manifest": "[-1, 1]",
            "rows_total": self.rows_total,
            "rows_kept": rows_kept,
            "rows_skipped": len(self.skipped),
            "skipped_by_reason": by_reason,
            "split_method": self.split_method,
            "splits": self.splits,
            **({"rows_moved_to_their_group_split": self.groups_moved_to_held_out}
               if self.groups_moved_to_held_out else {}),
            "skipped": self.skipped,
            "sentio_version": __version__,
        }


def _label_problem(row: pd.Series, low: float, high: float) -> str | None:
    for dim in ("valence", "arousal"):
        value = row[dim]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return f"{dim} label is missing or not a number"
        if not low <= value <= high:
            return f"{dim} label {value:g} outside the {low:g}..{high:g} scale"
    return None


def _spread_problem(row: pd.Series) -> str | None:
    """A spread column the source has must hold a non-negative number in every row."""
    for column in SPREAD_COLUMNS:
        if column not in row.index:
            continue
        if pd.isna(row[column]):
            return f"{column} is missing or not a number"
        if row[column] < 0:
            return f"{column} {row[column]:g} is negative"
    return None


def _unit_spread(row: pd.Series, column: str, scale: str) -> float:
    return float(std_to_unit(row[column], scale)) if column in row.index else math.nan


def check_rows(table: pd.DataFrame, label_scale: str, report: ManifestReport, strict: bool = False,
               dataset: str = "", progress: bool = True) -> list[dict]:
    """Validate a source table's rows (labels, spreads, ids, audio) into manifest rows on [-1, 1];
    skipped rows go into `report` with their reason."""
    low, high = check_scale(label_scale)
    kept, seen = [], set()
    for _, row in tqdm(table.iterrows(), total=len(table), desc="checking audio", disable=not progress, unit="clip"):
        song_id = str(row["song_id"])
        # a reason the source or a protocol gave (a PMEmo chorus without labels, a song a protocol leaves out)
        given = row.get("skip_reason")
        problem = str(given) if isinstance(given, str) and given else None
        problem = problem or _label_problem(row, low, high) or _spread_problem(row)
        if problem is None and song_id in seen:
            problem = f"duplicate id {song_id}"
        if problem is None and not row["path"]:
            problem = "no audio path"
        info = None
        if problem is None:
            try:
                info = audio_info(row["path"])
            except AudioError as exc:
                problem = "missing file" if exc.reason == "file not found" else exc.reason
        if problem is not None:
            # --strict stops at a bad row, not at a row the source or protocol itself leaves out
            report.skip(row, problem, strict and not (isinstance(given, str) and given))
            continue
        seen.add(song_id)
        kept.append({
            "song_id": song_id, "path": str(Path(row["path"]).resolve()),
            "valence": float(to_unit(row["valence"], label_scale)), "arousal": float(to_unit(row["arousal"], label_scale)),
            "split": row.get("split", ""), "subset": str(row.get("subset", "") or ""),
            "duration": round(info.duration, 3), "sample_rate": info.sample_rate, "channels": info.channels,
            **{c: _unit_spread(row, c, label_scale) for c in SPREAD_COLUMNS}, "curve": "", "curve_frames": 0,
            "dataset": dataset, "group": song_id, "source": row.get("source", ""),
        })
    return kept


def build_manifest(
    table: pd.DataFrame,
    label_scale: str,
    split: SplitSpec | None = None,
    strict: bool = False,
    source: str = "",
    progress: bool = True,
    dataset: str = "",
) -> tuple[pd.DataFrame, dict]:
    """Validate a source table (song_id, path, valence, arousal[, valence_std, arousal_std, split, subset, source])
    into a manifest (MANIFEST_COLUMNS; every song its own group; no curves yet: see with_curves)."""
    check_scale(label_scale)
    report = ManifestReport(source=source, label_scale=label_scale, rows_total=len(table))
    kept = check_rows(table, label_scale, report, strict, dataset, progress)
    if not kept:
        raise ManifestError(f"{source}: no usable rows ({len(report.skipped)} skipped; see the reasons with --strict)")
    return finish_manifest(pd.DataFrame(kept), split or SplitSpec(), report, strict)


def finish_manifest(manifest: pd.DataFrame, split: SplitSpec, report: ManifestReport,
                    strict: bool = False) -> tuple[pd.DataFrame, dict]:
    """Assign splits group by group (the `group` column) and return the manifest and its report."""
    manifest = _assign_splits(manifest, split, report, strict)
    report.splits = {name: int((manifest["split"] == name).sum()) for name in SPLITS}
    return manifest[MANIFEST_COLUMNS].reset_index(drop=True), report.to_dict(len(manifest))


def _assign_splits(manifest: pd.DataFrame, spec: SplitSpec, report: ManifestReport, strict: bool) -> pd.DataFrame:
    """One split per group. Seeded: the groups are shuffled (a song without copies is a group named
    by its song id, so single-dataset splits are what they were before groups). From lists or a
    split column: a group whose copies were given different splits goes to the most held-out one
    (test > validation > train), counted in the report."""
    column = manifest["split"].fillna("").astype(str)
    groups = manifest["group"].astype(str)
    if spec.files:
        mapping = read_split_files(spec.files)
        report.split_method = f"id lists from {spec.files}"
        # a multi-dataset manifest's ids are 'dataset:id'; the lists hold the dataset's own ids
        manifest["split"] = [mapping.get(s, mapping.get(s.partition(":")[2], "")) for s in manifest["song_id"]]
    elif spec.use_column and (column != "").any():
        report.split_method = "split column of the source"
        manifest["split"] = [normalise_split_name(s) or "" for s in column]
    else:
        mapping = seeded_split(groups.tolist(), spec.seed, spec.fractions)
        report.split_method = f"seeded group-level split seed={spec.seed} fractions={list(spec.fractions)}"
        manifest["split"] = [mapping[g] for g in groups]
        return manifest
    moved = _one_split_per_group(manifest)
    if moved:
        report.groups_moved_to_held_out = moved
    unassigned = manifest["split"] == ""
    for _, row in manifest[unassigned].iterrows():
        reason = "id not in any split list" if spec.files else "split value is not train/validation/test"
        report.skip(row, reason, strict)
    return manifest[~unassigned]


def _one_split_per_group(manifest: pd.DataFrame) -> int:
    """Give every copy of a group the most held-out split any copy has; the number of rows moved."""
    held_out = {}
    for group, split in zip(manifest["group"], manifest["split"]):
        if split and _HOLD_OUT_ORDER[split] >= _HOLD_OUT_ORDER.get(held_out.get(group, ""), -1):
            held_out[group] = split
    new = [held_out.get(g, s) for g, s in zip(manifest["group"], manifest["split"])]
    moved = int(sum(a != b for a, b in zip(new, manifest["split"])))
    manifest["split"] = new
    return moved


def with_curves(manifest: pd.DataFrame, curves: Mapping[str, Curve]) -> pd.DataFrame:
    """The manifest with `curve` (CURVES_FILE for songs that have a curve, else '') and `curve_frames` set."""
    manifest = manifest.copy()
    frames = [len(curves[s]) if s in curves else 0 for s in manifest["song_id"]]
    manifest["curve"] = [CURVES_FILE if n else "" for n in frames]
    manifest["curve_frames"] = frames
    return manifest


def write_manifest(manifest: pd.DataFrame, report: dict, output_dir: str | Path,
                   curves: Mapping[str, Curve] | None = None) -> Path:
    """Write manifest.csv, data_report.json and, for the songs whose `curve` column names it, curves.csv
    from `curves`; returns the manifest path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / MANIFEST_FILE
    manifest.to_csv(path, index=False)
    (output_dir / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
    named = manifest.get("curve", pd.Series("", index=manifest.index)) == CURVES_FILE
    if named.any():
        write_curves(curves or {}, output_dir / CURVES_FILE, manifest.loc[named, "song_id"])
    else:
        (output_dir / CURVES_FILE).unlink(missing_ok=True)  # an older run's curves would contradict this manifest
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a manifest.csv written by write_manifest (song ids stay strings), checking its columns and labels.

    Columns that older manifests lack are added (no spread, no curve). A relative audio path (older
    runs) is resolved against the manifest's folder first and the working directory second.
    """
    path = Path(path)
    frame = read_csv_file(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ManifestError(f"{path}: not a Sentio manifest (missing {missing}); "
                            "pass a manifest.csv written by prepare.py, or the dataset itself")
    for column in [c for c in MANIFEST_COLUMNS if c in frame.columns and c not in _TEXT_COLUMNS]:
        frame[column] = _numbers(frame[column], column, path)
    for column, default in _ADDED_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = default
    no_group = frame["group"] == ""
    frame.loc[no_group, "group"] = frame.loc[no_group, "song_id"]  # older manifests: every song its own group
    _check_ranges(frame, path)
    frame["path"] = [_resolve(p, path.parent) for p in frame["path"]]
    return frame


def _numbers(text: pd.Series, column: str, path: Path) -> pd.Series:
    """A numeric column; only a spread may be empty (the source had none)."""
    text = text.str.strip()
    values = numbers(text)
    bad = values.isna() & ((text != "") | (column not in SPREAD_COLUMNS))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ManifestError(f"{path}:{row + 2}: {column} {text.iloc[row]!r} is not a number; "
                            "fix the row or prepare the data again")
    return values


def _check_ranges(frame: pd.DataFrame, path: Path) -> None:
    """Labels on [-1, 1] and spreads non-negative, or one line naming the first bad row."""
    checks = [(c, ~frame[c].between(-1.0, 1.0), "outside [-1, 1]") for c in ("valence", "arousal")]
    checks += [(c, frame[c] < 0, "is negative") for c in SPREAD_COLUMNS]
    for column, bad, what in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ManifestError(f"{path}:{row + 2}: {column} {frame[column].iloc[row]:g} {what}; "
                                "fix the row or prepare the data again")


def _resolve(audio: str, folder: Path) -> str:
    """An absolute path as is; a relative one beside the manifest if it exists there, else from the working directory."""
    relative = Path(audio)
    if not audio or relative.is_absolute() or "\0" in audio:  # NUL: no file has it; the file check says so
        return audio
    beside = folder / relative
    return str((beside if beside.exists() or not relative.exists() else relative).resolve())


def read_curves(manifest: str | Path) -> dict[str, Curve]:
    """The curves of a manifest (its manifest.csv or folder): each song whose `curve` column names a
    file, read from that file beside the manifest; {} for a manifest without curves."""
    path = Path(manifest)
    path = path / MANIFEST_FILE if path.is_dir() else path
    names = read_manifest(path).set_index("song_id")["curve"]
    out: dict[str, Curve] = {}
    for name in sorted(set(names) - {""}):
        file = path.parent / name
        if not file.is_file():
            raise MissingFileError(f"{path}: its curve column names {name}, which is not beside it; "
                                   f"copy {name} next to the manifest or prepare the data again")
        curves, _ = read_long_dynamic(file).curves(strict=True)
        out.update({sid: curves[sid] for sid in names.index[names == name] if sid in curves})
    return out
