"""Honest outputs on the demo corpus: do the calibrated intervals cover what they say, are they
narrower than constant-width ones, and does the predicted spread follow the listeners' disagreement?

    python bench/uncertainty_demo.py --epochs 30 --output_dir runs/bench-uncertainty

Compact demo AST runs with the same settings: static (no spread: constant-width conformal
intervals), `--uncertainty` (Gaussian NLL; normalised conformal intervals), and `--uncertainty
--disagreement_weight W` for each of --rater_weights (the spread also pulled toward the raters').
Each is calibrated on its validation songs by train.py and scored on the test songs by evaluate.py: coverage of the 80/90/95%
intervals with bootstrap CIs over songs, mean widths beside constant-width intervals from the same
validation songs, the test CCC with its CI, and the Spearman correlation of each song's predicted
spread with the true per-song rater spread the demo corpus was generated with (truth.csv). A
benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
ARMS = {"static": [], "uncertainty": ["--uncertainty"]}


def rater_arms(weights: str) -> dict[str, list[str]]:
    """An `--uncertainty --disagreement_weight W` arm per weight: "uncertainty+raters" for W = 1."""
    return {("uncertainty+raters" if float(w) == 1 else f"uncertainty+raters-w{float(w):g}"):
            ["--uncertainty", "--disagreement_weight", str(float(w))] for w in weights.split(",") if w}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--demo_dir", default="data/demo")
    p.add_argument("--cache_dir", default="data/cache")
    p.add_argument("--static_run", default=None, help="an existing static demo run to reuse")
    p.add_argument("--rater_weights", default="1,20", help="--disagreement_weight of each rater-supervised arm")
    p.add_argument("--output_dir", default="runs/bench-uncertainty")
    return p.parse_args()


def run(*command: str) -> None:
    done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stderr[-3000:]}")


def resplit_coverage(validation: pd.DataFrame, test: pd.DataFrame, draws: int = 1000, seed: int = 0) -> dict:
    """Coverage of the same method averaged over random halvings of the validation + test songs:
    calibrate on one half, cover the other. One fixed 30/30 split scatters by about 10 points;
    the average says whether the method itself covers (the validation songs also chose the
    checkpoint, so they are not quite exchangeable with the test songs)."""
    import numpy as np

    from sentio.calibration import fit_calibration

    songs = pd.concat([validation, test], ignore_index=True)
    dims = ("valence", "arousal")
    pred = songs[[f"{d}_pred" for d in dims]].to_numpy()
    true = songs[[f"{d}_true" for d in dims]].to_numpy()
    spread = songs[[f"{d}_spread" for d in dims]].to_numpy() if "valence_spread" in songs else None
    rng, half = np.random.default_rng(seed), len(songs) // 2
    hits: dict[str, list[np.ndarray]] = {}
    for _ in range(draws):
        order = rng.permutation(len(songs))
        cal, held = order[:half], order[half:]
        calibration = fit_calibration(pred[cal], true[cal], None if spread is None else spread[cal])
        for level, (low, high) in calibration.intervals(pred[held], None if spread is None else spread[held]).items():
            hits.setdefault(f"{level:g}", []).append(((true[held] >= low) & (true[held] <= high)).mean(axis=0))
    return {level: dict(zip(dims, np.mean(values, axis=0).round(3).tolist())) for level, values in hits.items()}


def arm(name: str, flags: list[str], args: argparse.Namespace, out: Path) -> dict:
    run_dir = Path(args.static_run) if name == "static" and args.static_run else out / name
    if not (run_dir / "all_results.json").is_file():
        run("train.py", "--model", "ast", "--demo", "--demo_dir", args.demo_dir, "--epochs", str(args.epochs),
            "--output_dir", str(run_dir), "--cache_dir", args.cache_dir, "--report_to", "none", "--disable_tqdm",
            "true", "--overwrite_output_dir", *flags)
    eval_dir = out / f"eval-{name}"
    run("evaluate.py", "--model_dir", str(run_dir), "--output_dir", str(eval_dir), "--bootstrap", "1000")
    report = json.loads((eval_dir / "eval_report.json").read_text())
    row = {"arm": name, "ccc": report["metrics"]["mean"]["ccc"], "coverage": report["coverage"]["levels"]}
    table = pd.read_csv(eval_dir / "predictions.csv", dtype={"song_id": str})
    validation_dir = out / f"eval-{name}-validation"
    run("evaluate.py", "--model_dir", str(run_dir), "--split", "validation", "--output_dir", str(validation_dir),
        "--bootstrap", "0")
    row["resplit_coverage"] = resplit_coverage(pd.read_csv(validation_dir / "predictions.csv"), table)
    if "valence_spread" in table:
        from scipy.stats import spearmanr

        truth = pd.read_csv(Path(args.demo_dir) / "truth.csv", dtype={"song_id": str}).set_index("song_id")
        true_sd = truth.loc[table["song_id"], ["rater_sd_valence", "rater_sd_arousal"]].to_numpy()
        row["spearman_vs_true_rater_sd"] = {dim: float(spearmanr(table[f"{dim}_spread"], true_sd[:, d]).statistic)
                                            for d, dim in enumerate(("valence", "arousal"))}
    return row


def main() -> int:
    args = parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [arm(name, flags, args, out) for name, flags in {**ARMS, **rater_arms(args.rater_weights)}.items()]
    (out / "uncertainty.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| arm | test CCC mean [95% CI] | nominal | coverage valence | coverage arousal | width (constant width) "
          "| Spearman spread vs true rater sd (v, a) |\n|---|---|---|---|---|---|---|")
    for row in rows:
        ccc = row["ccc"]
        for level, dims in row["coverage"].items():
            v, a = dims["valence"], dims["arousal"]
            width = (v["mean_width"] + a["mean_width"]) / 2
            const = v.get("constant_width")
            const_width = f" ({(const['mean_width'] + a['constant_width']['mean_width']) / 2:.3f})" if const else ""
            rho = row.get("spearman_vs_true_rater_sd")
            print(f"| {row['arm']} | {ccc['value']:.3f} [{ccc['ci_low']:.3f}, {ccc['ci_high']:.3f}] | {float(level):.0%} | "
                  f"{v['coverage']['value']:.2f} | {a['coverage']['value']:.2f} | {width:.3f}{const_width} | "
                  + (f"{rho['valence']:.2f}, {rho['arousal']:.2f}" if rho else "-") + " |")
    print("\n| arm | nominal | coverage over random halvings of validation + test (valence, arousal) |\n|---|---|---|")
    for row in rows:
        for level, cover in row["resplit_coverage"].items():
            print(f"| {row['arm']} | {float(level):.0%} | {cover['valence']:.2f}, {cover['arousal']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
