"""--dataset_name: a Hugging Face dataset written by save_to_disk, with an Audio column or a path column."""

import datasets
import pytest

from sentio.args import DataArguments
from sentio.data.sources import prepare_manifest
from sentio.errors import ArgumentError, DataError
from tests.conftest import write_audio


def test_audio_column_with_bytes_and_splits(tmp_path):
    clips = [write_audio(tmp_path / "src" / f"{i}.wav", seconds=1.0, sr=16000, seed=i) for i in range(6)]
    parts = {}
    for split, rows in (("train", range(0, 4)), ("test", range(4, 6))):
        table = {"audio": [{"bytes": clips[i].read_bytes(), "path": f"{i}.wav"} for i in rows],
                 "v": [1.0 + i for i in rows], "a": [9.0 - i for i in rows], "clip_id": [f"c{i}" for i in rows]}
        raw = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
        features = datasets.Features({"audio": raw, "v": datasets.Value("float32"),
                                      "a": datasets.Value("float32"), "clip_id": datasets.Value("string")})
        # An Audio column as the Hub stores it; cast without encoding (encoding would need torchcodec)
        parts[split] = datasets.Dataset.from_dict(table, features=features).cast_column("audio", datasets.Audio())
        assert isinstance(parts[split].features["audio"], datasets.Audio)
    folder = tmp_path / "hf"
    datasets.DatasetDict(parts).save_to_disk(str(folder))
    for clip in clips:  # the dataset holds the bytes: the source files are not needed any more
        clip.unlink()
    spec = DataArguments(dataset_name=str(folder), label_scale="1-9", valence_column_name="v", arousal_column_name="a",
                         id_column="clip_id", cache_dir=str(tmp_path / "cache"))
    manifest, report = prepare_manifest(spec, tmp_path / "run", progress=False)
    rows = manifest.set_index("song_id")
    assert rows.index.tolist() == [f"c{i}" for i in range(6)]
    assert rows["split"].tolist() == ["train"] * 4 + ["test"] * 2
    assert rows.loc["c1", ["valence", "arousal"]].tolist() == pytest.approx([(2 - 5) / 4, (8 - 5) / 4])
    assert all(p.startswith(str((tmp_path / "cache" / "hf_audio").resolve())) for p in rows["path"])
    assert (rows["duration"] == 1.0).all() and report.dataset == "hf"
    assert report.source == f"Hugging Face dataset {folder}"


def test_path_column_and_bad_input(tmp_path):
    for i in range(4):
        write_audio(tmp_path / "hf_paths" / "clips" / f"{i}.wav", seconds=1.0, sr=16000, seed=i)
    ds = datasets.Dataset.from_dict({"file": [f"clips/{i}.wav" for i in range(4)] + ["clips/missing.wav"],
                                     "valence": [0.1, 0.2, 0.3, 0.4, 0.5], "arousal": [0.5, 0.4, 0.3, 0.2, 0.1]})
    folder = tmp_path / "hf_paths"
    ds.save_to_disk(str(folder / "ds"))
    spec = DataArguments(dataset_name=str(folder / "ds"), label_scale="0-1", audio_column_name="file",
                         cache_dir=str(tmp_path / "cache"))
    # relative paths resolve against the dataset folder first, then the working directory
    with pytest.raises(DataError):  # none of clips/*.wav is beside the saved dataset: all five are missing
        prepare_manifest(spec, progress=False)
    (folder / "ds" / "clips").symlink_to(folder / "clips")
    manifest, report = prepare_manifest(spec, progress=False)
    assert len(manifest) == 4 and [r["reason"] for r in report.skipped] == ["missing file"]
    assert manifest["valence"].tolist()[0] == pytest.approx(-0.8)
    with pytest.raises(ArgumentError, match=r"no column\(s\) \['mood'\]"):
        prepare_manifest(DataArguments(dataset_name=str(folder / "ds"), label_scale="0-1", audio_column_name="file",
                                       valence_column_name="mood"), progress=False)
    with pytest.raises(DataError, match="say the scale of its labels with --label_scale"):
        prepare_manifest(DataArguments(dataset_name=str(folder / "ds"), audio_column_name="file"), progress=False)
