"""What every command-line script shares: argument parsing, logging set-up, the error model
(a SentioError is one line and exit 2; anything else is a bug and keeps its traceback), and output
folders (checked before long work starts, and explained when a run fails half-way)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import ArgumentError, OutputError, SentioError, first_line

# OS errors the user fixes (space, permissions), whatever library raised them: one line, not a bug.
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's default-showing help, minus its noise: no "(default: None)" for a default that is
    resolved after parsing (the help says what it is), nothing added where the help already names
    the default, and a `--no_X` flag says what it turns off instead of repeating X's help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        flags = action.option_strings
        if flags and all(f.startswith("--no_") for f in flags):
            return f"Turn off --{flags[0][len('--no_'):]}."
        text = action.help or ""
        if action.default in (None, argparse.SUPPRESS) or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def expand_short_flags(argv: Sequence[str] | None = None) -> list[str]:
    """`--epochs N` is the short name of `--num_train_epochs N`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return ["--num_train_epochs" if a == "--epochs" else a.replace("--epochs=", "--num_train_epochs=", 1) for a in argv]


def parser_for(dataclass_types: Sequence[type], prog: str | None = None, description: str | None = None):
    """An HfArgumentParser over `dataclass_types` with Sentio's help formatter."""
    from transformers import HfArgumentParser

    return HfArgumentParser(dataclass_types, prog=prog, description=description, formatter_class=HelpFormatter)


def parse_dataclasses(parser: Any, argv: Sequence[str] | None = None) -> tuple:
    """Parse into the parser's dataclasses. A value the dataclasses' own checks reject (ours, or
    TrainingArguments' ValueErrors) is bad input: one line, exit 2."""
    args = _expanded(parser, argv)
    try:
        return parser.parse_args_into_dataclasses(args)
    except SentioError:
        raise
    except ValueError as exc:
        raise ArgumentError(first_line(exc)) from None


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


def run_cli(main: Callable[[], int | None], prog: str) -> None:
    """Run `main`: a SentioError exits 2 with `prog: error: <one line>`, Ctrl-C exits 130, and any
    other exception is a bug: it propagates with its full traceback (exit 1)."""
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
def note_failed_run(output_dir: str | os.PathLike) -> Iterator[None]:
    """If the block fails before any model or checkpoint was written, say that the folder holds only
    the data files (kept: data_report.json explains skipped rows), then let the error through."""
    try:
        yield
    except BaseException:
        folder = Path(output_dir)
        if folder.is_dir():
            names = {p.name for p in folder.iterdir() if not p.name.startswith(".")}
            if names and names <= _DATA_ONLY:
                logger.warning("the run stopped before training: %s holds only %s (no model was saved)", folder,
                               ", ".join(sorted(names)))
        raise
