"""`mediaeval-2015`: DEAM as the MediaEval 2015 "Emotion in Music" task scored it.

Test = the 58 full songs with ids 2001..2058. The other songs are split train/validation with a
seeded song-level split (--split_seed; validation takes --split_fractions' validation share of
them). Headline: the dynamic (2 Hz) metrics as the task scored them, RMSE and Pearson r within
each song, averaged over the test songs (a model with --target dynamic or both).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..splits import seeded_split
from .base import Assignment, BenchmarkProtocol, with_split

TEST_IDS = range(2001, 2059)


def is_test_song(song_id: str) -> bool:
    return song_id.isdigit() and int(song_id) in TEST_IDS


class MediaEval2015(BenchmarkProtocol):
    name = "mediaeval-2015"
    datasets = ("deam",)
    summary = ("DEAM: test = the 58 full songs 2001..2058; the rest split train/validation by a seeded song-level "
               "split; headline the 2 Hz metrics per test song (RMSE and Pearson r), averaged over songs")
    headline_metric = "dynamic"

    def assign(self, table: pd.DataFrame, dataset: str, options: Any) -> Assignment:
        ids = [str(s) for s in table["song_id"]]
        rest = sorted({s for s in ids if not is_test_song(s)})
        train, validation, _ = options.fractions() if options is not None else (0.8, 0.1, 0.1)
        share = validation / (train + validation) if train + validation > 0 else 0.1
        seed = getattr(options, "split_seed", 42)
        splits = seeded_split(rest, seed, (1.0 - share, share, 0.0)) if rest else {}
        splits.update({s: "test" for s in ids if is_test_song(s)})
        return Assignment(with_split(table, splits, "no split"),
                          {"split_rule": f"ids 2001..2058 = test; the rest seeded split seed={seed}, "
                                         f"validation share {share:.3g}"})
