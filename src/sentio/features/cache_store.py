"""Building a cache folder once, safely, whoever else is building it and whenever we are killed.

A cache (features, probe embeddings) is built in a temporary folder beside its final name and
renamed into place only when complete, so a half-written cache is never read: a process killed
mid-build leaves only a `.partial-*` folder, removed by the next build. A file lock makes two
processes that want the same cache at once build it once: the second waits, then reuses it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from filelock import FileLock

PARTIAL = ".partial-"


def lock_for(path: str | os.PathLike) -> FileLock:
    """The lock that guards building `path` (a file beside it; the lock is released on kill)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(path.name + ".lock")))


def build_once(directory: str | os.PathLike, is_complete: Callable[[Path], bool],
               build: Callable[[Path], None]) -> bool:
    """Make `directory` hold a complete cache; True when it already did (reused, nothing built).

    `build(tmp)` fills an empty temporary folder; `is_complete(folder)` says whether a folder is
    a finished cache (e.g. its marker file lists files that all exist).
    """
    directory = Path(directory)
    with lock_for(directory):
        if directory.is_dir() and is_complete(directory):
            return True
        for stale in directory.parent.glob(directory.name + PARTIAL + "*"):  # left by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        tmp = directory.with_name(f"{directory.name}{PARTIAL}{os.getpid()}")
        tmp.mkdir()
        try:
            build(tmp)
            if not is_complete(tmp):
                raise RuntimeError(f"{tmp}: the build finished but the cache is incomplete")
            if directory.exists():  # an incomplete folder written by an older version
                shutil.rmtree(directory)
            os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return False
