"""The audio files of a library: files as given, folders searched recursively, problems reported.

By hand rather than `Path.rglob`: rglob follows a symbolic link to a folder above it until the
path is too long (a symlink loop) and gives up on an unreadable folder without saying so; here
each folder is entered once (by device and inode) and each problem is one `Problem`.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aiff", ".aif", ".au"}


@dataclass(frozen=True)
class Problem:
    """A folder or link of the library that was left out, and why (one line)."""

    path: str
    reason: str


@dataclass
class Listing:
    """The files to predict, in order, and what could not be searched."""

    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)  # folders given that hold no audio file


def _walk(root: str, problems: list[Problem]) -> list[str]:
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:  # a link loop (ELOOP), a dangling link, a folder removed meanwhile
            problems.append(Problem(folder, f"cannot be opened ({exc.strerror or exc})"))
            continue
        if (st.st_dev, st.st_ino) in seen:
            problems.append(Problem(folder, "is a link back to a folder already searched (a symlink loop): left out"))
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            problems.append(Problem(folder, f"cannot be read ({exc.strerror or exc}): its files are left out"))
            continue
        for entry in entries:
            try:
                if entry.is_dir():  # follows links, like a user browsing the folder would
                    stack.append(entry.path)
                elif entry.is_file() and os.path.splitext(entry.name)[1].lower() in AUDIO_EXTENSIONS:
                    found.append(str(Path(entry.path)))  # the spelling Path gives, as earlier versions wrote
                elif entry.is_symlink() and not os.path.exists(entry.path):
                    _dangling(entry.path, found, problems)
            except OSError as exc:
                loop = exc.errno == errno.ELOOP
                problems.append(Problem(entry.path, "is a symlink loop: left out" if loop
                                        else f"cannot be opened ({exc.strerror or exc})"))
    return sorted(found)


def _dangling(path: str, found: list[str], problems: list[Problem]) -> None:
    """A link that leads nowhere: a loop is reported here, a broken link to audio where it is read."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            problems.append(Problem(path, "is a symlink loop: left out"))
        elif os.path.splitext(path)[1].lower() in AUDIO_EXTENSIONS:
            found.append(str(Path(path)))


def list_audio(inputs: list[str]) -> Listing:
    """Files as given (whatever their extension), folders expanded to their audio files, sorted."""
    listing = Listing()
    for item in inputs:
        if os.path.isdir(item):
            found = _walk(item, listing.problems)
            if not found:
                listing.empty.append(item)
            listing.files.extend(found)
        else:
            listing.files.append(item)  # a missing file is reported with the other unreadable ones
    return listing
