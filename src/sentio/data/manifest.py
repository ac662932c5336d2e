"""The manifest: one validated row per clip, labels on [-1, 1], split fixed and written down.

`build_manifest` checks every row (missing file, unreadable or empty audio, NaN or out-of-range
label, duplicate id) and either skips it with its reason in the report or, with strict=True,
stops at the first problem.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd
from tqdm.auto import tqdm

from .. import __version__
from .audio import AudioError, audio_info
from .labels import check_scale, to_unit
from .splits import SPLITS, normalise_split_name, read_split_files, seeded_split

MANIFEST_COLUMNS = ["song_id", "path", "valence", "arousal", "split", "subset", "duration", "sample_rate", "channels"]


class ManifestError(ValueError):
    """A bad row under --strict, or a source that gives no usable rows."""


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

    def skip(self, row: pd.Series, reason: str, strict: bool) -> None:
        where = row.get("source") or row.get("path")
        if strict:
            raise ManifestError(f"{where}: {reason}")
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


def build_manifest(
    table: pd.DataFrame,
    label_scale: str,
    split: SplitSpec | None = None,
    strict: bool = False,
    source: str = "",
    progress: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Validate a source table (song_id, path, valence, arousal[, split, subset, source]) into a manifest."""
    low, high = check_scale(label_scale)
    split = split or SplitSpec()
    report = ManifestReport(source=source, label_scale=label_scale, rows_total=len(table))
    kept, seen = [], set()
    for _, row in tqdm(table.iterrows(), total=len(table), desc="checking audio", disable=not progress, unit="clip"):
        song_id = str(row["song_id"])
        problem = _label_problem(row, low, high)
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
            report.skip(row, problem, strict)
            continue
        seen.add(song_id)
        kept.append({
            "song_id": song_id, "path": str(row["path"]),
            "valence": float(to_unit(row["valence"], label_scale)), "arousal": float(to_unit(row["arousal"], label_scale)),
            "split": row.get("split", ""), "subset": str(row.get("subset", "") or ""),
            "duration": round(info.duration, 3), "sample_rate": info.sample_rate, "channels": info.channels,
            "source": row.get("source", ""),
        })
    if not kept:
        raise ManifestError(f"{source}: no usable rows ({len(report.skipped)} skipped; see the reasons with --strict)")
    manifest = pd.DataFrame(kept)
    manifest = _assign_splits(manifest, split, report, strict)
    report.splits = {name: int((manifest["split"] == name).sum()) for name in SPLITS}
    return manifest[MANIFEST_COLUMNS].reset_index(drop=True), report.to_dict(len(manifest))


def _assign_splits(manifest: pd.DataFrame, spec: SplitSpec, report: ManifestReport, strict: bool) -> pd.DataFrame:
    column = manifest["split"].fillna("").astype(str)
    if spec.files:
        mapping = read_split_files(spec.files)
        report.split_method = f"id lists from {spec.files}"
        manifest["split"] = [mapping.get(s, "") for s in manifest["song_id"]]
    elif spec.use_column and (column != "").any():
        report.split_method = "split column of the source"
        manifest["split"] = [normalise_split_name(s) or "" for s in column]
    else:
        mapping = seeded_split(manifest["song_id"].tolist(), spec.seed, spec.fractions)
        report.split_method = f"seeded song-level split seed={spec.seed} fractions={list(spec.fractions)}"
        manifest["split"] = [mapping[s] for s in manifest["song_id"]]
    unassigned = manifest["split"] == ""
    for _, row in manifest[unassigned].iterrows():
        reason = "id not in any split list" if spec.files else "split value is not train/validation/test"
        report.skip(row, reason, strict)
    return manifest[~unassigned]


def write_manifest(manifest: pd.DataFrame, report: dict, output_dir: str | Path) -> Path:
    """Write manifest.csv and data_report.json; returns the manifest path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "manifest.csv"
    manifest.to_csv(path, index=False)
    (output_dir / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return path


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a manifest.csv written by write_manifest (song ids stay strings)."""
    frame = pd.read_csv(path, dtype={"song_id": str, "split": str, "subset": str}, keep_default_na=False)
    missing = set(MANIFEST_COLUMNS) - set(frame.columns)
    if missing:
        raise ManifestError(f"{path}: not a Sentio manifest (missing {sorted(missing)})")
    return frame
