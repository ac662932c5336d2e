"""Song-disjoint train/validation/test splits: seeded, from id lists, or from a column."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ArgumentError, DataError

SPLITS = ("train", "validation", "test")
_ALIASES = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
            "validation": "validation", "dev": "validation", "eval": "validation", "test": "test"}


def normalise_split_name(name: str) -> str | None:
    """'val', 'dev', 'Valid' -> 'validation'; unknown names -> None."""
    return _ALIASES.get(str(name).strip().lower())


def seeded_split(song_ids: Sequence[str], seed: int = 42, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> dict[str, str]:
    """Assign each unique song to a split with a seeded shuffle; the same ids and seed give the same split.

    Ids are sorted before shuffling so the split does not depend on row order. With 3 or more songs
    every split gets at least one.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ArgumentError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}; "
                            "set --split_fractions like 0.8,0.1,0.1")
    unique = sorted(set(song_ids))
    order = np.random.default_rng(seed).permutation(len(unique))
    n = len(unique)
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if n >= 3:
        n_val = max(n_val, 1) if fractions[1] > 0 else 0
        n_test = max(n_test, 1) if fractions[2] > 0 else 0
    n_train = n - n_val - n_test
    names = ["train"] * n_train + ["validation"] * n_val + ["test"] * n_test
    return {unique[i]: names[k] for k, i in enumerate(order)}


def read_split_files(spec: str | Path) -> dict[str, str]:
    """Id lists, one id per line: a folder holding `*train*.txt`, `*val*.txt`, `*test*.txt`
    (like DEAM's public split) or `train=a.txt,validation=b.txt,test=c.txt`."""
    spec = str(spec)
    files: dict[str, Path] = {}
    if "=" in spec:
        for part in spec.split(","):
            name, _, file = part.partition("=")
            split = normalise_split_name(name)
            if split is None:
                raise ArgumentError(f"--split_files: unknown split name {name!r}; use train, validation, test")
            files[split] = Path(file)
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise ArgumentError(f"--split_files: {folder} is neither a folder nor train=A,validation=B,test=C; "
                                "pass one of the two")
        for txt in sorted(folder.glob("*.txt")):
            stem = txt.stem.lower()
            for key in ("train", "val", "test"):
                if key in stem:
                    files[normalise_split_name(key)] = txt
        if "train" not in files:
            raise ArgumentError(f"--split_files: no *train*.txt in {folder}; add the train id list (one id per line)")
    mapping: dict[str, str] = {}
    for split, file in files.items():
        for line_no, line in enumerate(_read_lines(file), start=1):
            song = line.strip()
            if not song:
                continue
            if song in mapping and mapping[song] != split:
                raise DataError(f"{file}:{line_no}: id {song} is also in the {mapping[song]} list; "
                                "keep each song in one list")
            mapping[song] = split
    return mapping


def _read_lines(file: Path) -> list[str]:
    """The lines of an id list; a missing or non-text file is one ArgumentError line."""
    if not file.is_file():
        raise ArgumentError(f"--split_files: {file} not found; check the path")
    try:
        return file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ArgumentError(f"--split_files: {file} is not a text file; give one id per line") from None
