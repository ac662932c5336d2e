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

    accelerate launch --num_processes 4 predict.py --model_dir runs/ast library/ --output library.jsonl

splits the library over 4 processes (or machines; torchrun works too): each writes a part file beside
the output, and the main process merges them into the output in the input's order.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from sentio.cli import parse_dataclasses, run_cli
from sentio.dataclass_args import DataclassArgumentParser
from sentio.errors import ArgumentError, MissingFileError, OutputError, SentioError

PROG = "predict.py"
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
    "MP4 freeform atoms for M4A. The tags are written into a hidden copy beside the file, which then "
    "replaces it in one rename: a kill or a full disk never leaves a damaged file. A read-only file or "
    "folder is left alone (one line each)."
)
TIMEOUT_HELP = (
    "Seconds a file's decoder may go without giving any audio before the file is skipped as hung "
    "(0: no limit). Long files are fine: the limit is per block of audio, not per file."
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
    max_duration: float | None = field(default=None, metadata={
        "help": "Predict at most the first SECONDS of each file (a longer file is cut, with a note on stderr, and "
                "its JSON record says `cut_at`); default: whole files."})
    file_timeout: float = field(default=300.0, metadata={"help": TIMEOUT_HELP})

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ArgumentError(f"--batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers is not None and self.num_workers < 1:
            raise ArgumentError(f"--num_workers must be >= 1, got {self.num_workers}")
        if self.max_duration is not None and not self.max_duration > 0:
            raise ArgumentError(f"--max_duration must be a positive number of seconds, got {self.max_duration}")
        if not self.file_timeout >= 0:
            raise ArgumentError(f"--file_timeout must be >= 0 seconds (0: no limit), got {self.file_timeout}")
        if self.output and Path(self.output).suffix.lower().lstrip(".") not in FORMATS:
            raise ArgumentError(f"--output must end in .csv or .json (or .jsonl: a record per line), got {self.output}")


def parse_args(argv: list[str] | None = None) -> tuple[PredictArguments, list[str]]:
    # HfArgumentParser's flags without importing transformers: an ONNX model's prediction never needs it
    parser = DataclassArgumentParser([PredictArguments], prog=PROG, description="Predict valence and arousal of audio files.")
    # The audio paths are positional, which a dataclass field cannot express: HfArgumentParser hands
    # arguments outside its dataclasses back in an extra namespace.
    parser.add_argument("audio", nargs="+", metavar="AUDIO", help="Audio files or folders (searched recursively).")
    argv = sys.argv[1:] if argv is None else argv
    # HfArgumentParser lets a bool flag take an optional value, so `--timeline song.wav` would read
    # the file name as that value; spelling the flag out keeps it a plain switch.
    argv = [f"{a}=true" if a in SWITCHES else a for a in argv]
    args, extra = parse_dataclasses(parser, argv)
    return args, extra.audio


def audio_files(inputs: Iterable[str]) -> list[str]:
    """Files as given (whatever their extension), folders expanded to their audio files, sorted."""
    from sentio.inference.listing import list_audio

    return list_audio(list(inputs)).files


def output_format(output: str) -> str:
    """The format --output names (its suffix, checked with the other flags); its folder must exist."""
    if not output:
        return "csv"
    ext = Path(output).suffix.lower().lstrip(".")
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
    internal: int = 0  # of `failed`: a bug of ours, traceback shown
    untagged: int = 0  # of `failed`: predicted but its tags could not be written
    unlisted: int = 0  # folders or links of the library that could not be searched

    def add(self, other: "Tally") -> None:
        """Count another process's files too."""
        for name in ("predicted", "failed", "audio_seconds", "internal", "untagged", "unlisted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self, output: str) -> str:
        wall = time.monotonic() - self.started
        factor = self.audio_seconds / wall if wall > 0 else 0.0
        done = f", {self.already_done} already done" if self.already_done else ""
        written = f"; {self.predicted} written to {output}" if output else ""
        extra = ""
        if self.untagged:
            extra += f"; {self.untagged} could not be tagged (left as they were)"
        if self.unlisted:
            extra += f"; {self.unlisted} folders or links could not be searched"
        if self.internal:
            extra += f"; {self.internal} files failed with an internal error: see above"
        files = self.predicted + self.failed
        # below 10 x real time a whole number says too little (a short clip: "0")
        speed = f"{factor:.0f}" if factor >= 10 else f"{factor:.2f}"
        return (f"{PROG}: {files} file{'s' if files != 1 else ''} ({self.failed} failed{done}), "
                f"{duration_text(self.audio_seconds)} of audio in {duration_text(wall)}: "
                f"real-time factor {speed}{written}{extra}")


def report(line: str) -> None:
    """One line on stderr, kept intact below the progress bar and never muted by a decoder."""
    from tqdm.auto import tqdm

    from sentio.features.audio import STDERR

    with STDERR.free():
        tqdm.write(line, file=sys.stderr)


@dataclass
class Plan:
    """What the main process found and hands every process: its share of the files to predict."""

    order: list[str]  # every listed file, in the input's order
    shares: list[list[str]]  # per process
    suspects: set[str] = field(default_factory=set)  # in flight when a process died once: read alone
    crashed: list[str] = field(default_factory=list)  # in flight in two deaths: skipped
    already_done: int = 0
    unlisted: int = 0


def make_plan(args: PredictArguments, inputs: list[str], resumable: bool, world: int) -> Plan:
    """List the library, report what cannot be searched, find what earlier runs finished, and
    split the rest over `world` processes."""
    from sentio.inference.journal import MAX_CRASHES, compact
    from sentio.inference.shards import part_paths, split_by_size
    from sentio.inference.listing import list_audio
    from sentio.inference.tags import remove_stale_copies
    from sentio.inference.writers import FileKey, ResultLog, done_in

    listing = list_audio(inputs)
    for folder in listing.empty:
        report(f"{PROG}: warning: no audio files in {folder}")
    for problem in listing.problems:
        report(f"{PROG}: skipped {problem.path}: {problem.reason}")
    files = listing.files
    if not files and not listing.problems:
        raise MissingFileError("no audio files to predict")
    if args.write_tags:
        for copy in remove_stale_copies(os.path.dirname(os.path.realpath(f)) for f in files):
            report(f"{PROG}: removed {copy}, a copy an interrupted run was writing tags into (the original is intact)")
    done: set = set()
    crashes: dict[str, int] = {}
    if resumable:
        log = ResultLog(args.output, args.timeline)  # also drops a record a kill cut short
        log.close()
        done = set(log.done)
        for part in part_paths(args.output):
            done |= done_in(part, args.timeline)
        crashes = compact(args.output, {key.path for key in done})
    todo = [f for f in files if FileKey.of(f) not in done]
    crashed = [f for f in todo if crashes.get(f, 0) >= MAX_CRASHES]
    todo = [f for f in todo if crashes.get(f, 0) < MAX_CRASHES]
    sizes = [key.size_bytes if key else 0 for key in map(FileKey.of, todo)]
    return Plan(files, split_by_size(todo, sizes, world), {f for f in todo if crashes.get(f)}, crashed,
                len(files) - len(todo) - len(crashed), len(listing.problems))


def quiet_weights_bar() -> None:
    """No transformers or hub bar while a torch run loads: our own bar counts files. An ONNX run
    never imports transformers; for it nothing is imported here, only the hub's switch is set."""
    transformers = sys.modules.get("transformers")
    if transformers is not None:
        transformers.utils.logging.disable_progress_bar()
    else:  # read by huggingface_hub when transformers first imports it
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def main() -> int:
    args, inputs = parse_args()
    fmt = output_format(args.output)  # fail on a bad name before loading anything
    from sentio.inference.shards import launched

    resumable = bool(args.output) and fmt != "json"
    if launched() and not resumable:
        raise ArgumentError("several processes write their parts beside one --output: give --output FILE.csv or FILE.jsonl")
    from sentio.features.audio import AudioError
    from sentio.inference import EmotionPredictor  # a torch run loads torch only once the arguments are valid
    from sentio.choices import DEMO_NOTE
    from sentio.inference.journal import MAX_CRASHES, Journal, compact, journal_path
    from sentio.inference.batch import default_workers, predict_library
    from sentio.inference.shards import part_path, part_paths, processes
    from sentio.inference.tags import write_tags
    from sentio.inference.writers import CsvWriter, FileKey, ResultLog, done_in, merge_parts, record

    procs = processes(args.device)
    try:
        plan: Plan | SentioError = make_plan(args, inputs, resumable, procs.world) if procs.main else None  # type: ignore[assignment]
    except SentioError as exc:  # the other processes stop with it rather than wait for their share
        plan = exc
    plan = procs.broadcast(plan)
    if isinstance(plan, SentioError):
        raise plan
    tally = Tally()
    if procs.main:
        tally.already_done, tally.unlisted = plan.already_done, plan.unlisted
        for path in plan.crashed:
            tally.failed += 1
            report(f"{PROG}: skipped {path}: the process died {MAX_CRASHES} times while reading it (a crash in the "
                   f"decoder?); delete {journal_path(args.output)} to try it again")
    files = plan.shares[procs.rank]
    sink = args.output if procs.world == 1 else str(part_path(args.output, procs.rank, procs.world))
    log = ResultLog(sink, args.timeline) if resumable else None
    journal = Journal(journal_path(args.output, procs.rank)) if resumable and files else None
    writer: Any = log or (CsvWriter(sys.stdout, args.timeline) if not args.output else None)
    records: list[dict[str, Any]] = []
    workers = args.num_workers or max(1, default_workers() // procs.local_world)

    def finish(done: Any) -> None:
        if done.error is None and args.write_tags:
            try:
                write_tags(done.path, done.result)
            except AudioError as exc:  # this file failed; the rest go on
                done.error = exc
                tally.untagged += 1
        if done.error is not None:
            tally.failed += 1
            if done.internal:
                tally.internal += 1
                report(done.traceback)
            report(f"{PROG}: skipped {done.path}: {done.error.reason}")
        else:
            tally.predicted += 1
            tally.audio_seconds += done.duration
            if done.cut:
                report(f"{PROG}: note: {done.path} is longer than --max_duration {args.max_duration:g} s: "
                       "only its beginning was predicted")
            for note in done.result.get("notes", []):  # the CSV has no column for them: say them here
                if note != DEMO_NOTE:
                    report(f"{PROG}: note: {done.path}: {note}")
            if writer:
                writer.write(done.path, done.result, FileKey.of(done.path))  # the key after tagging
            else:
                records.append(record(done.path, done.result))
        if journal:
            journal.end(done.path)

    try:
        if files:
            quiet_weights_bar()
            predictor = EmotionPredictor.from_pretrained(args.model_dir, device=procs.device or args.device,
                                                         batch_size=args.batch_size,
                                                         max_duration=args.max_duration)
            if predictor.trained_on_demo and procs.main:  # said once, before the numbers
                report(f"{PROG}: note: {args.model_dir}: {DEMO_NOTE}")
            timeout = args.file_timeout or None
            start = journal.start if journal else None
            suspects = [f for f in files if f in plan.suspects]
            for path in suspects:  # each alone: only the file that kills the process is counted again
                for done in predict_library(predictor, [path], args.timeline, 1, False, timeout, start):
                    finish(done)
            rest = [f for f in files if f not in plan.suspects]
            for done in predict_library(predictor, rest, args.timeline, workers, progress=procs.main, file_timeout=timeout,
                                        on_start=start):
                finish(done)
    finally:
        if log:
            log.close()
        if journal:
            journal.close()
    procs.barrier()
    tallies = procs.gather(tally)
    if not procs.main:
        return 0  # the main process counts every process's files and answers for the run
    for other in tallies[1:]:
        tally.add(other)
    if resumable:
        merge_parts(args.output, part_paths(args.output), args.timeline, {f: i for i, f in enumerate(plan.order)})
        compact(args.output, {key.path for key in done_in(args.output, args.timeline)})
    if fmt == "json" and args.output:
        order = {path: i for i, path in reversed(list(enumerate(files)))}
        records.sort(key=lambda r: order[r["file"]])  # threads finish files in any order; a list reads best in input order
        with open(args.output, "w", encoding="utf-8") as sink_file:
            json.dump(records, sink_file, indent=2)
            sink_file.write("\n")
    report(tally.summary(args.output))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    run_cli(main, PROG)
