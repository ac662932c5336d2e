import json

import pandas as pd
import pytest

from sentio.args import DataArguments
from sentio.data.manifest import MANIFEST_COLUMNS, ManifestError, read_manifest
from sentio.data.sources import prepare_manifest
from tests.conftest import write_audio


@pytest.fixture
def csv_dataset(tmp_path):
    """A label CSV with relative paths, every kind of bad row, and several audio formats."""
    root = tmp_path / "ds"
    write_audio(root / "audio" / "a.mp3", sr=44100, channels=2, seed=1)
    write_audio(root / "audio" / "b.wav", sr=48000, channels=1, seed=2)
    write_audio(root / "audio" / "c.flac", sr=22050, channels=2, seed=3)
    write_audio(root / "audio" / "d.ogg", sr=16000, channels=1, seed=4)
    for i in range(6):
        write_audio(root / "audio" / f"ok{i}.wav", sr=8000, seconds=1.0, seed=10 + i)
    (root / "audio" / "empty.wav").write_bytes(b"")
    (root / "audio" / "corrupt.mp3").write_bytes(b"\x00garbage" * 50)
    rows = [
        ("audio/a.mp3", 7, 6), ("audio/b.wav", 3, 2.5), ("audio/c.flac", 5, 5), ("audio/d.ogg", 9, 1),
        *[(f"audio/ok{i}.wav", 2 + i, 4) for i in range(6)],
        ("audio/missing.wav", 5, 5), ("audio/empty.wav", 5, 5), ("audio/corrupt.mp3", 5, 5),
        ("audio/a.mp3", 4, 4), ("audio/c.flac", "", 4), ("audio/d.ogg", 5, 10),
    ]
    lines = ["path, valence, arousal"] + [f"{p},{v},{a}" for p, v, a in rows]
    (root / "labels.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return root / "labels.csv"


def test_csv_manifest_keeps_good_rows_and_reports_each_bad_one(csv_dataset, tmp_path):
    args = DataArguments(data=str(csv_dataset), label_scale="1-9", split_seed=1)
    manifest, report = prepare_manifest(args, tmp_path / "out", progress=False)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert len(manifest) == 10 and report["rows_kept"] == 10 and report["rows_total"] == 16
    reasons = {item["row"]: item["reason"] for item in report["skipped"]}
    assert reasons["labels.csv:12"] == "missing file"
    assert reasons["labels.csv:13"] == "empty file"
    assert reasons["labels.csv:14"].startswith("cannot decode audio")
    assert reasons["labels.csv:15"] == "duplicate id audio/a"
    assert reasons["labels.csv:16"] == "valence label is missing or not a number"
    assert reasons["labels.csv:17"] == "arousal label 10 outside the 1..9 scale"
    a = manifest.set_index("song_id").loc["audio/a"]
    assert (a.valence, a.arousal) == (0.5, 0.25)  # (7-5)/4, (6-5)/4
    assert (a.sample_rate, a.channels) == (44100, 2) and a.duration == pytest.approx(2.0, abs=0.1)
    assert set(manifest["split"]) == {"train", "validation", "test"}
    # written files round-trip
    again = read_manifest(tmp_path / "out" / "manifest.csv")
    pd.testing.assert_frame_equal(again, manifest, check_dtype=False)
    on_disk = json.loads((tmp_path / "out" / "data_report.json").read_text())
    assert on_disk["skipped_by_reason"]["missing file"] == 1 and on_disk["rows_skipped"] == 6


def test_strict_stops_at_first_bad_row(csv_dataset):
    args = DataArguments(data=str(csv_dataset), label_scale="1-9", strict=True)
    with pytest.raises(ManifestError, match=r"^labels.csv:12: missing file$"):
        prepare_manifest(args, progress=False)


def test_csv_needs_an_explicit_scale_and_its_columns(csv_dataset):
    with pytest.raises(ManifestError, match="--label_scale"):
        prepare_manifest(DataArguments(data=str(csv_dataset)), progress=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['mood'\]"):
        prepare_manifest(DataArguments(data=str(csv_dataset), label_scale="1-9", valence_column="mood"), progress=False)


def test_split_column_and_unit_scale(tmp_path):
    for i in range(4):
        write_audio(tmp_path / f"{i}.wav", seconds=0.5, seed=i)
    text = "file,v,a,split\n0.wav,0.1,-0.2,train\n1.wav,0.3,0.2,val\n2.wav,-0.5,0.9,test\n3.wav,0,0,holdout\n"
    (tmp_path / "l.csv").write_text(text)
    args = DataArguments(data=str(tmp_path / "l.csv"), label_scale="-1-1", path_column="file", valence_column="v",
                         arousal_column="a")
    manifest, report = prepare_manifest(args, progress=False)
    assert manifest["split"].tolist() == ["train", "validation", "test"]
    assert manifest["valence"].tolist() == [0.1, 0.3, -0.5]
    assert report["skipped"][0]["reason"] == "split value is not train/validation/test"


def test_a_manifest_is_accepted_as_data(csv_dataset, tmp_path):
    args = DataArguments(data=str(csv_dataset), label_scale="1-9")
    manifest, _ = prepare_manifest(args, tmp_path / "m", progress=False)
    again, report = prepare_manifest(DataArguments(data=str(tmp_path / "m" / "manifest.csv")), progress=False)
    assert again["song_id"].tolist() == manifest["song_id"].tolist()
