"""What every command-line script shares: argument parsing, logging set-up, the error model
(a SentioError is one line and exit 2; anything else is a bug and keeps its traceback), and output
folders (checked before long work starts, and explained when a run fails half-way)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import errno
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import ArgumentError, OutputError, SentioError, first_line

_PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): a signal for this process when its parent dies

# OS errors the user fixes (space, permissions), whatever library raised them: one line, not a bug.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


# A flag's help may name the registered backbones with this placeholder (filled in when help is shown).
BACKBONES_PLACEHOLDER = "{backbones}"
HELP_ALL = "--help-all"


class _HelpAll(argparse.Action):
    """--help-all: the help with every passed-through flag (e.g. all of TrainingArguments)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, default: Any = argparse.SUPPRESS,
                 help: str | None = None) -> None:
        super().__init__(option_strings, dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        for action in parser._actions:
            if getattr(action, "full_help", None) is not None:
                action.help = action.full_help
        parser.epilog = parser.usage = None
        parser.print_help()
        parser.exit()


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's default-showing help, minus its noise: no "(default: None)" for a default that is
    resolved after parsing (the help says what it is), nothing added where the help already names
    the default, and a `--no_X` flag says what it turns off instead of repeating X's help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        flags = action.option_strings
        if flags and all(f.startswith("--no_") for f in flags):
            return f"Turn off --{flags[0][len('--no_'):]}."
        text = action.help or ""
        if BACKBONES_PLACEHOLDER in text:  # the registry's names, read only when help is shown (it imports models)
            from .models.registry import BACKBONES

            text = action.help = text.replace(BACKBONES_PLACEHOLDER, ", ".join(BACKBONES))
        if action.default in (None, argparse.SUPPRESS) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def expand_short_flags(argv: Sequence[str] | None = None) -> list[str]:
    """`--epochs N` is the short name of `--num_train_epochs N`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return ["--num_train_epochs" if a == "--epochs" else a.replace("--epochs=", "--num_train_epochs=", 1) for a in argv]


def parser_for(dataclass_types: Sequence[type], prog: str | None = None, description: str | None = None):
    """An HfArgumentParser over `dataclass_types` with Sentio's help formatter. Flags of a library's
    dataclass that Sentio passes through unchanged (TrainingArguments' hundred-odd options) are left
    out of `--help`, which shows Sentio's own flags and names a few of the others; `--help-all`
    lists them all. They all still parse."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types, prog=prog, description=description, formatter_class=HelpFormatter)
    # Sentio's own fields: declared (or re-declared with Sentio's default and help) outside transformers
    own = {name for dtype in dataclass_types for klass in dtype.__mro__
           if klass.__module__.split(".")[0] not in ("transformers", "builtins")
           for name in vars(klass).get("__annotations__", {})}
    fields = {f.name for dtype in dataclass_types for f in dataclasses.fields(dtype)}
    passed = [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS
              and a.dest in fields and a.dest not in own]
    if passed:
        for action in passed:
            action.full_help, action.help = action.help, argparse.SUPPRESS
        examples = [f for f in ("--fp16", "--bf16", "--seed", "--gradient_accumulation_steps", "--max_steps",
                                "--resume_from_checkpoint", "--push_to_hub")
                    if any(f in a.option_strings for a in passed)]
        parser.add_argument(HELP_ALL, action=_HelpAll, help=f"Show every flag, also the {len(passed)} passed through "
                            "to transformers.TrainingArguments.")
        parser.usage = "%(prog)s [FLAGS]   (Sentio's flags below; --help-all: every flag)"
        parser.epilog = (f"{len(passed)} more flags pass through to transformers.TrainingArguments "
                         f"({', '.join(examples)}, ...): {prog or 'the script'} {HELP_ALL} lists them.")
    return parser


def parse_dataclasses(parser: Any, argv: Sequence[str] | None = None) -> tuple:
    """Parse into the parser's dataclasses. A value the dataclasses' own checks reject (ours, or
    TrainingArguments' ValueErrors) is bad input: one line, exit 2."""
    args = _expanded(parser, argv)
    check_unknown_flags(parser, args)
    try:
        return parser.parse_args_into_dataclasses(args)
    except SentioError:
        raise
    except ValueError as exc:
        raise ArgumentError(first_line(exc)) from None


def check_unknown_flags(parser: argparse.ArgumentParser, args: Sequence[str]) -> None:
    """A flag no dataclass knows (a typo: `--modle`) is one line naming the nearest real flag,
    instead of HfArgumentParser's list of unused arguments."""
    required = [a for a in parser._actions if a.required]  # a missing one is argparse's own message, later
    try:
        for action in required:
            action.required = False
        _, unknown = parser.parse_known_args(list(args))
    finally:
        for action in required:
            action.required = True
    flags = [a.split("=", 1)[0] for a in unknown if a.startswith("--")]
    if not flags:
        return
    known = [s for action in parser._actions for s in action.option_strings if s.startswith("--")]
    near = difflib.get_close_matches(flags[0], known, n=1, cutoff=0.6)
    hint = f": did you mean {near[0]}?" if near else f"; {parser.prog} --help lists the flags"
    raise ArgumentError(f"unknown flag {flags[0]}{hint}")


def given_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> set[str]:
    """The destinations the command line set explicitly (whatever the spelling: `--x v`, `--x=v`, an
    abbreviation), so defaults that depend on other flags apply only where the user chose nothing.
    argparse cannot tell a default from an equal given value, so this re-parses with every default
    suppressed; call it after a successful parse."""
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        namespace, _ = parser.parse_known_args(_expanded(parser, argv))
    finally:
        for action, default in saved:
            action.default = default
    return set(vars(namespace))


def _expanded(parser: Any, argv: Sequence[str] | None) -> list[str]:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(action.dest == "num_train_epochs" for action in parser._actions):  # a script with TrainingArguments
        args = expand_short_flags(args)
    return args


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=level, stream=sys.stderr)
    for noisy in ("datasets", "httpx", "urllib3", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Sentio never shards a model (tensor parallelism), yet from_pretrained of a run whose encoder
    # config carries a TP plan warns with the list of every layer "not sharded" (~1,800 characters)
    logging.getLogger("transformers.distributed.tensor_parallel").addFilter(_not_about_sharding)


def _not_about_sharding(record: logging.LogRecord) -> bool:
    return "were not sharded" not in record.getMessage() and "TP rules were not applied" not in record.getMessage()


def die_with_launcher() -> None:
    """Under torchrun (and accelerate launch, which runs it), end this process when its launcher
    dies, however it dies. torchrun starts each worker in a session of its own, so a launcher killed
    outright (SIGKILL, the OOM killer, a node agent) leaves its workers running on: predict.py's
    would keep writing their parts and the main one then merge them into an output that a rerun is
    already writing (seen in a test: 8 files recorded twice); train.py's would keep writing
    checkpoints into the run a resumed run writes. A launcher that is stopped (Ctrl-C, SIGTERM)
    stops its workers itself. Linux's parent-death signal; elsewhere nothing changes."""
    if "TORCHELASTIC_RUN_ID" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    launcher = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != launcher:  # it died before the signal was armed
        os._exit(1)


def run_cli(main: Callable[[], int | None], prog: str) -> None:
    """Run `main`: a SentioError exits 2 with `prog: error: <one line>`, Ctrl-C exits 130, and any
    other exception is a bug: it propagates with its full traceback (exit 1). Under torchrun, the
    process dies with its launcher (`die_with_launcher`)."""
    die_with_launcher()
    setup_logging()
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except SentioError as exc:
        print(f"{prog}: error: {exc.one_line()}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"{prog}: error: {exc.strerror or exc}{where} (free space or fix permissions, then rerun: "
              "finished work is kept)", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)


logger = logging.getLogger(__name__)
# What a run folder holds before its first checkpoint or model is written.
_DATA_ONLY = {"manifest.csv", "data_report.json", "curves.csv"}


def check_run_folder(path: str | os.PathLike, overwrite: bool, resuming: bool) -> None:
    """Refuse to train into a folder that already holds a run (its checkpoints, model, reports would
    mix with the new run's), unless --overwrite_output_dir or --resume_from_checkpoint says so (the
    Hugging Face examples' convention). The data files a run writes first (kept when it stops before
    training) do not count: they are rewritten."""
    folder = Path(path)
    if overwrite or resuming or not folder.is_dir():
        return
    held = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name not in _DATA_ONLY)
    if held:
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise OutputError(f"--output_dir {folder} already holds a run ({shown}): choose another --output_dir, pass "
                          "--overwrite_output_dir to train into it anyway, or --resume_from_checkpoint last to continue it")


def missing_folders(path: str | os.PathLike) -> list[Path]:
    """`path` and those of its parents that do not exist yet, deepest first (what a run will create)."""
    folder = Path(path).absolute()
    return [p for p in (folder, *folder.parents) if not p.exists()]


def ensure_writable_dir(path: str | os.PathLike, flag: str = "--output_dir") -> Path:
    """Create `path` if needed and prove a file can be written there; OutputError otherwise."""
    folder = Path(path)
    try:
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{flag} {folder} is a file, not a folder: choose another {flag}")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{flag} {folder} is not writable ({exc.strerror or exc}): choose another {flag}") from None
    return folder


@contextlib.contextmanager
def note_failed_run(output_dir: str | os.PathLike, created: Sequence[Path] = ()) -> Iterator[None]:
    """If the block fails before any model or checkpoint was written, say that the folder holds only
    the data files (kept: data_report.json explains skipped rows), then let the error through. The
    folders in `created` (made for this run, deepest first) are removed if the run left them empty."""
    try:
        yield
    except BaseException:
        for made in created:
            try:
                made.rmdir()  # only ever succeeds on an empty folder
            except OSError:
                break
        folder = Path(output_dir)
        if folder.is_dir():
            names = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
            if names and names <= _DATA_ONLY:
                logger.warning("the run stopped before training: %s holds only %s (no model was saved)", folder,
                               ", ".join(sorted(names)))
        raise
