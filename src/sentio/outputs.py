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
def note_failed_run(output_dir: str | os.PathLike, created: list[Path] = ()) -> Iterator[None]:
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
