"""Cross-dataset matrix: train on X, test on Y's test songs (and trained on all but Y), CCC and R² with bootstrap CIs.

    python bench/cross_dataset.py --quick --num_clips 120 --epochs 30 --train_flags "--model ast --probe" \
        --figure docs/cross_dataset.png                        # the README's matrix: two demo corpora, a domain shift
    python bench/cross_dataset.py --dataset deam=DEAM_DIR --dataset emomusic=EMOMUSIC_DIR \
        --dataset pmemo=PMEMO_DIR --train_flags "--model mert --probe" --epochs 20 --output_dir runs/cross

Rows: one run per dataset, one per "all but Y" (when there are three or more datasets; with two it is
the other dataset's row) and one on all of them. Columns: every dataset's test split as a
single-dataset prepare would split it. Every run trains on the splits its datasets have alone (id
lists written by this script), so a test song is never in a run's training split; copies of the
same music across datasets share that split (song groups), and evaluate.py leaves out and counts any
test song whose audio matches a song the run trained on. Each cell: test CCC and R² per dimension
(valence, arousal and their mean) with 95% bootstrap CIs over songs, and the songs left out. Writes
cross_dataset.md (the matrix of the means, then every cell per dimension), cross_dataset.json and a
heat map of the mean CCC and R² (cross_dataset.png; also --figure, e.g. docs/cross_dataset.png) to --output_dir.

`--quick` generates two demo corpora of --num_clips clips: `demo` (the demo corpus) and `shifted`
(demo variant 1: other timbres, a slower tempo range, raters with a bias), and trains the compact
demo AST for --epochs. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DIMS = ("valence", "arousal", "mean")


@dataclass
class Corpus:
    name: str
    data: str  # a dataset folder (or a demo corpus folder)
    demo: dict | None = None  # demo flags (dir, num_clips, seed, variant) for a demo corpus
    splits: dict[str, str] = field(default_factory=dict)  # local song id -> split, as prepared alone
    dataset: str = ""  # the dataset its reader names (deam, emomusic, pmemo, csv, demo), as prepared alone

    def flags(self) -> list[str]:
        if self.demo is None:
            return ["--data", self.data]
        d = self.demo
        return ["--demo", "--demo_dir", d["dir"], "--demo_num_clips", str(d["num_clips"]), "--demo_seed",
                str(d["seed"]), "--demo_variant", str(d["variant"])]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", action="append", default=[], help="NAME=FOLDER, once per dataset")
    p.add_argument("--quick", action="store_true", help="two small demo corpora with a domain shift")
    p.add_argument("--num_clips", type=int, default=60)
    p.add_argument("--epochs", type=float, default=4)
    p.add_argument("--train_flags", default="--model ast", help="more train.py flags (model, mode)")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--cache_dir", default="data/cache")
    p.add_argument("--output_dir", default="runs/bench-cross")
    p.add_argument("--figure", default="", help="also save the heat map here (e.g. docs/cross_dataset.png)")
    return p.parse_args()


def run(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:2])} failed:\n{done.stderr[-3000:]}")
    return done


def corpora(args: argparse.Namespace, out: Path) -> list[Corpus]:
    if args.quick:
        from sentio.demo.corpus import ensure_demo

        made = []
        for name, variant in (("demo", 0), ("shifted", 1)):
            demo = {"dir": str(out / "corpora" / name), "num_clips": args.num_clips, "seed": 0, "variant": variant}
            ensure_demo(demo["dir"], args.num_clips, 0, variant=variant)
            made.append(Corpus(name, demo["dir"], demo))
        return made
    if len(args.dataset) < 2:
        raise SystemExit("give --quick or at least two --dataset NAME=FOLDER")
    return [Corpus(*item.split("=", 1)) for item in args.dataset]


def prepare_alone(corpus: Corpus, args: argparse.Namespace, out: Path) -> None:
    """The corpus' own seeded split, as a single-dataset run would have it."""
    folder = out / "alone" / corpus.name
    run(["prepare.py", *corpus.flags(), "--output_dir", str(folder), "--cache_dir", args.cache_dir])
    manifest = pd.read_csv(folder / "manifest.csv", dtype=str, keep_default_na=False)
    corpus.splits = dict(zip(manifest["song_id"], manifest["split"]))
    corpus.dataset = manifest["dataset"].iloc[0]


def split_lists(members: list[Corpus], folder: Path) -> str:
    """train/validation/test id lists for a run over `members`, keeping each corpus' own split (ids
    as a multi-dataset manifest writes them: dataset:id)."""
    from sentio.data.sources import _local_name

    lists: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    taken: set[str] = set()
    for corpus in members:  # in the order train.py reads them (see train())
        prefix = _local_name(corpus.dataset, taken) if len(members) > 1 else ""
        for song, split in corpus.splits.items():
            lists[split].append(f"{prefix}:{song}" if prefix else song)
    folder.mkdir(parents=True, exist_ok=True)
    for split, ids in lists.items():
        (folder / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return str(folder)


def train(name: str, members: list[Corpus], args: argparse.Namespace, out: Path) -> tuple[Path, float]:
    run_dir = out / "runs" / name
    if (run_dir / "all_results.json").is_file():
        return run_dir, 0.0
    demo = [c for c in members if c.demo][:1]  # train.py reads a --demo corpus first, then --data in order
    ordered = demo + [c for c in members if c not in demo]
    flags = demo[0].flags() if demo else []
    if ordered[len(demo):]:
        flags += ["--data", *(c.data for c in ordered[len(demo):])]
    lists = split_lists(ordered, out / "lists" / name)
    start = time.perf_counter()
    run(["train.py", *shlex.split(args.train_flags), *flags, "--split_files", lists, "--epochs", str(args.epochs),
         "--output_dir", str(run_dir), "--cache_dir", args.cache_dir, "--report_to", "none", "--disable_tqdm", "true",
         "--save_strategy", "no", "--eval_strategy", "no"])
    return run_dir, time.perf_counter() - start


def evaluate(run_dir: Path, corpus: Corpus, args: argparse.Namespace, out: Path) -> Cell:
    folder = out / "eval" / f"{run_dir.name}--on--{corpus.name}"
    if not (folder / "eval_report.json").is_file():  # a rerun resumes where an interrupted one stopped
        run(["evaluate.py", "--model_dir", str(run_dir), *corpus.flags(), "--split", "test", "--bootstrap",
             str(args.bootstrap), "--output_dir", str(folder), "--cache_dir", args.cache_dir])
    return read_cell(folder / "eval_report.json")


@dataclass
class Estimate:
    """A test metric with its 95% bootstrap CI over songs (None where undefined, e.g. one song)."""

    value: float | None
    low: float | None
    high: float | None

    def show(self, digits: int = 3) -> str:
        if self.value is None:
            return "n/a"
        ci = f" [{self.low:.{digits}f}, {self.high:.{digits}f}]" if self.low is not None else ""
        return f"{self.value:.{digits}f}{ci}"


@dataclass
class Cell:
    """One train-on-X / test-on-Y cell: CCC and R² per dimension (valence, arousal, mean)."""

    songs: int  # test songs scored
    left_out: int  # test songs left out because the run trained on their audio
    ccc: dict[str, Estimate]
    r2: dict[str, Estimate]


def read_cell(path: Path) -> Cell:
    """The cell of an evaluate.py eval_report.json."""
    report = json.loads(Path(path).read_text())
    metrics = report["metrics"]

    def estimates(metric: str) -> dict[str, Estimate]:
        return {dim: Estimate(metrics[dim][metric]["value"], metrics[dim][metric]["ci_low"],
                              metrics[dim][metric]["ci_high"]) for dim in DIMS}

    left = report.get("left_out_seen_in_training") or {}
    return Cell(songs=report["counts"]["scored"], left_out=left.get("count", 0), ccc=estimates("ccc"), r2=estimates("r2"))


def rows_of(sets: list[Corpus]) -> list[tuple[str, list[Corpus]]]:
    rows = [(c.name, [c]) for c in sets]
    if len(sets) >= 3:
        rows += [(f"all but {c.name}", [o for o in sets if o is not c]) for c in sets]
    rows.append(("all", list(sets)))
    return rows


def row_label(name: str, members: list[Corpus], sets: list[Corpus]) -> str:
    """A row's name in the table; with two datasets a single-dataset row is also the other's all-but row."""
    if len(sets) == 2 and len(members) == 1:
        other = next(c.name for c in sets if c is not members[0])
        return f"{name} (= all but {other})"
    return name


def markdown(table: dict[str, dict[str, Cell]], columns: list[str]) -> str:
    """The matrix (mean CCC and mean R², 95% CIs) and the per-dimension table, as markdown."""
    lines = ["| train \\ test | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, cells in table.items():
        shown = []
        for c in columns:
            cell = cells[c]
            left = f", {cell.left_out} left out" if cell.left_out else ""
            shown.append(f"CCC {cell.ccc['mean'].show()}<br>R² {cell.r2['mean'].show()}<br>({cell.songs} songs{left})")
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    lines += ["", "| train | test | songs | CCC valence | CCC arousal | CCC mean | R² valence | R² arousal | R² mean |",
              "|---|---|---:|---|---|---|---|---|---|"]
    for name, cells in table.items():
        for c in columns:
            cell = cells[c]
            values = [cell.ccc[d].show() for d in DIMS] + [cell.r2[d].show() for d in DIMS]
            songs = f"{cell.songs}" + (f" ({cell.left_out} left out)" if cell.left_out else "")
            lines.append(f"| {name} | {c} | {songs} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def heat_map(table: dict[str, dict[str, Cell]], columns: list[str], path: Path) -> None:
    """Two panels, test CCC and test R² (mean of valence and arousal), each cell with its 95% CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(table)
    fig, axes = plt.subplots(1, 2, figsize=(1.6 + 0.075 * max(map(len, names)) + 2.4 * len(columns), 1.4 + 0.8 * len(names)),
                             sharey=True, layout="constrained")
    for ax, metric, title in zip(axes, ("ccc", "r2"), ("CCC", "R²")):
        shown = [[getattr(table[r][c], metric)["mean"].value for c in columns] for r in names]
        values = np.array([[np.nan if v is None else v for v in row] for row in shown], dtype=float)
        low = min(0.0, float(np.nanmin(values))) if np.isfinite(values).any() else 0.0
        image = ax.imshow(values, cmap="viridis", vmin=low, vmax=1.0, aspect="auto")
        for i, r in enumerate(names):
            for j, c in enumerate(columns):
                estimate = getattr(table[r][c], metric)["mean"]
                text = estimate.show(2).replace(" [", "\n[")
                bright = estimate.value is not None and estimate.value > low + 0.6 * (1.0 - low)
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if bright else "white")
        ax.set_xticks(range(len(columns)), [f"test: {c}" for c in columns])
        ax.set_yticks(range(len(names)), [f"train: {r}" for r in names])
        ax.set_title(f"Test {title} (mean of valence, arousal), 95% CI", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05, shrink=0.9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    args = parse_args()
    out = Path(args.output_dir).resolve()
    started = time.perf_counter()
    sets = corpora(args, out)
    for corpus in sets:
        prepare_alone(corpus, args, out)
    table: dict[str, dict[str, Cell]] = {}
    seconds = {}
    for name, members in rows_of(sets):
        run_dir, took = train(name, members, args, out)
        label = row_label(name, members, sets)
        seconds[label] = round(took, 1)
        table[label] = {c.name: evaluate(run_dir, c, args, out) for c in sets}
        print(label, json.dumps({c: asdict(cell) for c, cell in table[label].items()}), flush=True)
    columns = [c.name for c in sets]
    text = markdown(table, columns)
    print(text)
    (out / "cross_dataset.md").write_text(text + "\n")
    (out / "cross_dataset.json").write_text(json.dumps(
        {"table": {r: {c: asdict(cell) for c, cell in cells.items()} for r, cells in table.items()},
         "train_seconds": seconds, "args": vars(args), "total_seconds": round(time.perf_counter() - started, 1)},
        indent=2) + "\n")
    heat_map(table, columns, out / "cross_dataset.png")
    if args.figure:
        heat_map(table, columns, Path(args.figure))
    print(f"total {time.perf_counter() - started:.0f} s (this invocation; finished runs and evaluations reused); {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
