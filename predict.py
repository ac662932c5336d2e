"""Predict valence and arousal of audio files with a trained Sentio run.

    python predict.py --model_dir runs/ast song.mp3 album/                 # CSV on stdout
    python predict.py --model_dir runs/ast music/ --output emotions.json --timeline
    python predict.py --model_dir runs/ast library/ --output library.jsonl --write_tags   # resumable
    python predict.py --model_dir runs/student-cnn/student.int8.onnx song.mp3  # onnxruntime, no torch model

Folders are searched recursively for audio files. Threads decode files while the model runs and
windows of several files share a batch, so memory stays flat whatever the files' lengths. A file
that cannot be read is reported on stderr (`predict.py: skipped FILE: reason`) and the others are
still predicted; the exit status is then 1. A .csv or .jsonl output grows as files finish and a
rerun skips the files already in it (same path, size and modification time).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sentio.cli import parse_dataclasses, parser_for, run_cli
from sentio.errors import ArgumentError, MissingFileError, OutputError

PROG = "predict.py"
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".au"}
FORMATS = ("csv", "jsonl", "json")
SWITCHES = ("--timeline", "--write_tags")
TIMELINE_HELP = (
    "Also give per-window values (and the 2 Hz curve of a dynamic model). CSV: after each file's row, one "
    "row per window with its `start` in seconds (a `start` column is added; the file's own row leaves it "
    "empty, window rows leave num_windows empty), then one row per curve point with its `time`. "
    "JSON/JSONL: a `timeline` list of {start, valence, arousal} per file (and the `curve` arrays)."
)
OUTPUT_HELP = (
    "Write to FILE.csv or FILE.jsonl (a record per file, appended as files finish, with the file's size "
    "and modification time: a rerun skips the files already there, so an interrupted run resumes) or "
    "FILE.json (one list, written at the end) instead of CSV on stdout."
)
TAGS_HELP = (
    "Also write valence, arousal (on [-1, 1]) and the quadrant into each file's own tags (SENTIO_VALENCE, "
    "SENTIO_AROUSAL, SENTIO_QUADRANT): ID3 TXXX frames for MP3/WAV/AIFF, Vorbis comments for OGG/Opus/FLAC, "
    "MP4 freeform atoms for M4A. The audio data is left as it is."
)


@dataclass
class PredictArguments:
    model_dir: str = field(metadata={"help": "A training run's output_dir (config.json, model.safetensors, preprocessor_config.json), "
                                     "or an .onnx file exported by distill.py (run with onnxruntime)."})
    output: str = field(default="", metadata={"help": OUTPUT_HELP})
    timeline: bool = field(default=False, metadata={"help": TIMELINE_HELP})
    write_tags: bool = field(default=False, metadata={"help": TAGS_HELP})
    batch_size: int = field(default=32, metadata={"help": "Windows per forward pass (from one or several files)."})
    num_workers: int | None = field(default=None, metadata={
        "help": "Threads decoding files while the model runs (default: one per CPU core, at most 8)."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: cuda if available, else cpu)."})


def parse_args(argv: list[str] | None = None) -> tuple[PredictArguments, list[str]]:
    parser = parser_for([PredictArguments], prog=PROG, description="Predict valence and arousal of audio files.")
    # The audio paths are positional, which a dataclass field cannot express: HfArgumentParser hands
    # arguments outside its dataclasses back in an extra namespace.
    parser.add_argument("audio", nargs="+", metavar="AUDIO", help="Audio files or folders (searched recursively).")
    argv = sys.argv[1:] if argv is None else argv
    # HfArgumentParser lets a bool flag take an optional value, so `--timeline song.wav` would read
    # the file name as that value; spelling the flag out keeps it a plain switch.
    argv = [f"{a}=true" if a in SWITCHES else a for a in argv]
    args, extra = parse_dataclasses(parser, argv)
    if args.batch_size < 1:
        raise ArgumentError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.num_workers is not None and args.num_workers < 1:
        raise ArgumentError(f"--num_workers must be >= 1, got {args.num_workers}")
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
    if ext not in FORMATS:
        raise ArgumentError(f"--output must end in .csv or .json (or .jsonl: a record per line), got {output}")
    if not Path(output).parent.is_dir():
        raise OutputError(f"--output {output}: folder {Path(output).parent} does not exist")
    return ext


def duration_text(seconds: float) -> str:
    """1 h 02 min, 3 min 05 s, 12.3 s."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


@dataclass
class Tally:
    """What the summary line counts."""

    predicted: int = 0
    failed: int = 0
    already_done: int = 0
    audio_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def summary(self, output: str) -> str:
        wall = time.monotonic() - self.started
        factor = self.audio_seconds / wall if wall > 0 else 0.0
        done = f", {self.already_done} already done" if self.already_done else ""
        written = f"; {self.predicted} written to {output}" if output else ""
        files = self.predicted + self.failed
        # below 10 x real time a whole number says too little (a short clip: "0")
        speed = f"{factor:.0f}" if factor >= 10 else f"{factor:.2f}"
        return (f"{PROG}: {files} file{'s' if files != 1 else ''} ({self.failed} failed{done}), "
                f"{duration_text(self.audio_seconds)} of audio in {duration_text(wall)}: "
                f"real-time factor {speed}{written}")


def report(line: str) -> None:
    """One line on stderr, kept intact below the progress bar and never muted by a decoder."""
    from tqdm.auto import tqdm

    from sentio.features.audio import STDERR

    with STDERR.free():
        tqdm.write(line, file=sys.stderr)


def main() -> int:
    args, inputs = parse_args()
    fmt = output_format(args.output)  # fail on a bad name before loading anything
    files = audio_files(inputs)
    if not files:
        raise MissingFileError("no audio files to predict")
    import transformers

    from sentio.features.audio import AudioError
    from sentio.inference import EmotionPredictor  # torch loads only once the arguments are valid
    from sentio.choices import DEMO_NOTE
    from sentio.inference.library import CsvWriter, FileKey, ResultLog, predict_library, record, write_tags

    log = ResultLog(args.output, args.timeline) if args.output and fmt != "json" else None
    tally = Tally()
    if log and log.done:
        todo = [f for f in files if FileKey.of(f) not in log.done]
        tally.already_done = len(files) - len(todo)
        files = todo
    writer: Any = log or (CsvWriter(sys.stdout, args.timeline) if not args.output else None)
    records: list[dict[str, Any]] = []
    try:
        if files:
            transformers.utils.logging.disable_progress_bar()  # our own bar counts files; a weights bar is noise
            predictor = EmotionPredictor.from_pretrained(args.model_dir, device=args.device, batch_size=args.batch_size)
            if predictor.trained_on_demo:  # said once, before the numbers
                report(f"{PROG}: note: {args.model_dir}: {DEMO_NOTE}")
            for done in predict_library(predictor, files, args.timeline, args.num_workers, progress=True):
                if done.error is None and args.write_tags:
                    try:
                        write_tags(done.path, done.result)
                    except AudioError as exc:  # this file failed; the rest go on
                        done.error = exc
                if done.error is not None:
                    tally.failed += 1
                    report(f"{PROG}: skipped {done.path}: {done.error.reason}")
                    continue
                tally.predicted += 1
                tally.audio_seconds += done.duration
                for note in done.result.get("notes", []):  # the CSV has no column for them: say them here
                    if note != DEMO_NOTE:
                        report(f"{PROG}: note: {done.path}: {note}")
                if writer:
                    writer.write(done.path, done.result, FileKey.of(done.path))  # the key after tagging
                else:
                    records.append(record(done.path, done.result))
    finally:
        if log:
            log.close()
    if fmt == "json" and args.output:
        order = {path: i for i, path in reversed(list(enumerate(files)))}
        records.sort(key=lambda r: order[r["file"]])  # threads finish files in any order; a list reads best in input order
        with open(args.output, "w", encoding="utf-8") as sink:
            json.dump(records, sink, indent=2)
            sink.write("\n")
    report(tally.summary(args.output))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    run_cli(main, PROG)
