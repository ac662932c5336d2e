"""Output folders: checked before long work starts, and explained when a run fails half-way."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import OutputError

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
