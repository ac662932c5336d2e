"""Argument dataclasses shared by the command-line scripts (parsed with HfArgumentParser)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    """Where the clips and labels come from, how they are split, and where features are cached."""

    data: str | None = field(
        default=None,
        metadata={"help": "A DEAM folder, a label CSV (path, valence, arousal), or a manifest.csv from prepare.py."},
    )
    demo: bool = field(default=False, metadata={"help": "Use the built-in demo corpus (generated once under data/demo)."})
    demo_dir: str = field(default="data/demo", metadata={"help": "Where the demo corpus is generated."})
    demo_num_clips: int = field(default=300, metadata={"help": "Size of the demo corpus."})
    demo_seed: int = field(default=0, metadata={"help": "Seed of the demo corpus."})
    label_scale: str | None = field(
        default=None, metadata={"help": "Scale of the CSV's labels: 1-9, -1-1 or 0-1 (DEAM and the demo are 1-9)."}
    )
    path_column: str = field(default="path", metadata={"help": "CSV column with the audio path (relative to the CSV)."})
    valence_column: str = field(default="valence", metadata={"help": "CSV column with valence."})
    arousal_column: str = field(default="arousal", metadata={"help": "CSV column with arousal."})
    id_column: str | None = field(default=None, metadata={"help": "CSV column with a song id (default: the path)."})
    split_column: str = field(default="split", metadata={"help": "CSV column with train/validation/test, if present."})
    split_files: str | None = field(
        default=None,
        metadata={"help": "Id lists: a folder with *train*.txt, *val*.txt, *test*.txt, or train=A,validation=B,test=C."},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the song-level split."})
    split_fractions: str = field(default="0.8,0.1,0.1", metadata={"help": "Train,validation,test fractions."})
    strict: bool = field(default=False, metadata={"help": "Fail on the first bad row instead of skipping and reporting it."})
    cache_dir: str = field(default="data/cache", metadata={"help": "Where computed features are cached."})
    preprocessing_num_workers: int = field(default=1, metadata={"help": "Processes for the one-time feature pass."})

    def fractions(self) -> tuple[float, float, float]:
        try:
            parts = tuple(float(x) for x in self.split_fractions.split(","))
        except ValueError:
            parts = ()
        if len(parts) != 3:
            raise ValueError(f"--split_fractions must be three numbers like 0.8,0.1,0.1, got {self.split_fractions!r}")
        return parts  # type: ignore[return-value]
