"""`music2emo`: the train / validation / test lists the Music2Emo paper published for DEAM, EmoMusic
and PMEmo (shipped in sentio/data/splits_published/, with their source).

The lists leak across datasets: DEAM's ids <= 1000 are EmoMusic's songs, and EmoMusic test songs
sit in DEAM's train and validation lists (and DEAM test songs in EmoMusic's train list). By default
a song that is a test song in ANY of the three lists loses its train/validation copies, in every
dataset, counted in data_report.json (so a model trained here has seen none of the benchmark's test
songs, whichever dataset it is later scored on). `--keep_published_leakage` keeps the lists as
published, to reproduce the paper; the report and the model card then say how many of the lists'
test songs were trained on.

Copies are the manifest's `group` column where it has one (songs matched by their audio), and the
known id map otherwise: DEAM song N <= 1000 is EmoMusic song N.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import pandas as pd

from ..splits import SPLITS
from .base import Assignment, BenchmarkProtocol, with_split

LIST_DATASETS = ("deam", "emomusic", "pmemo")
LISTS_PACKAGE = "sentio.data.splits_published"
# DEAM's 2013 subset (ids 1..1000) is EmoMusic's 744 songs, the same 45 s clips, under the same ids.
SHARED_IDS = {"deam": ("emomusic", 1000)}
LEAK_REASON = "test song of the published lists"


def local_id(song_id: str) -> str:
    """The dataset's own id of a song id (a multi-dataset manifest writes `dataset:id`)."""
    return str(song_id).rpartition(":")[2]


def known_group(dataset: str, song_id: str) -> str:
    """The song's group by the known id map: DEAM N <= 1000 -> emomusic:N, anything else dataset:id."""
    other = SHARED_IDS.get(dataset)
    song_id = local_id(song_id)
    if other and song_id.isdigit() and int(song_id) <= other[1]:
        return f"{other[0]}:{song_id}"
    return f"{dataset}:{song_id}"


@lru_cache(maxsize=1)
def published_lists() -> dict[str, dict[str, str]]:
    """dataset -> {song id: train|validation|test} from the shipped lists."""
    root = resources.files(LISTS_PACKAGE)
    out: dict[str, dict[str, str]] = {}
    for dataset in LIST_DATASETS:
        out[dataset] = {}
        for split in SPLITS:
            for line in root.joinpath(f"{dataset}_{split}.txt").read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out[dataset][line.strip()] = split
    return out


def published_test_groups(lists: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """group -> 'dataset:id' of the first test song in it, over every dataset's test list."""
    lists = published_lists() if lists is None else lists
    return {known_group(ds, sid): f"{ds}:{sid}" for ds, songs in lists.items() for sid, split in songs.items()
            if split == "test"}


def published_conflicts(lists: dict[str, dict[str, str]] | None = None) -> dict[str, int]:
    """`<A>_test_in_<B>_<split>`: how many of dataset A's test songs are in dataset B's train or
    validation list (by the known id map), for every pair that has any."""
    lists = published_lists() if lists is None else lists
    out: dict[str, int] = {}
    for a, a_songs in lists.items():
        tests = {known_group(a, s) for s, split in a_songs.items() if split == "test"}
        for b, b_songs in lists.items():
            if a == b:
                continue
            for split in ("train", "validation"):
                n = sum(1 for s, sp in b_songs.items() if sp == split and known_group(b, s) in tests)
                if n:
                    out[f"{a}_test_in_{b}_{split}"] = n
    return out


class Music2Emo(BenchmarkProtocol):
    name = "music2emo"
    datasets = LIST_DATASETS
    leakage_option = True
    several_datasets = True  # the paper's joint training: DEAM + EmoMusic + PMEmo in one run
    summary = ("the Music2Emo paper's published train/validation/test lists for DEAM, EmoMusic and PMEmo; by default "
               "train/validation copies of any list's test songs are left out; headline R² (valence, arousal, mean)")

    def assign(self, table: pd.DataFrame, dataset: str, options: Any) -> Assignment:
        lists = published_lists()
        datasets = (table["dataset"].fillna(dataset).astype(str) if "dataset" in table
                    else pd.Series(dataset, index=table.index))
        splits = {str(s): lists.get(d, {}).get(local_id(s), "") for s, d in zip(table["song_id"], datasets)}
        out = with_split(table, {k: v for k, v in splits.items() if v}, "not in the published lists")
        # A copy of a test song: by the known id map, or by the `group` column where the data has one.
        groups = [known_group(d, s) for d, s in zip(datasets, out["song_id"].astype(str))]
        tests = published_test_groups(lists)
        column = out["group"].fillna("").astype(str) if "group" in out else pd.Series("", index=out.index)
        test_column = set(column[(out["split"] == "test") & (column != "")])
        fit = out["split"].isin(["train", "validation"]).to_numpy()
        leaked = [bool(f) and (g in tests or (c != "" and c in test_column)) for f, g, c in zip(fit, groups, column)]
        leaked_rows = out[leaked]
        keep = bool(getattr(options, "keep_published_leakage", False))
        report: dict[str, Any] = {
            "split_rule": "Music2Emo's published lists (sentio/data/splits_published)",
            "keep_published_leakage": keep,
            "published_conflicts": published_conflicts(lists),
            "train_validation_copies_of_test_songs": {s: int((leaked_rows["split"] == s).sum())
                                                      for s in ("train", "validation")},
        }
        if keep:
            report["test_songs_trained_on"] = int(len(leaked_rows))
            report["note"] = (f"lists kept as published: {len(leaked_rows)} train/validation songs are test songs of "
                              "the published lists (the paper's condition)")
        else:
            report["left_out"] = int(len(leaked_rows))
            report["test_songs_trained_on"] = 0
            where = [tests.get(g, "a test song of this run") for g in (groups[i] for i in range(len(out)) if leaked[i])]
            out.loc[leaked, "skip_reason"] = [f"{LEAK_REASON} ({w}): left out of {s} so no test song is trained on"
                                              for w, s in zip(where, leaked_rows["split"])]
        return Assignment(out, report)
