"""Evaluate a trained run on one split: metrics with bootstrap CIs, subsets, quadrants, plots.

    python evaluate.py --model_dir runs/ast-demo                      # the run's own test split
    python evaluate.py --model_dir runs/ast --data data/DEAM --split validation --bootstrap 2000
    python evaluate.py --model_dir runs/ast --per_window --output_dir reports/ast-windows
    python evaluate.py --model_dir runs/ast-deam --data data/PMEmo2019     # another dataset's test songs

With --data, songs that are copies of the run's train/validation songs (found by their audio) are
left out of the scores and counted.

Writes eval_report.json, predictions.csv, report.md and PNG figures to --output_dir
(default <model_dir>/eval-<split>).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from sentio.args import DataArguments
from sentio.choices import ALL_SPLITS
from sentio.cli import given_flags, parse_dataclasses, parser_for, run_cli
from sentio.errors import ArgumentError


@dataclass
class EvalArguments:
    """Which run, which split, and how to score it."""

    model_dir: str = field(metadata={"help": "Output folder of a train.py run (config.json, model, preprocessor)."})
    split: str = field(default="test", metadata={
        "help": "Split to score: test, validation, train, or all (every song of the data: for --data OTHER, which "
                "was never split for this run).", "choices": ["train", "validation", "test", ALL_SPLITS]})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where reports go (default: <model_dir>/eval-<split>, or "
                                "<model_dir>/eval-<split>-windows with --per_window)."})
    per_window: bool = field(default=False, metadata={"help": "Score every window instead of per-song averages."})
    bootstrap: int = field(default=1000, metadata={"help": "Bootstrap draws over songs for 95%% CIs (0: none)."})
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap."})
    batch_size: int = field(default=32, metadata={"help": "Windows per forward pass."})

    def __post_init__(self) -> None:
        if self.bootstrap < 0:
            raise ArgumentError(f"--bootstrap must be >= 0, got {self.bootstrap}")
        if self.batch_size < 1:
            raise ArgumentError(f"--batch_size must be >= 1, got {self.batch_size}")


def main() -> int:
    parser = parser_for((EvalArguments, DataArguments), prog="evaluate.py",
                        description="Evaluate a trained run on one split.")
    eval_args, data_args = parse_dataclasses(parser)
    import transformers

    from sentio.features.records import recorded_feature_cache
    from sentio.evaluation.evaluate_run import evaluate_run  # heavy imports after argument checks

    transformers.utils.logging.set_verbosity_warning()
    # The run's own feature cache (recorded as an absolute path) unless --cache_dir says otherwise: a
    # run evaluates from any working directory without computing its features again.
    if "cache_dir" not in given_flags(parser):
        data_args.cache_dir = recorded_feature_cache(eval_args.model_dir) or data_args.cache_dir
    # A window-level report gets its own folder: it must not replace the song-level one.
    default = f"eval-{eval_args.split}" + ("-windows" if eval_args.per_window else "")
    output_dir = eval_args.output_dir or os.path.join(eval_args.model_dir, default)
    report = evaluate_run(eval_args.model_dir, data_args, eval_args.split, output_dir, eval_args.per_window,
                          eval_args.bootstrap, eval_args.seed, eval_args.batch_size)
    def value(metric: str, dim: str) -> str:  # a metric undefined on what was scored (one song) is n/a, never 0
        number = report.value(metric, dim)
        return "n/a" if number is None else f"{number:.4f}"

    counts = report.counts
    windows = f", {counts['scored']} windows" if report.level == "window" else ""
    songs = f"{counts['songs']} song" + ("s" if counts["songs"] != 1 else "")
    print(f"{eval_args.split} ({songs}{windows}) CCC valence {value('ccc', 'valence')}  "
          f"arousal {value('ccc', 'arousal')}  mean {value('ccc', 'mean')}  "
          f"quadrant accuracy {report.quadrant_accuracy:.3f}   ({output_dir})")
    if counts["scored"] < 2:
        print(f"evaluate.py: note: CCC, Pearson r and R2 need at least 2 songs and are n/a; score more songs "
              f"(--split {ALL_SPLITS} scores every song of --data)", file=sys.stderr)
    print(f"{eval_args.split} R² valence {value('r2', 'valence')}  arousal {value('r2', 'arousal')}  "
          f"mean {value('r2', 'mean')}")
    if report.protocol:  # the protocol's headline beside the published numbers
        print("\n".join(report.protocol["table"]))
    seen = report.left_out_seen_in_training
    if seen is not None:
        print(f"left out {seen['count']} songs the run trained on, of {seen['songs_checked']} {eval_args.split} songs "
              f"({seen['matched_by']})")
    return 0


if __name__ == "__main__":
    run_cli(main, os.path.basename(sys.argv[0]))
