"""A protocol's headline numbers for an evaluation, beside the published ones (protocols/published.csv)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.protocols import BenchmarkProtocol, protocol_notes, to_z, z_score_stats
from ..metrics import DIMENSIONS, r2_score
from .report import arrays


def data_report_section(manifest_dir: Path) -> dict[str, Any]:
    """The data_report.json beside a manifest ({} when there is none)."""
    path = Path(manifest_dir) / "data_report.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def manifest_dataset(manifest: pd.DataFrame, data_report: dict[str, Any]) -> str:
    """The dataset of a single-dataset manifest: its `dataset` column, else what data_report.json recorded."""
    if "dataset" in manifest and manifest["dataset"].nunique() == 1:
        return str(manifest["dataset"].iloc[0])
    return str(data_report.get("dataset", ""))


def protocol_headline(protocol: BenchmarkProtocol, table: pd.DataFrame, dynamic: dict[str, Any] | None,
                      manifest: pd.DataFrame, data_report: dict[str, Any]) -> dict[str, Any]:
    """eval_report.json's `protocol` section: the headline metric on the scored songs, its notes, and
    the published numbers for the same dataset (`dynamic`: the report's 2 Hz curve section, if any)."""
    dataset = manifest_dataset(manifest, data_report)
    section = data_report.get("protocol", {})
    out: dict[str, Any] = {"name": protocol.name, "dataset": dataset, "headline_metric": protocol.headline_metric,
                           "notes": protocol_notes(section) if section else protocol_notes(protocol.describe())}
    if protocol.headline_metric == "r2":
        pred, true = arrays(table)
        scale = "[-1, 1]"
        if protocol.z_score:
            stats = section.get("label_normalisation") or z_score_stats(manifest)
            pred, true, scale = to_z(pred, stats), to_z(true, stats), "z-scored (non-test songs' mean and population std)"
        values = {dim: r2_score(pred[:, d], true[:, d]) for d, dim in enumerate(DIMENSIONS)}
        values["mean"] = float(np.mean([values[d] for d in DIMENSIONS]))
        out["headline"] = {"r2": values, "labels": scale, "songs": int(len(table))}
    elif dynamic:
        metrics = dynamic["metrics"]
        out["headline"] = {name: {dim: metrics[dim][name]["value"] for dim in (*DIMENSIONS, "mean")}
                           for name in ("song_rmse", "song_pearson")}
        out["headline"]["songs"] = dynamic["songs"]
    else:
        out["headline"] = None
        out["notes"].append("this model predicts no 2 Hz curves: the protocol's headline (per-song RMSE and Pearson r "
                            "of the curves) needs a run trained with --target dynamic or both")
    published = [asdict(r) for r in protocol.published() if not dataset or r.dataset == dataset]
    out["published"] = published
    out["table"] = headline_lines(out)
    return out


def headline_lines(section: dict[str, Any]) -> list[str]:
    """The printed table: Sentio's headline, then each published row with its source."""
    lines = [f"protocol {section['name']} ({section['dataset'] or 'dataset unknown'}), headline {section['headline_metric']}:"]
    head = section.get("headline")
    if head and "r2" in head:
        r2 = head["r2"]
        lines.append(f"  {'this run':<34} R² valence {r2['valence']:.4f}  arousal {r2['arousal']:.4f}  "
                     f"mean {r2['mean']:.4f}  ({head['songs']} songs, labels {head['labels']})")
    elif head:
        lines.append(f"  {'this run':<34} per-song RMSE valence {head['song_rmse']['valence']:.4f}  arousal "
                     f"{head['song_rmse']['arousal']:.4f}; per-song Pearson r valence {head['song_pearson']['valence']:.4f}"
                     f"  arousal {head['song_pearson']['arousal']:.4f}  ({head['songs']} songs)")
    for row in section.get("published", []):
        leak = "  [trained with leaked test songs]" if row["trained_with_leaked_test_songs"] else ""
        lines.append(f"  {row['model'] + ', ' + row['training']:<34} R² valence {row['valence_r2']:.4f}  arousal "
                     f"{row['arousal_r2']:.4f}  mean {(row['valence_r2'] + row['arousal_r2']) / 2:.4f}  "
                     f"({row['source']}){leak}")
    if not section.get("published"):
        lines.append("  (no published numbers kept for this protocol and dataset)")
    lines += [f"  note: {n}" for n in section.get("notes", [])]
    return lines
