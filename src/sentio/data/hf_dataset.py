"""A Hugging Face dataset as a Sentio source (`--dataset_name`), as run_audio_classification.py reads one.

`--dataset_name` is a Hub id (read from the local cache when offline) or a folder written by
`save_to_disk`. `--audio_column_name` is an `Audio` column or a column of file paths. Audio is never
decoded by `datasets` (its Audio decoding needs torchcodec, which Sentio does not use): the column is
cast to `Audio(decode=False)` and its raw bytes are written once to files under
`<cache_dir>/hf_audio/`, or its paths are used as they are; Sentio's own loader decodes them like
any other clip. The dataset's splits (train / validation / test, or their aliases) become the
manifest's split; a dataset with a single split, or a plain Dataset, is split with the seed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ArgumentError, MissingFileError, first_line
from .manifest import ManifestError
from .splits import normalise_split_name

HF_AUDIO_DIR = "hf_audio"


def _load(name: str, config: str | None) -> Any:
    """load_from_disk for a save_to_disk folder, load_dataset otherwise; one line when neither works."""
    import datasets

    folder = Path(name)
    if folder.is_dir() and any((folder / f).is_file() for f in ("dataset_info.json", "dataset_dict.json", "state.json")):
        return datasets.load_from_disk(str(folder))
    try:
        return datasets.load_dataset(name, config)
    except (FileNotFoundError, ConnectionError, ValueError) as exc:
        raise MissingFileError(f"--dataset_name {name}: cannot load it ({first_line(exc)}); pass a folder written by "
                               "save_to_disk, or a Hub id already in the local cache (or go online once)") from None


def _splits(loaded: Any) -> list[tuple[str, Any]]:
    """(split name or '', dataset) pairs; '' for a plain Dataset or a lone split (the seed splits it)."""
    import datasets

    if isinstance(loaded, datasets.Dataset):
        return [("", loaded)]
    parts = list(loaded.items())
    if len(parts) == 1:
        return [("", parts[0][1])]
    out = []
    for name, part in parts:
        split = normalise_split_name(name)
        if split is None:
            raise ArgumentError(f"--dataset_name: split {name!r} is not train, validation or test (or an alias); "
                                "keep only those splits in the dataset")
        out.append((split, part))
    return out


def read_hf_dataset(spec: Any) -> tuple[pd.DataFrame, str]:
    """The source table (song_id, path, valence, arousal[, spreads], split, source) and a description."""
    import datasets

    if not spec.label_scale:
        raise ManifestError(f"--dataset_name {spec.dataset_name}: say the scale of its labels with "
                            "--label_scale 1-9|-1-1|0-1")
    folder = Path(spec.dataset_name)
    base = folder.resolve() if folder.is_dir() else Path.cwd()
    key = hashlib.sha1(f"{spec.dataset_name}|{spec.dataset_config_name}".encode()).hexdigest()[:16]
    audio_dir = Path(getattr(spec, "cache_dir", "data/cache")) / HF_AUDIO_DIR / key
    columns = {"valence": spec.valence_column_name, "arousal": spec.arousal_column_name}
    if spec.valence_std_column:
        columns["valence_std"] = spec.valence_std_column
    if spec.arousal_std_column:
        columns["arousal_std"] = spec.arousal_std_column
    rows = []
    for split, part in _splits(_load(spec.dataset_name, spec.dataset_config_name)):
        missing = [c for c in [spec.audio_column_name, *columns.values()] if c not in part.column_names]
        if missing:
            raise ArgumentError(f"--dataset_name {spec.dataset_name}: no column(s) {missing} (it has "
                                f"{part.column_names}); name them with --audio_column_name, --valence_column_name, "
                                "--arousal_column_name")
        if isinstance(part.features[spec.audio_column_name], datasets.Audio):
            part = part.cast_column(spec.audio_column_name, datasets.Audio(decode=False))
        ids = part[spec.id_column] if spec.id_column and spec.id_column in part.column_names else None
        values = {name: part[column] for name, column in columns.items()}
        for i, audio in enumerate(part[spec.audio_column_name]):
            song_id = str(ids[i]) if ids is not None else f"{split or 'row'}-{i}"
            rows.append({"song_id": song_id, "path": _audio_path(audio, base, audio_dir, song_id),
                         **{name: _number(v[i]) for name, v in values.items()}, "split": split,
                         "source": f"{spec.dataset_name}[{split or 'all'}]:{i}"})
    if not rows:
        raise ManifestError(f"--dataset_name {spec.dataset_name}: the dataset has no rows")
    return pd.DataFrame(rows), f"Hugging Face dataset {spec.dataset_name}" + (
        f" ({spec.dataset_config_name})" if spec.dataset_config_name else "")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")  # the manifest skips the row with the reason


def _audio_path(audio: Any, base: Path, audio_dir: Path, song_id: str) -> str:
    """A file Sentio's loader can read: the raw bytes written once under audio_dir, or the row's path
    (relative paths against the dataset folder)."""
    if isinstance(audio, dict):
        data, path = audio.get("bytes"), audio.get("path")
        if data:
            suffix = Path(path).suffix if path else ".wav"
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in song_id)
            target = audio_dir / f"{safe}{suffix or '.wav'}"
            if not (target.is_file() and target.stat().st_size == len(data)):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(target.suffix + ".tmp")
                tmp.write_bytes(data)
                tmp.replace(target)  # atomic: a killed run leaves no half-written clip under the final name
            return str(target.resolve())
        audio = path
    if not audio:
        return ""
    path = Path(str(audio))
    return str(path if path.is_absolute() else (base / path if (base / path).exists() else path).resolve())
