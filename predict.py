"""Predict valence and arousal of audio files with a trained Sentio run.

    python predict.py --model_dir runs/ast song.mp3 album/                 # CSV on stdout
    python predict.py --model_dir runs/ast music/ --output emotions.json --timeline
    python predict.py --model_dir runs/student-cnn/student.int8.onnx song.mp3  # onnxruntime, no torch model

Folders are searched recursively for audio files. A file that cannot be read is reported on stderr
(`predict.py: skipped FILE: reason`) and the others are still predicted; the exit status is then 1.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable

os.environ.setdefault("SENTIO_DEFER_REGISTRATION", "1")  # --help stays fast: see sentio/__init__.py

from sentio.cli import parser_for, run_cli  # noqa: E402
from sentio.errors import ArgumentError, MissingFileError  # noqa: E402

PROG = "predict.py"
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".au"}
COLUMNS = ["file", "valence", "arousal", "valence_1_9", "arousal_1_9", "quadrant", "num_windows"]
TIMELINE_HELP = (
    "Also give per-window values. CSV: after each file's row, one row per window with its `start` in "
    "seconds (a `start` column is added; the file's own row leaves it empty, window rows leave "
    "num_windows empty). JSON: a `timeline` list of {start, valence, arousal} per file."
)


@dataclass
class PredictArguments:
    model_dir: str = field(metadata={"help": "A training run's output_dir (config.json, model.safetensors, preprocessor_config.json), "
                                     "or an .onnx file exported by distill.py (run with onnxruntime)."})
    output: str = field(default="", metadata={"help": "Write to FILE.csv or FILE.json instead of CSV on stdout."})
    timeline: bool = field(default=False, metadata={"help": TIMELINE_HELP})
    batch_size: int = field(default=32, metadata={"help": "Windows per forward pass."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)."})


def parse_args(argv: list[str] | None = None) -> tuple[PredictArguments, list[str]]:
    parser = parser_for([PredictArguments], prog=PROG, description="Predict valence and arousal of audio files.")
    # The audio paths are positional, which a dataclass field cannot express: HfArgumentParser hands
    # arguments outside its dataclasses back in an extra namespace.
    parser.add_argument("audio", nargs="+", metavar="AUDIO", help="Audio files or folders (searched recursively).")
    argv = sys.argv[1:] if argv is None else argv
    # HfArgumentParser lets a bool flag take an optional value, so `--timeline song.wav` would read
    # the file name as that value; spelling the flag out keeps it a plain switch.
    argv = ["--timeline=true" if a == "--timeline" else a for a in argv]
    args, extra = parser.parse_args_into_dataclasses(argv)
    if args.batch_size < 1:
        raise ArgumentError(f"--batch_size must be >= 1, got {args.batch_size}")
    return args, extra.audio


def audio_files(inputs: Iterable[str]) -> list[str]:
    """Files as given (whatever their extension), folders expanded to their audio files, sorted."""
    files: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = [str(p) for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
            if not found:
                print(f"{PROG}: warning: no audio files in {item}", file=sys.stderr)
            files.extend(sorted(found))
        else:
            files.append(item)  # a missing file is reported with the other unreadable ones
    return files


def output_format(output: str) -> str:
    if not output:
        return "csv"
    ext = Path(output).suffix.lower().lstrip(".")
    if ext not in ("csv", "json"):
        raise ArgumentError(f"--output must end in .csv or .json, got {output}")
    return ext


def csv_rows(path: str, result: dict[str, Any], timeline: bool) -> list[dict[str, Any]]:
    """The file's row, then (with timeline) one row per window; floats with 6 decimals."""
    from sentio.data.labels import from_unit, quadrant

    def fmt(values: dict[str, Any]) -> dict[str, Any]:
        return {k: f"{v:.6f}" if isinstance(v, float) else v for k, v in values.items()}

    rows = [fmt({"file": path, **{c: result[c] for c in COLUMNS[1:]}})]
    for window in result.get("timeline", []) if timeline else []:
        v, a = window["valence"], window["arousal"]
        rows.append(fmt({"file": path, "start": window["start"], "valence": v, "arousal": a,
                         "valence_1_9": float(from_unit(v)), "arousal_1_9": float(from_unit(a)),
                         "quadrant": str(quadrant(v, a))}))
    return rows


def main() -> int:
    args, inputs = parse_args()
    fmt = output_format(args.output)  # fail on a bad name before loading anything
    files = audio_files(inputs)
    if not files:
        raise MissingFileError("no audio files to predict")
    import transformers
    from tqdm.auto import tqdm

    from sentio.inference import EmotionPredictor  # torch loads only once the arguments are valid

    transformers.utils.logging.disable_progress_bar()  # our own bar counts files; a weights bar is noise

    predictor = EmotionPredictor.from_pretrained(args.model_dir, device=args.device, batch_size=args.batch_size)
    sink: IO[str] = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    columns = COLUMNS[:1] + ["start"] + COLUMNS[1:] if args.timeline else COLUMNS
    writer = csv.DictWriter(sink, fieldnames=columns) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    records, failed = [], 0
    try:
        for path, result in predictor.predict_files(files, progress=True, timeline=args.timeline):
            if isinstance(result, Exception):
                failed += 1
                # tqdm.write keeps the progress bar intact below the message
                tqdm.write(f"{PROG}: skipped {path}: {result.reason}", file=sys.stderr)
            elif writer:
                writer.writerows(csv_rows(path, result, args.timeline))
                sink.flush()  # rows appear as files finish, so a long run can be watched or piped
            else:
                records.append({"file": path, **result})
        if fmt == "json":
            json.dump(records, sink, indent=2)
            sink.write("\n")
    finally:
        if sink is not sys.stdout:
            sink.close()
    if args.output:
        print(f"{PROG}: wrote {len(files) - failed} predictions to {args.output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main, PROG)
