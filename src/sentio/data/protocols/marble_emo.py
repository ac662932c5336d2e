"""`marble-emo`: EmoMusic as MARBLE (v1) runs its EMO task.

Test = the 125 songs whose songs_info.csv "Mediaeval 2013 set" is `evaluation`. The other 619 go
8:2 to train/validation by artist, with MARBLE's own rule (so the validation songs are MARBLE's):
the artist lowercased, only ASCII letters and spaces kept, runs of spaces collapsed, ends
stripped; `int(sha1(artist).hexdigest(), 16) % 10` indexes `["train"] * 8 + ["valid"] * 2`
(504 / 115 / 125 songs on the real files). Labels are z-scored with the mean and population std
of the 619 non-test songs; the first 30 s of each clip in 5 s windows; headline R² per dimension
and their mean.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pandas as pd

from ...errors import DataError
from .base import Assignment, BenchmarkProtocol, with_split

TEST_SET = "evaluation"
SLOTS = ["train"] * 8 + ["validation"] * 2


def normalise_artist(artist: str) -> str:
    """MARBLE's artist key: lowercase, ASCII letters and spaces only, single spaces, no ends."""
    text = re.sub(r"[^a-z ]", "", str(artist).lower())
    return re.sub(r" +", " ", text).strip()


def artist_split(artist: str) -> str:
    """train or validation, by the sha1 of the normalised artist."""
    return SLOTS[int(hashlib.sha1(normalise_artist(artist).encode()).hexdigest(), 16) % 10]


class MarbleEmo(BenchmarkProtocol):
    name = "marble-emo"
    datasets = ("emomusic",)
    summary = ("EmoMusic: test = the 125 MediaEval 2013 evaluation songs; the other songs 8:2 train/validation by "
               "artist hash (MARBLE's rule); labels z-scored with the non-test songs' mean and population std; "
               "first 30 s in 5 s windows; headline R² (valence, arousal, mean)")
    window_seconds = 5.0
    max_seconds = 30.0
    label_transform = "z-score"  # MARBLE's: the model trains on z values (an unbounded head)

    def assign(self, table: pd.DataFrame, dataset: str, options: Any) -> Assignment:
        subset = table.get("subset", pd.Series("", index=table.index)).fillna("").astype(str).str.strip()
        artist = table.get("artist", pd.Series("", index=table.index)).fillna("").astype(str)
        if not (subset != "").any():
            raise DataError("--protocol marble-emo needs songs_info.csv (its \"Mediaeval 2013 set\" column) in the "
                            "EmoMusic folder: it names the 125 test songs")
        splits = {str(s): "test" if sub == TEST_SET else artist_split(a)
                  for s, sub, a in zip(table["song_id"], subset, artist) if sub}
        out = with_split(table, splits, "not in songs_info.csv (no MediaEval 2013 set)")
        return Assignment(out, {"split_rule": "MediaEval 2013 evaluation set = test; artist sha1 % 10 -> 8:2 "
                                              "train/validation"})
