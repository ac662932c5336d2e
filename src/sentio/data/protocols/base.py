"""What a benchmark protocol is: the datasets it applies to, how it splits (and may leave songs out),
how its labels are normalised, which windows it scores, and its headline metric."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ...errors import ArgumentError

PUBLISHED_FILE = "published.csv"


@dataclass
class PublishedResult:
    """One published number pair (R² valence / arousal) with where it comes from."""

    protocol: str
    dataset: str
    model: str
    training: str
    valence_r2: float
    arousal_r2: float
    trained_with_leaked_test_songs: bool
    source: str

    @property
    def mean_r2(self) -> float:
        return (self.valence_r2 + self.arousal_r2) / 2


def published_results(protocol: str | None = None) -> list[PublishedResult]:
    """The published numbers kept in published.csv (all, or one protocol's)."""
    text = resources.files(__package__).joinpath(PUBLISHED_FILE).read_text(encoding="utf-8")
    rows = [PublishedResult(r["protocol"], r["dataset"], r["model"], r["training"], float(r["valence_r2"]),
                            float(r["arousal_r2"]), r["trained_with_leaked_test_songs"] == "yes", r["source"])
            for r in csv.DictReader(text.splitlines())]
    return [r for r in rows if protocol is None or r.protocol == protocol]


@dataclass
class Assignment:
    """What a protocol did to a source table: the table with `split` (and `skip_reason`) set, and the
    facts for data_report.json's `protocol` section."""

    table: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


class BenchmarkProtocol:
    """Base of every protocol; a subclass sets the class attributes and `assign`."""

    name: str = ""
    datasets: tuple[str, ...] = ()  # the readers' names it applies to
    summary: str = ""
    headline_metric: str = "r2"  # r2: R² per dimension and mean; dynamic: per-song RMSE and Pearson r
    window_seconds: float | None = None  # the window the protocol scores (None: the backbone's)
    max_seconds: float | None = None  # only windows inside the first max_seconds of a clip (None: all)
    # How the protocol's model sees the labels: "none" (the [-1, 1] scale, a tanh head) or "z-score"
    # (z-scored with the non-test songs' mean and population std: an unbounded head trained on z
    # values, its predictions mapped back to [-1, 1] for the reports; see label_scale).
    label_transform: str = "none"
    leakage_option: bool = False  # whether --keep_published_leakage applies
    several_datasets: bool = False  # whether one run may take several of its datasets at once (--data A B C)

    @property
    def z_score(self) -> bool:
        return self.label_transform == "z-score"

    def label_scale(self, section: Mapping[str, Any]) -> tuple[list[float], list[float]] | None:
        """([valence, arousal] mean, std) that a model trained under this protocol z-scores its labels
        with, from data_report.json's `protocol` section; None when the labels stay on [-1, 1]."""
        if not self.z_score:
            return None
        stats = section.get("label_normalisation") or {}
        if not stats:
            raise ValueError(f"protocol {self.name}: the data report has no label_normalisation to z-score with")
        mean = [float(stats["mean"][d]) for d in ("valence", "arousal")]
        # constant labels (a tiny corpus): centred only, as to_z does
        std = [float(stats["std"][d]) if stats["std"][d] > 0 else 1.0 for d in ("valence", "arousal")]
        return mean, std

    def check_dataset(self, dataset: str, where: str) -> None:
        """One line (exit 2) for a dataset the protocol does not apply to."""
        if dataset not in self.datasets:
            raise ArgumentError(f"--protocol {self.name} applies to {', '.join(self.datasets)} data, and {where} is "
                                f"{dataset or 'not a dataset it knows'}; drop --protocol or pass that dataset's folder")

    def assign(self, table: pd.DataFrame, dataset: str, options: Any) -> Assignment:
        raise NotImplementedError

    def finish(self, manifest: pd.DataFrame) -> dict[str, Any]:
        """Facts computed on the validated manifest (e.g. the z-score statistics) for the report."""
        if not self.z_score:
            return {}
        return {"label_normalisation": z_score_stats(manifest)}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "headline_metric": self.headline_metric,
                "window_seconds": self.window_seconds, "max_seconds": self.max_seconds,
                "label_transform": self.label_transform}

    def published(self) -> list[PublishedResult]:
        return published_results(self.name)


def z_score_stats(manifest: pd.DataFrame) -> dict[str, Any]:
    """Mean and population std of the labels ([-1, 1]) of the songs that are not test songs."""
    rows = manifest[manifest["split"] != "test"]
    return {"kind": "z-score", "songs": int(len(rows)), "fitted_on": "train + validation songs",
            "mean": {d: float(rows[d].mean()) for d in ("valence", "arousal")},
            "std": {d: float(rows[d].std(ddof=0)) for d in ("valence", "arousal")}}


def to_z(values: np.ndarray, stats: Mapping[str, Any]) -> np.ndarray:
    """[N, 2] (valence, arousal) on [-1, 1] -> the protocol's z scale."""
    mean = np.array([stats["mean"]["valence"], stats["mean"]["arousal"]])
    std = np.array([stats["std"]["valence"], stats["std"]["arousal"]])
    std = np.where(std > 0, std, 1.0)  # constant labels (a tiny corpus): centred only, not divided by zero
    return (np.asarray(values, np.float64) - mean) / std


def with_split(table: pd.DataFrame, splits: Mapping[str, str], missing_reason: str) -> pd.DataFrame:
    """The table with `split` from song id -> split; a song without one gets `missing_reason` as skip_reason."""
    table = table.copy()
    table["split"] = [splits.get(str(s), "") for s in table["song_id"]]
    reason = table["skip_reason"].fillna("").astype(str) if "skip_reason" in table else pd.Series("", index=table.index)
    table["skip_reason"] = np.where((reason == "") & (table["split"] == ""), missing_reason, reason)
    return table


def protocol_notes(section: Mapping[str, Any]) -> list[str]:
    """Sentences for the model card and report.md from data_report.json's `protocol` section."""
    if not section:
        return []
    lines = [f"Protocol `{section['name']}`: {section.get('summary', '')}."]
    norm = section.get("label_normalisation")
    if norm:
        mean, std = norm["mean"], norm["std"]
        lines.append(f"Labels z-scored with the mean and population std of the {norm['songs']} non-test songs "
                     f"(on [-1, 1]: valence {mean['valence']:.4f} ± {std['valence']:.4f}, arousal "
                     f"{mean['arousal']:.4f} ± {std['arousal']:.4f}); R² and CCC are the same on that z scale as on "
                     "[-1, 1], since labels and predictions map by the same affine map.")
    if section.get("keep_published_leakage"):
        lines.append(f"Published lists kept as they are (--keep_published_leakage): {section.get('test_songs_trained_on', 0)} "
                     "train/validation songs are test songs of the published lists, so these scores were measured "
                     "with test songs trained on (the paper's condition).")
    elif "left_out" in section:
        lines.append(f"{section['left_out']} train/validation songs left out because they are test songs of the "
                     "published lists (copies across datasets), so no test song was trained on.")
    return lines
