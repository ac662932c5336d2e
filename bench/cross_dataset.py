"""Cross-dataset matrix: train on X, test on Y's test songs (and trained on all but Y), CCC with bootstrap CIs.

    python bench/cross_dataset.py --quick                      # two demo corpora with a domain shift
    python bench/cross_dataset.py --dataset deam=DEAM_DIR --dataset emomusic=EMOMUSIC_DIR \
        --dataset pmemo=PMEMO_DIR --train_flags "--model mert --probe" --epochs 20 --output_dir runs/cross

Rows: one run per dataset, one per "all but Y" (when there are three or more datasets; with two it is
the other dataset's row) and one on all of them. Columns: every dataset's test split as a
single-dataset prepare would split it. Every run trains on the splits its datasets have alone (id
lists written by this script), so a test song is never in a run's training split; copies of the
same music across datasets share that split (song groups), and evaluate.py leaves out and counts any
test song whose audio matches a song the run trained on. Each cell: test CCC (mean of valence and
arousal) with a 95% bootstrap CI over songs, and the songs left out. Writes cross_dataset.md,
cross_dataset.json and a heat map (docs/cross_dataset.png with --figure) to --output_dir.

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
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


@dataclass
class Corpus:
    name: str
    data: str  # a dataset folder (or a demo corpus folder)
    demo: dict | None = None  # demo flags (dir, num_clips, seed, variant) for a demo corpus
    splits: dict[str, str] = field(default_factory=dict)  # local song id -> split, as prepared alone

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


def split_lists(members: list[Corpus], folder: Path) -> str:
    """train/validation/test id lists for a run over `members`, keeping each corpus' own split (ids
    as a multi-dataset manifest writes them: dataset:id)."""
    from sentio.data.sources import _local_name

    dataset_of = {}
    for corpus in members:  # the dataset name each reader gives (demo folders read as `demo`)
        dataset_of[corpus.name] = "demo" if corpus.demo or (Path(corpus.data) / "demo.json").is_file() else None
    lists: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    taken: set[str] = set()
    for corpus in members:
        kind = dataset_of[corpus.name] or _reader_name(corpus)
        prefix = _local_name(kind, taken) if len(members) > 1 else ""
        for song, split in corpus.splits.items():
            lists[split].append(f"{prefix}:{song}" if prefix else song)
    folder.mkdir(parents=True, exist_ok=True)
    for split, ids in lists.items():
        (folder / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return str(folder)


def _reader_name(corpus: Corpus) -> str:
    from sentio.data.sources import DataSourceSpec, load_source

    return load_source(DataSourceSpec(data=corpus.data)).dataset


def train(name: str, members: list[Corpus], args: argparse.Namespace, out: Path) -> tuple[Path, float]:
    run_dir = out / "runs" / name
    if (run_dir / "all_results.json").is_file():
        return run_dir, 0.0
    demo = [c for c in members if c.demo][:1]
    flags = demo[0].flags() if demo else []
    rest = [c.data for c in members if c not in demo]
    if rest:
        flags += ["--data", *rest]
    lists = split_lists(members, out / "lists" / name)
    start = time.perf_counter()
    run(["train.py", *shlex.split(args.train_flags), *flags, "--split_files", lists, "--epochs", str(args.epochs),
         "--output_dir", str(run_dir), "--cache_dir", args.cache_dir, "--report_to", "none", "--disable_tqdm", "true",
         "--save_strategy", "no", "--eval_strategy", "no"])
    return run_dir, time.perf_counter() - start


def evaluate(run_dir: Path, corpus: Corpus, args: argparse.Namespace, out: Path) -> dict:
    folder = out / "eval" / f"{run_dir.name}--on--{corpus.name}"
    if not (folder / "eval_report.json").is_file():  # a rerun resumes where an interrupted one stopped
        run(["evaluate.py", "--model_dir", str(run_dir), *corpus.flags(), "--split", "test", "--bootstrap",
             str(args.bootstrap), "--output_dir", str(folder), "--cache_dir", args.cache_dir])
    report = json.loads((folder / "eval_report.json").read_text())
    ccc = report["metrics"]["mean"]["ccc"]
    return {"ccc": ccc["value"], "low": ccc["ci_low"], "high": ccc["ci_high"], "songs": report["counts"]["scored"],
            "left_out": report.get("left_out_seen_in_training", {}).get("count", 0)}


def rows_of(sets: list[Corpus]) -> list[tuple[str, list[Corpus]]]:
    rows = [(c.name, [c]) for c in sets]
    if len(sets) >= 3:
        rows += [(f"all but {c.name}", [o for o in sets if o is not c]) for c in sets]
    rows.append(("all", list(sets)))
    return rows


def heat_map(table: dict, columns: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(table)
    values = np.array([[table[r][c]["ccc"] for c in columns] for r in names])
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(columns), 1.2 + 0.6 * len(names)))
    image = ax.imshow(values, cmap="viridis", vmin=min(0.0, np.nanmin(values)), vmax=1.0)
    for i, r in enumerate(names):
        for j, c in enumerate(columns):
            cell = table[r][c]
            text = f"{cell['ccc']:.2f}\n[{cell['low']:.2f}, {cell['high']:.2f}]" if cell["low"] is not None else f"{cell['ccc']:.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if cell["ccc"] < 0.6 else "black")
    ax.set_xticks(range(len(columns)), [f"test: {c}" for c in columns])
    ax.set_yticks(range(len(names)), [f"train: {r}" for r in names])
    ax.set_title("Test CCC (mean of valence, arousal), 95% bootstrap CI")
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
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
    table, seconds = {}, {}
    for name, members in rows_of(sets):
        run_dir, took = train(name, members, args, out)
        seconds[name] = round(took, 1)
        table[name] = {c.name: evaluate(run_dir, c, args, out) for c in sets}
        print(name, json.dumps(table[name]), flush=True)
    columns = [c.name for c in sets]
    lines = ["| train \\ test | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, cells in table.items():
        shown = []
        for c in columns:
            cell = cells[c]
            ci = f" [{cell['low']:.3f}, {cell['high']:.3f}]" if cell["low"] is not None else ""
            left = f", {cell['left_out']} left out" if cell["left_out"] else ""
            shown.append(f"{cell['ccc']:.3f}{ci} ({cell['songs']} songs{left})")
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    markdown = "\n".join(lines)
    print(markdown)
    (out / "cross_dataset.md").write_text(markdown + "\n")
    (out / "cross_dataset.json").write_text(json.dumps({"table": table, "train_seconds": seconds, "args": vars(args),
                                                        "total_seconds": round(time.perf_counter() - started, 1)},
                                                       indent=2) + "\n")
    heat_map(table, columns, out / "cross_dataset.png")
    if args.figure:
        heat_map(table, columns, Path(args.figure))
    print(f"total {time.perf_counter() - started:.0f} s (this invocation; finished runs and evaluations reused); {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
