"""The demo corpus's ceiling: the best scores any model can reach, those of the true values against
the noisy labels (ceiling.json), and the same on a split's songs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..metrics import DIMENSIONS, concordance_cc, curve_list_metrics
from .deam_files import DYNAMIC_FILES, DYNAMIC_SUBDIR, TRUTH_DYNAMIC
from .plan import (
    CorpusPlan,
    DIVISIVENESS_BETA,
    DYNAMIC_NOISE_RHO,
    DYNAMIC_RATE,
    DYNAMIC_START_S,
    RATER_SD_BASE,
    RATER_SD_SLOPE,
    RATERS,
    TRUE_MEAN,
    TRUE_RANGE,
    TRUE_SD,
    VA_CORRELATION,
)


def _dynamic_scores(truth: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    """A prediction (the true values) against the dynamic labels, per song arrays (frames, 2), scored
    as a model's curves are (metrics.curve_list_metrics): `ccc_*` over all frames, `pearson_*` and
    `rmse_*` per song averaged over songs; flat, with means."""
    scores = curve_list_metrics(truth, labels)
    names = {"ccc": "ccc", "pearson": "song_pearson", "rmse": "song_rmse"}
    return {f"{metric}_{k}": scores[f"{names[metric]}_{k}"]
            for k in (*DIMENSIONS, "mean") for metric in names}


def _mean_rater_variance() -> float:
    """E[(base + slope d)^2] over d ~ Beta(a, b): (base + slope E[d])^2 + slope^2 Var[d]."""
    a, b = DIVISIVENESS_BETA
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    return (RATER_SD_BASE + RATER_SD_SLOPE * mean) ** 2 + RATER_SD_SLOPE**2 * var


def ceiling(plan: CorpusPlan, num_clips: int, seed: int) -> dict:
    """The best scores any model can reach: those of the true values against the noisy labels."""
    labels = np.round(plan.ratings.mean(-1), 1)
    rater_var = _mean_rater_variance()  # per-song noise: the mean variance sets the ceiling
    noise_var = rater_var / RATERS + 0.1**2 / 12  # rater noise of the mean + 1-decimal rounding
    theory = 2 * TRUE_SD**2 / (2 * TRUE_SD**2 + noise_var)
    emp = [concordance_cc(plan.truth[:, d], labels[:, d]) for d in (0, 1)]
    scores = _dynamic_scores(plan.dynamic_truth, plan.dynamic)
    return {
        "note": "Highest CCC any model can reach on these labels: a perfect model predicts the true "
                "values, which differ from the labels by rater noise. Compare a model's test CCC with "
                "it (CCC is unchanged by the (x - 5) / 4 map to [-1, 1]).",
        "theoretical": {"valence": theory, "arousal": theory, "mean": theory},
        "empirical": {"valence": emp[0], "arousal": emp[1], "mean": float(np.mean(emp))},
        "parameters": {"num_clips": num_clips, "seed": seed, "raters": RATERS, "rater_sd": float(np.sqrt(rater_var)),
                       "rater_sd_base": RATER_SD_BASE, "rater_sd_per_divisiveness": RATER_SD_SLOPE,
                       "divisiveness_beta": list(DIVISIVENESS_BETA), "va_correlation": VA_CORRELATION,
                       "true_mean": TRUE_MEAN, "true_sd": TRUE_SD, "true_range": list(TRUE_RANGE)},
        "dynamic": {
            "note": "Best scores any model can reach on the dynamic (2 Hz) labels, on [-1, 1]: a perfect "
                    "model predicts the true values of truth_dynamic.csv; the labels are the mean of the "
                    "raters' tracks, each with slowly varying (AR(1)) noise of the song's rater sd / 4. "
                    "CCC over all frames; Pearson r and RMSE per song, averaged over songs (MediaEval).",
            **{metric: {k: scores[f"{metric}_{k}"] for k in ("valence", "arousal", "mean")}
               for metric in ("ccc", "pearson", "rmse")},
            "parameters": {"rate_hz": DYNAMIC_RATE, "start_s": DYNAMIC_START_S, "raters": RATERS,
                           "rater_sd": float(np.sqrt(rater_var)) / 4, "ar1_correlation": DYNAMIC_NOISE_RHO,
                           "label_noise_sd": float(np.sqrt(rater_var / RATERS)) / 4},
        },
    }


def split_ceiling(root: str | os.PathLike, manifest) -> dict[str, float]:
    """The demo's ceiling on the given manifest rows (e.g. the test split): CCC of the true values
    against the noisy labels, per dimension and mean. Small splits scatter around ceiling.json."""
    import pandas as pd

    from ..data.labels import to_unit

    truth = pd.read_csv(Path(root) / "truth.csv", dtype={"song_id": str}).set_index("song_id")
    rows = truth.loc[manifest["song_id"].astype(str)]
    out = {dim: concordance_cc(to_unit(rows[dim].to_numpy(), "1-9"), manifest[dim].to_numpy()) for dim in ("valence", "arousal")}
    out["mean"] = (out["valence"] + out["arousal"]) / 2
    return out


def split_dynamic_ceiling(root: str | os.PathLike, manifest) -> dict[str, float]:
    """The demo's dynamic ceiling on the given manifest's songs: the true per-frame values against
    the noisy 2 Hz labels, `ccc_*` over all frames, `pearson_*` and `rmse_*` per song averaged over
    songs (for valence, arousal and their mean)."""
    import pandas as pd

    root = Path(root)
    truth = pd.read_csv(root / TRUTH_DYNAMIC, dtype={"song_id": str})
    table = truth[truth["song_id"].isin(set(manifest["song_id"].astype(str)))]
    table = table.assign(ms=(table["time"] * 1000).round().astype(int))
    for dim, name in DYNAMIC_FILES.items():
        wide = pd.read_csv(root / DYNAMIC_SUBDIR / name, dtype={"song_id": str})
        long = wide.melt(id_vars="song_id", var_name="ms", value_name=dim).dropna()
        long["ms"] = long["ms"].str.extract(r"sample_(\d+)ms", expand=False).astype(int)
        table = table.merge(long, on=["song_id", "ms"], suffixes=("", "_label"))
    songs = [rows for _, rows in table.groupby("song_id", sort=False)]
    return _dynamic_scores([rows[list(DIMENSIONS)].to_numpy() for rows in songs],
                           [rows[[f"{dim}_label" for dim in DIMENSIONS]].to_numpy() for rows in songs])
