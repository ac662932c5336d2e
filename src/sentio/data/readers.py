"""Registry of dataset folder readers: each layout Sentio knows is one module with one reader class,
and a folder is given to the first reader that recognises it (asked, never compared by name).

A reader class has `name` (the manifest's `dataset` value), `title` (for descriptions),
`label_scale`, a classmethod `detects(root)`, and once built from the folder: `read(options)` ->
(source table, checks for data_report.json) and `dynamic` (its 2 Hz annotations or None).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ..errors import ArgumentError
from .deam import DeamReader
from .dynamic import DynamicTable
from .emomusic import EmoMusicReader
from .pmemo import PmemoReader


class FolderReader(Protocol):
    name: str
    title: str
    label_scale: str
    dynamic: DynamicTable | None

    @classmethod
    def detects(cls, root: Path) -> bool: ...

    def read(self, options: Any = None) -> tuple[pd.DataFrame, dict]: ...


# Most specific first. DEAM comes last: a folder no reader recognises is opened as DEAM, whose
# layout error names the files it looked for.
READERS: tuple[type, ...] = (PmemoReader, EmoMusicReader, DeamReader)


def open_reader(root: str | Path) -> FolderReader:
    """The reader of the folder's layout (one line naming what is missing when none fits)."""
    root = Path(root)
    for reader in READERS:
        if reader.detects(root):
            return reader(root)
    return READERS[-1](root)


def reader_class(name: str) -> type:
    """The reader registered under `name` (deam, emomusic, pmemo)."""
    for reader in READERS:
        if reader.name == name:
            return reader
    raise ArgumentError(f"no dataset reader called {name!r}; known: {', '.join(r.name for r in READERS)}")


def reader_names() -> list[str]:
    return [r.name for r in READERS]
