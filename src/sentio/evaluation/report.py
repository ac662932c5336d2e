"""The numbers of an evaluation: metrics with bootstrap CIs, 1..9 errors, subsets, quadrants.

Everything is scored with `sentio.metrics.regression_metrics`, the same code training
reports with, on the [-1, 1] label scale (RMSE/MAE also on DEAM's 1..9 scale).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..data.labels import QUADRANTS, from_unit, quadrant
from ..metrics import DIMENSIONS, METRICS, mae, regression_metrics, rmse

# Columns of predictions.csv (a `window` column follows song_id at window level).
PREDICTION_COLUMNS = ["song_id", "subset", "valence_true", "arousal_true", "valence_pred", "arousal_pred",
                      "quadrant_true", "quadrant_pred"]
SCALE_1_9 = 4.0  # [-1, 1] -> 1..9 stretches differences by (9 - 1) / 2


def prediction_table(pred: np.ndarray, true: np.ndarray, song_ids: Sequence[str], subsets: dict[str, str],
                     windows: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per scored item (song, or window with `windows`), labels and predictions on [-1, 1]."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    table = pd.DataFrame({"song_id": [str(s) for s in song_ids]})
    if windows is not None:
        table["window"] = np.asarray(windows, dtype=int)
    table["subset"] = [subsets.get(str(s), "") for s in song_ids]
    for d, dim in enumerate(DIMENSIONS):
        table[f"{dim}_true"] = true[:, d]
    for d, dim in enumerate(DIMENSIONS):
        table[f"{dim}_pred"] = pred[:, d]
    table["quadrant_true"] = quadrant(true[:, 0], true[:, 1])
    table["quadrant_pred"] = quadrant(pred[:, 0], pred[:, 1])
    return table


def arrays(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(pred, true) as [N, 2] arrays from a prediction table."""
    pred = table[[f"{d}_pred" for d in DIMENSIONS]].to_numpy(np.float64)
    true = table[[f"{d}_true" for d in DIMENSIONS]].to_numpy(np.float64)
    return pred, true


@dataclass
class Interval:
    """A bootstrap 95% confidence interval, and how it was made."""

    low: float
    high: float
    method: str  # "BCa" or "percentile"


def song_bootstrap(statistic: Callable[[np.ndarray], np.ndarray], song_ids: Sequence[str], draws: int, seed: int,
                   confidence: float = 0.95) -> list[Interval] | None:
    """CIs of a vector `statistic(rows)` by resampling songs with scipy.stats.bootstrap.

    Songs, not rows, are resampled: at window level a song's windows are not independent, so a
    drawn song brings all its windows. BCa (bias-corrected and accelerated) where it applies; where
    its jackknife degenerates (e.g. a constant statistic) that entry falls back to the percentile
    interval. None when there are fewer than 2 songs or no draws.
    """
    codes, uniques = pd.factorize(pd.Series([str(s) for s in song_ids]))
    if draws < 1 or len(uniques) < 2:
        return None
    rows_of = [np.flatnonzero(codes == k) for k in range(len(uniques))]

    def of_songs(songs: np.ndarray) -> np.ndarray:
        return statistic(np.concatenate([rows_of[int(k)] for k in songs]))

    data = (np.arange(len(uniques)),)
    options = dict(n_resamples=draws, vectorized=False, confidence_level=confidence, paired=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate entry warns; it is replaced just below
        bca = stats.bootstrap(data, of_songs, method="BCa", rng=np.random.default_rng(seed), **options)
        percentile = stats.bootstrap(data, of_songs, method="percentile", rng=np.random.default_rng(seed),
                                     **options)
    out = []
    for lo, hi, plo, phi in zip(*(np.atleast_1d(x) for x in (*bca.confidence_interval, *percentile.confidence_interval))):
        if np.isfinite(lo) and np.isfinite(hi):
            out.append(Interval(float(lo), float(hi), "BCa"))
        else:
            out.append(Interval(float(plo), float(phi), "percentile"))
    return out


def _entry(value: float, interval: Interval | None, scale: float = 1.0) -> dict[str, Any]:
    if interval is None:
        return {"value": value, "ci_low": None, "ci_high": None}
    return {"value": value, "ci_low": interval.low * scale, "ci_high": interval.high * scale, "ci_method": interval.method}


def metrics_with_ci(pred: np.ndarray, true: np.ndarray, song_ids: Sequence[str], draws: int,
                    seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """({dim: {metric: entry}} on [-1, 1], {dim: {rmse|mae: entry}} on 1..9); dims include `mean`."""
    point = regression_metrics(pred, true)
    keys = list(point)
    intervals = song_bootstrap(lambda rows: np.array([regression_metrics(pred[rows], true[rows])[k] for k in keys]),
                               song_ids, draws, seed)
    ci = dict(zip(keys, intervals)) if intervals else {}
    unit = {dim: {m: _entry(point[f"{m}_{dim}"], ci.get(f"{m}_{dim}")) for m in METRICS}
            for dim in (*DIMENSIONS, "mean")}
    # Errors on 1..9 come from relabelled values; the CI scales exactly (the map is linear).
    p9, t9 = from_unit(pred), from_unit(true)
    nine: dict[str, Any] = {}
    for d, dim in enumerate(DIMENSIONS):
        nine[dim] = {name: _entry(func(p9[:, d], t9[:, d]), ci.get(f"{name}_{dim}"), SCALE_1_9)
                     for name, func in (("rmse", rmse), ("mae", mae))}
    nine["mean"] = {name: _entry(float(np.mean([nine[d][name]["value"] for d in DIMENSIONS])),
                                 ci.get(f"{name}_mean"), SCALE_1_9) for name in ("rmse", "mae")}
    return unit, nine


def subset_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """Point metrics per DEAM subset (2013/2014/2015); empty when no row has a subset."""
    out: dict[str, Any] = {}
    subsets = table["subset"].fillna("").astype(str)
    for name in sorted(s for s in subsets.unique() if s.strip()):
        part = table[subsets == name]
        pred, true = arrays(part)
        out[name] = {"songs": int(part["song_id"].nunique()), "rows": len(part), "metrics": regression_metrics(pred, true)}
    return out


def quadrant_report(table: pd.DataFrame) -> dict[str, Any]:
    """Confusion matrix over QUADRANTS (rows true, columns predicted) and accuracy."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(table["quadrant_true"].astype(str), table["quadrant_pred"].astype(str),
                              labels=list(QUADRANTS))
    total = int(matrix.sum())
    return {"labels": list(QUADRANTS), "confusion": matrix.tolist(),
            "accuracy": float(np.trace(matrix) / total) if total else 0.0, "rows": total}


def build_report(table: pd.DataFrame, *, level: str, split: str, model_dir: str, windows: int, draws: int,
                 seed: int) -> dict[str, Any]:
    """The whole eval_report.json (plots and notes are added by the caller)."""
    pred, true = arrays(table)
    unit, nine = metrics_with_ci(pred, true, table["song_id"].tolist(), draws, seed)
    return {
        "model_dir": model_dir,
        "split": split,
        "level": level,
        "label_scale": "[-1, 1] (1..9 = 5 + 4 x value)",
        "counts": {"songs": int(table["song_id"].nunique()), "windows": int(windows), "scored": len(table)},
        "bootstrap": {"draws": draws, "seed": seed, "confidence": 0.95,
                      "method": "scipy.stats.bootstrap over songs (resampled with replacement): BCa, percentile "
                                "where BCa degenerates (each entry's ci_method says which)"},
        "metrics": unit,
        "metrics_1_9": nine,
        "flat": regression_metrics(pred, true),
        "subsets": subset_metrics(table),
        "quadrants": quadrant_report(table),
    }


def _fmt(entry: dict[str, Any]) -> str:
    if entry["ci_low"] is None:
        return f"{entry['value']:.3f}"
    return f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"


def markdown(report: dict[str, Any], plots: dict[str, str], notes: Sequence[str] = ()) -> str:
    """report.md: metric table with CIs, subsets, quadrant matrix, and the pictures (relative links)."""
    counts, boot = report["counts"], report["bootstrap"]
    ci = f"95% CI from {boot['draws']} bootstrap draws over songs" if boot["draws"] else "no bootstrap CI"
    lines = [
        f"# Evaluation: {report['split']} split",
        "",
        f"Model `{report['model_dir']}`, {report['level']}-level scores ({counts['songs']} songs, "
        f"{counts['windows']} windows). Labels and predictions on [-1, 1]; brackets: {ci}.",
        "",
        "| dimension | " + " | ".join(m.upper() if m != "pearson" else "Pearson r" for m in METRICS)
        + " | RMSE (1..9) | MAE (1..9) |",
        "|---|" + "---|" * (len(METRICS) + 2),
    ]
    for dim, row in report["metrics"].items():
        nine = report["metrics_1_9"][dim]
        cells = [_fmt(row[m]) for m in METRICS] + [_fmt(nine["rmse"]), _fmt(nine["mae"])]
        lines.append(f"| {dim} | " + " | ".join(cells) + " |")
    if report["subsets"]:
        lines += ["", "## By subset", "", "| subset | songs | CCC valence | CCC arousal | RMSE valence | RMSE arousal |",
                  "|---|---|---|---|---|---|"]
        for name, part in report["subsets"].items():
            m = part["metrics"]
            # CCC of a single row is undefined (regression_metrics returns 0): don't print a number
            ccc = [f"{m[k]:.3f}" if part["rows"] > 1 else "n/a" for k in ("ccc_valence", "ccc_arousal")]
            lines.append(f"| {name} | {part['songs']} | {ccc[0]} | {ccc[1]} | "
                         f"{m['rmse_valence']:.3f} | {m['rmse_arousal']:.3f} |")
    quad = report["quadrants"]
    lines += ["", f"## Quadrants (accuracy {quad['accuracy']:.3f})", "", "Rows: true quadrant; columns: predicted.", "",
              "| true \\ predicted | " + " | ".join(quad["labels"]) + " |", "|---|" + "---|" * len(quad["labels"])]
    for name, row in zip(quad["labels"], quad["confusion"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    if plots:
        lines += ["", "## Figures", ""]
        for title, file in plots.items():
            lines += [f"### {title}", "", f"![{title}]({file})", ""]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines).rstrip() + "\n"
