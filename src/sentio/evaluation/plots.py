"""Evaluation pictures (matplotlib, Agg: no display needed): scatter, errors, VA plane, confusion, curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless servers and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..metrics import DIMENSIONS  # noqa: E402

DPI = 120
COLORS = {"valence": "tab:blue", "arousal": "tab:orange", "mean": "tab:green"}
SUBSET_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"]


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path.name


def _groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Rows grouped by DEAM subset when there is one, so the scatter shows them apart."""
    subsets = table["subset"].fillna("").astype(str)
    names = sorted(s for s in subsets.unique() if s.strip())
    if not names:
        return [("", table)]
    groups = [(f"subset {n}", table[subsets == n]) for n in names]
    rest = table[~subsets.isin(names)]
    return groups + ([("no subset", rest)] if len(rest) else [])


def scatter(table: pd.DataFrame, ccc: dict[str, float], path: Path, level: str) -> str:
    """Predicted vs true per dimension, identity line, CCC in each title."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    alpha = 0.8 if len(table) < 300 else 0.4
    for ax, dim in zip(axes, DIMENSIONS):
        groups = _groups(table)
        for (name, part), color in zip(groups, SUBSET_COLORS):
            ax.scatter(part[f"{dim}_true"], part[f"{dim}_pred"], s=18, alpha=alpha, color=color,
                       label=name or None, edgecolors="none")
        ax.plot([-1, 1], [-1, 1], color="0.3", linestyle="--", linewidth=1, label="identity")
        ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal", xlabel=f"true {dim}",
               ylabel=f"predicted {dim}", title=f"{dim.capitalize()}: CCC " + ("n/a" if ccc[dim] is None else f"{round(ccc[dim], 3) + 0.0:.3f}"))  # + 0.0: no "-0.000"
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Predicted vs true ({level} level, n = {len(table)})")
    return _save(fig, path)


def error_histograms(table: pd.DataFrame, path: Path, level: str) -> str:
    """Histogram of prediction - truth per dimension, with the mean error marked."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    errors = {dim: (table[f"{dim}_pred"] - table[f"{dim}_true"]).to_numpy() for dim in DIMENSIONS}
    edge = max(0.1, float(np.nanmax(np.abs(np.concatenate(list(errors.values())))))) * 1.05
    bins = np.linspace(-edge, edge, 31)  # same bins on both panels so they compare
    for ax, dim in zip(axes, DIMENSIONS):
        err = errors[dim]
        ax.hist(err, bins=bins, color=COLORS[dim], alpha=0.8, edgecolor="white")
        ax.axvline(0, color="0.3", linewidth=1)
        ax.axvline(err.mean(), color="crimson", linestyle="--", linewidth=1.2, label=f"mean {err.mean():+.3f}")
        ax.set(xlabel=f"{dim} error (predicted - true, [-1, 1] scale)", ylabel=f"{level}s",
               title=f"{dim.capitalize()} error: SD {err.std():.3f}")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no "2.5 songs" ticks
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def va_plane(table: pd.DataFrame, path: Path, level: str) -> str:
    """True and predicted points on the valence-arousal plane, each pair joined by a line."""
    fig, ax = plt.subplots(figsize=(7, 7))
    vt, at = table["valence_true"].to_numpy(), table["arousal_true"].to_numpy()
    vp, ap = table["valence_pred"].to_numpy(), table["arousal_pred"].to_numpy()
    # One LineCollection-like call: NaN-separated segments draw fast even for thousands of pairs.
    xs = np.column_stack([vt, vp, np.full_like(vt, np.nan)]).ravel()
    ys = np.column_stack([at, ap, np.full_like(at, np.nan)]).ravel()
    ax.plot(xs, ys, color="0.6", linewidth=0.7, alpha=0.7, zorder=1)
    ax.scatter(vt, at, s=22, color="tab:blue", label="true", zorder=2, edgecolors="none")
    ax.scatter(vp, ap, s=26, color="tab:red", marker="x", label="predicted", zorder=3)
    ax.axhline(0, color="0.2", linewidth=1)
    ax.axvline(0, color="0.2", linewidth=1)
    corners = {"happy": (0.97, 0.97, "right", "top"), "tense": (-0.97, 0.97, "left", "top"),
               "sad": (-0.97, -0.97, "left", "bottom"), "calm": (0.97, -0.97, "right", "bottom")}
    for name, (x, y, ha, va) in corners.items():
        ax.text(x, y, name, ha=ha, va=va, fontsize=13, color="0.35", fontweight="bold")
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal", xlabel="valence (negative -> positive)",
           ylabel="arousal (calm -> excited)", title=f"Valence-arousal plane: true vs predicted ({len(table)} {level}s)")
    ax.legend(loc="lower center", ncol=2, fontsize=9)
    ax.grid(alpha=0.25)
    return _save(fig, path)


def confusion(quadrants: dict[str, Any], path: Path) -> str:
    """Quadrant confusion matrix (rows true, columns predicted), counts in every cell."""
    labels, matrix = quadrants["labels"], np.asarray(quadrants["confusion"])
    fig, ax = plt.subplots(figsize=(5.6, 5))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=max(1, matrix.max()))
    for i in range(len(labels)):
        for j in range(len(labels)):
            dark = matrix[i, j] > 0.6 * max(1, matrix.max())
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=12, color="white" if dark else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted quadrant", ylabel="true quadrant",
           title=f"Quadrants: accuracy {quadrants['accuracy']:.3f} (n = {quadrants['rows']})")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="count")
    return _save(fig, path)


def read_log_history(model_dir: str | Path) -> list[dict[str, Any]] | None:
    """`log_history` of the run's trainer_state.json, or None when the run has none."""
    state = Path(model_dir) / "trainer_state.json"
    if not state.is_file():
        return None
    try:
        history = json.loads(state.read_text()).get("log_history")
    except (OSError, ValueError):
        return None
    return history or None


def training_curves(history: list[dict[str, Any]], path: Path) -> str | None:
    """Train loss vs step, eval loss vs epoch, eval CCC vs epoch; None when nothing is logged."""
    train = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    evals = [h for h in history if "eval_loss" in h and "epoch" in h]
    ccc_keys = [k for k in ("eval_ccc_valence", "eval_ccc_arousal", "eval_ccc_mean") if any(k in h for h in evals)]
    panels = [p for p, keep in (("train", train), ("eval_loss", evals), ("ccc", ccc_keys)) if keep]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 4), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "train":
            steps, losses = zip(*train)
            ax.plot(steps, losses, color="tab:blue", marker="." if len(steps) < 40 else None)
            ax.set(xlabel="step", ylabel="training loss", title="Training loss")
        elif panel == "eval_loss":
            ax.plot([h["epoch"] for h in evals], [h["eval_loss"] for h in evals], color="tab:red", marker="o", markersize=3)
            ax.set(xlabel="epoch", ylabel="validation loss", title="Validation loss")
        else:
            for key in ccc_keys:
                points = [(h["epoch"], h[key]) for h in evals if key in h]
                dim = key.rsplit("_", 1)[-1]
                ax.plot(*zip(*points), color=COLORS[dim], marker="o", markersize=3, label=dim,
                        linewidth=2.2 if dim == "mean" else 1.4)
            ax.set(xlabel="epoch", ylabel="CCC", title="Validation CCC")
            ax.legend(fontsize=8)
        if panel != "train":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
    return _save(fig, path)


def song_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], picks: dict[str, str], path: Path) -> str:
    """Predicted vs true 2 Hz curves of a few songs (e.g. best, median, worst), one row each."""
    fig, axes = plt.subplots(len(picks), 2, figsize=(11, 2.6 * len(picks)), squeeze=False)
    for row, (why, song) in enumerate(picks.items()):
        times, pred, true = curves[song]
        for d, dim in enumerate(DIMENSIONS):
            ax = axes[row, d]
            ax.plot(times, true[:, d], color="0.2", linewidth=1.5, label="labels")
            ax.plot(times, pred[:, d], color=COLORS[dim], linewidth=1.5, label="predicted")
            ax.set(ylim=(-1.05, 1.05), xlabel="time (s)", ylabel=dim, title=f"{why}: song {song}")
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


def trajectories(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], picks: dict[str, str],
                 path: Path) -> str:
    """The same songs as paths on the valence-arousal plane: labels and predictions, start marked."""
    fig, ax = plt.subplots(figsize=(6, 6))
    for (why, song), color in zip(picks.items(), SUBSET_COLORS):
        _, pred, true = curves[song]
        ax.plot(true[:, 0], true[:, 1], color=color, linestyle="--", linewidth=1, alpha=0.8)
        ax.plot(pred[:, 0], pred[:, 1], color=color, linewidth=1.8, label=f"{why} ({song}): predicted; dashed: labels")
        ax.scatter([pred[0, 0], true[0, 0]], [pred[0, 1], true[0, 1]], color=color, s=25, marker="o")
    ax.axhline(0, color="0.5", linewidth=0.8)
    ax.axvline(0, color="0.5", linewidth=0.8)
    ax.set(xlim=(-1.05, 1.05), ylim=(-1.05, 1.05), aspect="equal", xlabel="valence", ylabel="arousal",
           title="Trajectories on the valence-arousal plane (dots: start)")
    ax.legend(loc="lower left", fontsize=7)
    return _save(fig, path)


def coverage(report: dict[str, Any], path: Path) -> str:
    """Empirical coverage of the calibrated intervals against their nominal level, with CIs."""
    fig, ax = plt.subplots(figsize=(5.2, 5))
    levels = [float(level) for level in report["levels"]]
    ax.plot([0.5, 1.0], [0.5, 1.0], color="0.3", linestyle="--", linewidth=1, label="nominal")
    for dim in DIMENSIONS:
        rows = [report["levels"][f"{level:g}"][dim]["coverage"] for level in levels]
        values = np.array([r["value"] for r in rows])
        low = np.array([r["ci_low"] if r["ci_low"] is not None else r["value"] for r in rows])
        high = np.array([r["ci_high"] if r["ci_high"] is not None else r["value"] for r in rows])
        ax.errorbar(levels, values, yerr=[values - low, high - values], marker="o", capsize=3, color=COLORS[dim],
                    label=dim)
    ax.set(xlim=(0.7, 1.0), ylim=(0.5, 1.02), xlabel="nominal coverage", ylabel="empirical coverage (test songs)",
           title="Calibrated intervals")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)
