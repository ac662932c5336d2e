"""Sentio's error model: what the user can fix is a SentioError, everything else is a bug.

A SentioError is raised where bad input is recognised (a file, a CSV row, a flag, a model folder)
and its message is one line that names the thing and says what to do. The command-line scripts
print that line and exit 2. Any other exception is a bug and keeps its traceback (exit 1).
Errors from other libraries that are caused by input (soundfile, safetensors, pandas parsing)
are translated into these types at the boundary where the input is read.

The types also derive from the builtin a caller would expect (ValueError, FileNotFoundError), so
code that catches those keeps working.
"""

from __future__ import annotations


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (at most `limit` characters), or its type's name
    when the message is empty: how another library's error is named inside a one-line message."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class SentioError(Exception):
    """Bad input or environment that the user can fix; the message is one line."""

    def one_line(self) -> str:
        return first_line(self)


class ArgumentError(SentioError, ValueError):
    """A command-line flag or function argument has a value that cannot work."""


class DataError(SentioError, ValueError):
    """A dataset, label file, manifest or one of its rows cannot be used."""


class MissingFileError(SentioError, FileNotFoundError):
    """A file or folder the user named does not exist or lacks what it must hold."""


class CheckpointError(SentioError, OSError):
    """A model folder, checkpoint or hub id cannot be found or used."""


class OutputError(SentioError, OSError):
    """An output folder or file cannot be written (permissions, full disk, a file in the way)."""
