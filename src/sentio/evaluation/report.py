"""The numbers of an evaluation: metrics with bootstrap CIs, 1..9 errors, subsets, quadrants.

Everything is scored with `sentio.metrics.regression_metrics`, the same code training
reports with, on the [-1, 1] label scale (RMSE/MAE also on DEAM's 1..9 scale).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..calibration import Calibration
from ..data.labels import QUADRANTS, from_unit, quadrant
from ..metrics import DIMENSIONS, METRICS, curve_list_metrics, mae, pearson_r, regression_metrics, rmse

# Columns of predictions.csv (a `window` column follows song_id at window level).
PREDICTION_COLUMNS = ["song_id", "subset", "valence_true", "arousal_true", "valence_pred", "arousal_pred",
                      "quadrant_true", "quadrant_pred"]
SCALE_1_9 = 4.0  # [-1, 1] -> 1..9 stretches differences by (9 - 1) / 2
# Metrics undefined on fewer than two scored items (a correlation of one point): reported as None
# (n/a), never as the 0 that regression_metrics returns for them.
NEEDS_TWO = ("ccc", "pearson", "r2")


def defined_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float | None]:
    """regression_metrics, with the NEEDS_TWO metrics None when fewer than two items are scored."""
    point: dict[str, float | None] = dict(regression_metrics(pred, true))
    if len(pred) < 2:
        point.update({k: None for k in point if k.split("_")[0] in NEEDS_TWO})
    return point


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
                   confidence: float = 0.95, of_songs: bool = False) -> list[Interval] | None:
    """CIs of a vector `statistic(rows)` by resampling songs with scipy.stats.bootstrap.

    Songs, not rows, are resampled: at window level a song's windows are not independent, so a
    drawn song brings all its windows. BCa (bias-corrected and accelerated) where it applies; where
    its jackknife degenerates (e.g. a constant statistic) that entry falls back to the percentile
    interval. None when there are fewer than 2 songs or no draws. With `of_songs`, `statistic`
    takes the drawn songs' indices (in first-seen order of `song_ids`, repeats allowed) instead of
    their rows: a statistic computed from per-song sums (`song_sums_statistic`) needs no rows.
    """
    codes, uniques = pd.factorize(pd.Series([str(s) for s in song_ids]))
    if draws < 1 or len(uniques) < 2:
        return None
    rows_of = [np.flatnonzero(codes == k) for k in range(len(uniques))]

    def of_draw(songs: np.ndarray) -> np.ndarray:
        if of_songs:
            return statistic(np.asarray(songs, dtype=int))
        return statistic(np.concatenate([rows_of[int(k)] for k in songs]))

    data = (np.arange(len(uniques)),)
    options = dict(n_resamples=draws, vectorized=False, confidence_level=confidence, paired=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate entry warns; it is replaced just below
        bca = stats.bootstrap(data, of_draw, method="BCa", rng=np.random.default_rng(seed), **options)
        percentile = stats.bootstrap(data, of_draw, method="percentile", rng=np.random.default_rng(seed),
                                     **options)
    out = []
    for lo, hi, plo, phi in zip(*(np.atleast_1d(x) for x in (*bca.confidence_interval, *percentile.confidence_interval))):
        if np.isfinite(lo) and np.isfinite(hi):
            out.append(Interval(float(lo), float(hi), "BCa"))
        else:
            out.append(Interval(float(plo), float(phi), "percentile"))
    return out


def song_sums_statistic(pred: np.ndarray, true: np.ndarray, song_ids: Sequence[str],
                        keys: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    """`keys` of `regression_metrics` for a resample of the songs (indices in first-seen order of
    `song_ids`, repeats allowed; a song brings all its rows), from per-song sums computed once: n and
    the sums of p, t, p^2, t^2, pt and |p - t| per dimension give every metric of a draw in a few
    array operations. Calling scikit-learn's metrics for each of thousands of draws took most of an
    evaluation (96 of 106 s for 10 songs); the values are the same (a test holds them to it)."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    codes, uniques = pd.factorize(pd.Series([str(s) for s in song_ids]))
    parts = np.stack([np.ones_like(pred), pred, true, pred**2, true**2, pred * true, np.abs(pred - true)], axis=-1)
    sums = np.zeros((len(uniques), *parts.shape[1:]))  # [songs, dims, 7]
    np.add.at(sums, codes, parts)
    # per song, the extremes of each side: a draw whose values are all equal has an undefined
    # Pearson r / R2, which regression_metrics reports as 0 (a variance from sums is only ~0 there)
    low_p, high_p = (np.full((len(uniques), pred.shape[1]), v) for v in (np.inf, -np.inf))
    low_t, high_t = low_p.copy(), high_p.copy()
    np.minimum.at(low_p, codes, pred), np.maximum.at(high_p, codes, pred)
    np.minimum.at(low_t, codes, true), np.maximum.at(high_t, codes, true)

    def statistic(songs: np.ndarray) -> np.ndarray:
        n, sp, st, spp, stt, spt, sad = np.moveaxis(sums[songs].sum(axis=0), -1, 0)  # each [dims]
        mp, mt = sp / n, st / n
        vp, vt, cov = np.maximum(spp / n - mp**2, 0), np.maximum(stt / n - mt**2, 0), spt / n - mp * mt
        flat_p = low_p[songs].min(axis=0) == high_p[songs].max(axis=0)
        flat_t = low_t[songs].min(axis=0) == high_t[songs].max(axis=0)
        denom = vp + vt + (mp - mt) ** 2
        squared = np.maximum(spp - 2 * spt + stt, 0)
        defined_r = (n > 1) & ~flat_p & ~flat_t & (vp * vt > 0)
        defined_r2 = (n > 1) & ~flat_t & (vt > 0)
        values = {
            "ccc": np.where(denom > 0, 2 * cov / np.where(denom > 0, denom, 1), 0.0),
            "pearson": np.where(defined_r, np.clip(cov / np.sqrt(np.where(defined_r, vp * vt, 1)), -1, 1), 0.0),
            "r2": np.where(defined_r2, 1 - squared / np.where(defined_r2, n * vt, 1), 0.0),
            "rmse": np.sqrt(squared / n),
            "mae": sad / n,
        }
        out = {f"{k}_{dim}": float(v[d]) for k, v in values.items() for d, dim in enumerate(DIMENSIONS)}
        out.update({f"{k}_mean": float(np.mean(v)) for k, v in values.items()})
        return np.array([out[k] for k in keys])

    return statistic


def _entry(value: float | None, interval: Interval | None, scale: float = 1.0, songs: int | None = None) -> dict[str, Any]:
    counted = {} if songs is None else {"songs": songs}  # how many songs the number rests on
    if interval is None or value is None:
        return {"value": value, "ci_low": None, "ci_high": None, **counted}
    return {"value": value, "ci_low": interval.low * scale, "ci_high": interval.high * scale, "ci_method": interval.method,
            **counted}


def metrics_with_ci(pred: np.ndarray, true: np.ndarray, song_ids: Sequence[str], draws: int,
                    seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """({dim: {metric: entry}} on [-1, 1], {dim: {rmse|mae: entry}} on 1..9); dims include `mean`.
    Each entry says how many songs it rests on; CCC, Pearson r and R2 of one item are None (n/a)."""
    point = defined_metrics(pred, true)
    keys = list(point)
    songs = len(set(map(str, song_ids)))
    intervals = song_bootstrap(song_sums_statistic(pred, true, song_ids, keys), song_ids, draws, seed, of_songs=True)
    ci = dict(zip(keys, intervals)) if intervals else {}
    unit = {dim: {m: _entry(point[f"{m}_{dim}"], ci.get(f"{m}_{dim}"), songs=songs) for m in METRICS}
            for dim in (*DIMENSIONS, "mean")}
    # Errors on 1..9 come from relabelled values; the CI scales exactly (the map is linear).
    p9, t9 = from_unit(pred), from_unit(true)
    nine: dict[str, Any] = {}
    for d, dim in enumerate(DIMENSIONS):
        nine[dim] = {name: _entry(func(p9[:, d], t9[:, d]), ci.get(f"{name}_{dim}"), SCALE_1_9, songs)
                     for name, func in (("rmse", rmse), ("mae", mae))}
    nine["mean"] = {name: _entry(float(np.mean([nine[d][name]["value"] for d in DIMENSIONS])),
                                 ci.get(f"{name}_mean"), SCALE_1_9, songs) for name in ("rmse", "mae")}
    return unit, nine


def subset_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """Point metrics per DEAM subset (2013/2014/2015); empty when no row has a subset."""
    out: dict[str, Any] = {}
    subsets = table["subset"].fillna("").astype(str)
    for name in sorted(s for s in subsets.unique() if s.strip()):
        part = table[subsets == name]
        pred, true = arrays(part)
        out[name] = {"songs": int(part["song_id"].nunique()), "rows": len(part), "metrics": defined_metrics(pred, true)}
    return out


def quadrant_report(table: pd.DataFrame) -> dict[str, Any]:
    """Confusion matrix over QUADRANTS (rows true, columns predicted) and accuracy."""
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(table["quadrant_true"].astype(str), table["quadrant_pred"].astype(str),
                              labels=list(QUADRANTS))
    total = int(matrix.sum())
    return {"labels": list(QUADRANTS), "confusion": matrix.tolist(),
            "accuracy": float(np.trace(matrix) / total) if total else 0.0, "rows": total}


@dataclass
class EvalReport:
    """An evaluation's numbers; eval_report.json is written from it (to_json). The nested sections
    (metrics, subsets, quadrants, dynamic, coverage) are that file's JSON as it is."""

    model_dir: str
    split: str
    level: str  # "song" or "window": what one scored row is
    counts: dict[str, int]  # songs, windows, scored
    bootstrap: dict[str, Any]
    metrics: dict[str, Any]  # {dim: {metric: entry}} on [-1, 1]; dims include `mean`
    metrics_1_9: dict[str, Any]  # {dim: {rmse|mae: entry}} on 1..9
    flat: dict[str, float | None]  # regression_metrics' flat names, no intervals; None: undefined
    subsets: dict[str, Any]
    quadrants: dict[str, Any]
    data: str = ""  # where the manifest came from
    left_out_seen_in_training: dict[str, Any] | None = None  # held-out songs the run trained on (run_info.json)
    dynamic: dict[str, Any] | None = None  # the 2 Hz curve scores (a dynamic model on data with curves)
    coverage: dict[str, Any] | None = None  # the calibrated intervals' coverage (a run with calibration.json)
    protocol: dict[str, Any] | None = None  # a benchmark protocol's headline beside the published numbers
    figures: dict[str, str] = field(default_factory=dict)  # {title: file}
    notes: list[str] = field(default_factory=list)

    def value(self, metric: str, dim: str) -> float | None:
        """A point metric on [-1, 1], e.g. value("ccc", "mean"); None where undefined (one song scored)."""
        return self.metrics[dim][metric]["value"]

    @property
    def quadrant_accuracy(self) -> float:
        return self.quadrants["accuracy"]

    def to_json(self) -> dict[str, Any]:
        """eval_report.json (keys in the order the file always had)."""
        out = {"model_dir": self.model_dir, "split": self.split, "level": self.level,
               "label_scale": "[-1, 1] (1..9 = 5 + 4 x value)", "counts": self.counts, "bootstrap": self.bootstrap,
               "metrics": self.metrics, "metrics_1_9": self.metrics_1_9, "flat": self.flat, "subsets": self.subsets,
               "quadrants": self.quadrants, "data": self.data}
        if self.left_out_seen_in_training is not None:
            out["left_out_seen_in_training"] = self.left_out_seen_in_training
        if self.dynamic is not None:
            out["dynamic"] = self.dynamic
        if self.coverage is not None:
            out["coverage"] = self.coverage
        if self.protocol is not None:
            out["protocol"] = self.protocol
        out["figures"], out["notes"] = self.figures, self.notes
        return out


def build_report(table: pd.DataFrame, *, level: str, split: str, model_dir: str, windows: int, draws: int,
                 seed: int) -> EvalReport:
    """The whole evaluation report (the data source, curves, coverage, plots and notes are added by the caller)."""
    pred, true = arrays(table)
    unit, nine = metrics_with_ci(pred, true, table["song_id"].tolist(), draws, seed)
    return EvalReport(
        model_dir=model_dir,
        split=split,
        level=level,
        counts={"songs": int(table["song_id"].nunique()), "windows": int(windows), "scored": len(table)},
        bootstrap={"draws": draws, "seed": seed, "confidence": 0.95,
                   "method": "scipy.stats.bootstrap over songs (resampled with replacement): BCa, percentile "
                             "where BCa degenerates (each entry's ci_method says which)"},
        metrics=unit,
        metrics_1_9=nine,
        flat=defined_metrics(pred, true),
        subsets=subset_metrics(table),
        quadrants=quadrant_report(table),
    )


def _fmt(entry: dict[str, Any]) -> str:
    if entry["value"] is None:
        return "n/a"
    if entry["ci_low"] is None:
        return f"{entry['value']:.3f}"
    return f"{entry['value']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"


def markdown(report: EvalReport, plots: dict[str, str], notes: Sequence[str] = ()) -> str:
    """report.md: metric table with CIs, subsets, quadrant matrix, and the pictures (relative links)."""
    lines = _metric_table(report)
    if report.subsets:
        lines += _subset_table(report.subsets)
    if report.dynamic is not None:
        lines += _curve_table(report.dynamic)
    if report.coverage is not None:
        lines += _coverage_table(report.coverage)
    if report.protocol:  # a benchmark protocol's headline beside the published numbers
        lines += ["", "## Protocol", "", "```", *report.protocol.get("table", []), "```"]
    lines += _quadrant_table(report.quadrants)
    if plots:
        lines += ["", "## Figures", ""]
        for title, file in plots.items():
            lines += [f"### {title}", "", f"![{title}]({file})", ""]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines).rstrip() + "\n"


def _metric_table(report: EvalReport) -> list[str]:
    counts, boot = report.counts, report.bootstrap
    ci = f"95% CI from {boot['draws']} bootstrap draws over songs" if boot["draws"] else "no bootstrap CI"
    lines = [
        f"# Evaluation: {report.split} split",
        "",
        f"Model `{report.model_dir}`, {report.level}-level scores ({counts['songs']} songs, "
        f"{counts['windows']} windows). Labels and predictions on [-1, 1]; brackets: {ci}. "
        f"Every number of this table rests on {counts['songs']} song{'s' if counts['songs'] != 1 else ''}"
        + (" (CCC, Pearson r and R2 need at least 2: n/a)." if counts["scored"] < 2 else "."),
        "",
        "| dimension | " + " | ".join(m.upper() if m != "pearson" else "Pearson r" for m in METRICS)
        + " | RMSE (1..9) | MAE (1..9) |",
        "|---|" + "---|" * (len(METRICS) + 2),
    ]
    for dim, row in report.metrics.items():
        nine = report.metrics_1_9[dim]
        cells = [_fmt(row[m]) for m in METRICS] + [_fmt(nine["rmse"]), _fmt(nine["mae"])]
        lines.append(f"| {dim} | " + " | ".join(cells) + " |")
    return lines


def _subset_table(subsets: dict[str, Any]) -> list[str]:
    lines = ["", "## By subset", "", "| subset | songs | CCC valence | CCC arousal | RMSE valence | RMSE arousal |",
             "|---|---|---|---|---|---|"]
    for name, part in subsets.items():
        m = part["metrics"]
        # CCC of a single row is undefined (None): don't print a number
        ccc = [f"{m[k]:.3f}" if m[k] is not None else "n/a" for k in ("ccc_valence", "ccc_arousal")]
        lines.append(f"| {name} | {part['songs']} | {ccc[0]} | {ccc[1]} | "
                     f"{m['rmse_valence']:.3f} | {m['rmse_arousal']:.3f} |")
    return lines


def _curve_table(dyn: dict[str, Any]) -> list[str]:
    lines = ["", "## 2 Hz curves (MediaEval protocol)", "",
             f"{dyn['songs']} songs, {dyn['frames']} labelled half-seconds. Per-song Pearson r and RMSE are "
             "averaged over songs; CCC is over all frames. The song-level table above scores each song's mean "
             "prediction.", "",
             "| dimension | per-song r | per-song RMSE | CCC (all frames) | r (all frames) |", "|---|---|---|---|---|"]
    for dim, row in dyn["metrics"].items():
        lines.append(f"| {dim} | {_fmt(row['song_pearson'])} | {_fmt(row['song_rmse'])} | {_fmt(row['ccc'])} | "
                     f"{_fmt(row['pearson'])} |")
    return lines


def _coverage_table(cov: dict[str, Any]) -> list[str]:
    lines = ["", "## Calibrated intervals", "", f"{cov['method']} ({cov['calibration_songs']} songs).", "",
             "| nominal | dimension | coverage | mean width | constant-width coverage | constant width |",
             "|---|---|---|---|---|---|"]
    for level, dims in cov["levels"].items():
        for dim, row in dims.items():
            const = row.get("constant_width")
            cells = [f"{const['coverage']:.3f}", f"{const['mean_width']:.3f}"] if const else ["-", "-"]
            lines.append(f"| {float(level):.0%} | {dim} | {_fmt(row['coverage'])} | {row['mean_width']:.3f} | "
                         + " | ".join(cells) + " |")
    if "spread_vs_raters_spearman" in cov:
        rho = cov["spread_vs_raters_spearman"]
        lines += ["", "Spearman correlation of the predicted spread with the raters' spread: "
                  + ", ".join(f"{dim} {_fmt(entry)}" for dim, entry in rho.items()) + "."]
    return lines


def _quadrant_table(quad: dict[str, Any]) -> list[str]:
    lines = ["", f"## Quadrants (accuracy {quad['accuracy']:.3f})", "", "Rows: true quadrant; columns: predicted.", "",
             "| true \\ predicted | " + " | ".join(quad["labels"]) + " |", "|---|" + "---|" * len(quad["labels"])]
    for name, row in zip(quad["labels"], quad["confusion"]):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return lines


# ---- time-resolved (2 Hz) runs --------------------------------------------------------------------
CURVE_KEYS = ("ccc", "pearson", "rmse", "song_pearson", "song_rmse")


def curve_resample_statistic(preds: Sequence[np.ndarray], trues: Sequence[np.ndarray],
                             keys: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    """`keys` of curve_list_metrics for a resample of the songs (an array of song indices, repeats
    allowed), from per-song sums computed once: frame-level CCC, Pearson r and RMSE from the sums of
    x, y, x^2, y^2 and xy, per-song r and RMSE looked up. Recomputing every song's r for each of
    thousands of bootstrap draws took minutes; this takes milliseconds, with the same values."""
    sums = np.array([[[len(p), p[:, d].sum(), t[:, d].sum(), (p[:, d] ** 2).sum(), (t[:, d] ** 2).sum(),
                       (p[:, d] * t[:, d]).sum()] for d in range(len(DIMENSIONS))] for p, t in zip(preds, trues)])
    song_r = np.array([[pearson_r(p[:, d], t[:, d]) if len(p) > 1 and np.ptp(p[:, d]) > 0 and np.ptp(t[:, d]) > 0
                        else np.nan for d in range(len(DIMENSIONS))] for p, t in zip(preds, trues)])
    song_rmse = np.array([[rmse(p[:, d], t[:, d]) for d in range(len(DIMENSIONS))] for p, t in zip(preds, trues)])

    def statistic(songs: np.ndarray) -> np.ndarray:
        n, sp, st, spp, stt, spt = np.moveaxis(sums[songs].sum(axis=0), -1, 0)  # each [dims]
        mp, mt = sp / n, st / n
        vp, vt, cov = np.maximum(spp / n - mp**2, 0), np.maximum(stt / n - mt**2, 0), spt / n - mp * mt
        denom = vp + vt + (mp - mt) ** 2
        r = song_r[songs]
        values = {
            "ccc": np.where(denom > 0, 2 * cov / np.where(denom > 0, denom, 1), 0.0),
            "pearson": np.where(vp * vt > 0, cov / np.sqrt(np.where(vp * vt > 0, vp * vt, 1)), 0.0),
            "rmse": np.sqrt(np.maximum(spp - 2 * spt + stt, 0) / n),
            "song_pearson": np.array([np.nanmean(r[:, d]) if np.isfinite(r[:, d]).any() else 0.0
                                      for d in range(len(DIMENSIONS))]),
            "song_rmse": song_rmse[songs].mean(axis=0),
        }
        out = {f"{k}_{dim}": float(v[d]) for k, v in values.items() for d, dim in enumerate(DIMENSIONS)}
        out.update({f"{k}_mean": float(np.mean(v)) for k, v in values.items()})
        return np.array([out[k] for k in keys])

    return statistic


def curve_report(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], static: dict[str, np.ndarray],
                 draws: int, seed: int) -> dict[str, Any]:
    """The MediaEval protocol on stitched test curves (song -> (times, predicted [K, 2], labels [K, 2])):
    per-song Pearson r and RMSE averaged over songs, CCC over all frames, each with a bootstrap CI
    over songs; and static metrics of each curve's mean against the song's static label."""
    songs = [s for s in curves if len(curves[s][0])]
    preds, trues = [curves[s][1] for s in songs], [curves[s][2] for s in songs]
    point = curve_list_metrics(preds, trues)
    keys = [f"{k}_{d}" for k in CURVE_KEYS for d in (*DIMENSIONS, "mean")]
    intervals = song_bootstrap(curve_resample_statistic(preds, trues, keys), songs, draws, seed)
    ci = dict(zip(keys, intervals)) if intervals else {}
    dynamic = {dim: {k: _entry(point[f"{k}_{dim}"], ci.get(f"{k}_{dim}")) for k in CURVE_KEYS}
               for dim in (*DIMENSIONS, "mean")}
    means = np.array([p.mean(axis=0) for p in preds])
    labelled = [s for s in songs if s in static]
    static_pred = np.array([curves[s][1].mean(axis=0) for s in labelled])
    static_true = np.array([static[s] for s in labelled])
    static_unit, _ = metrics_with_ci(static_pred, static_true, labelled, draws, seed) if len(labelled) > 1 else ({}, {})
    by_error = sorted(songs, key=lambda s: float(np.mean([rmse(curves[s][1][:, d], curves[s][2][:, d])
                                                          for d in range(len(DIMENSIONS))])))
    return {"songs": len(songs), "frames": int(point["num_frames"]), "metrics": dynamic, "static_from_curve_means": static_unit,
            "picks": {"best": by_error[0], "median": by_error[len(by_error) // 2], "worst": by_error[-1]},
            "curve_means": {s: m.tolist() for s, m in zip(songs, means)}}


# ---- calibrated intervals -------------------------------------------------------------------------
def coverage_report(calibration: Calibration, pred: np.ndarray, spread: np.ndarray | None, true: np.ndarray,
                    song_ids: Sequence[str], label_spread: np.ndarray | None, draws: int,
                    seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Empirical coverage (bootstrap CI over songs) and mean width of each nominal level on the
    scored songs, beside the constant-width intervals when the run predicts spreads; the Spearman
    correlation of the predicted spread with the raters'. Also the interval columns for
    predictions.csv."""
    from scipy.stats import spearmanr

    report: dict[str, Any] = {"method": calibration.method, "calibration_songs": calibration.songs, "levels": {}}
    columns: dict[str, np.ndarray] = {}
    constant = Calibration(False, calibration.constant_width, calibration.sigma, calibration.songs) \
        if calibration.constant_width else None
    for level, (low, high) in calibration.intervals(pred, spread).items():
        inside = ((low <= true) & (true <= high)).astype(np.float64)
        cover = song_bootstrap(lambda rows: inside[rows].mean(axis=0), song_ids, draws, seed)
        entry = {}
        for d, dim in enumerate(DIMENSIONS):
            entry[dim] = {"coverage": _entry(float(inside[:, d].mean()), cover[d] if cover else None),
                          "mean_width": float((high - low)[:, d].mean())}
            columns[f"{dim}_low_{level * 100:g}"], columns[f"{dim}_high_{level * 100:g}"] = low[:, d], high[:, d]
        if constant is not None:
            c_low, c_high = constant.intervals(pred)[level]
            for d, dim in enumerate(DIMENSIONS):
                entry[dim]["constant_width"] = {"coverage": float(((c_low <= true) & (true <= c_high))[:, d].mean()),
                                                "mean_width": float((c_high - c_low)[:, d].mean())}
        report["levels"][f"{level:g}"] = entry
    if spread is not None and label_spread is not None:
        known = np.isfinite(label_spread).all(axis=1)
        if known.sum() > 2:
            rho = lambda rows: np.array([spearmanr(spread[known][rows, d], label_spread[known][rows, d]).statistic  # noqa: E731
                                         for d in range(len(DIMENSIONS))])
            ci = song_bootstrap(rho, [s for s, k in zip(song_ids, known) if k], draws, seed)
            values = rho(np.arange(int(known.sum())))
            report["spread_vs_raters_spearman"] = {dim: _entry(float(values[d]), ci[d] if ci else None)
                                                   for d, dim in enumerate(DIMENSIONS)}
    return report, columns
