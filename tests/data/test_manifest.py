import ast
import json
from pathlib import Path

import pandas as pd
import pytest

from sentio.args import DataArguments
from sentio.data.csv_table import CsvFormatError
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
    assert len(manifest) == 10 and report.rows_kept == 10 and report.rows_total == 16
    reasons = {item["row"]: item["reason"] for item in report.skipped}
    assert reasons["labels.csv:12"] == "missing file"
    assert reasons["labels.csv:13"] == "empty file"
    assert reasons["labels.csv:14"] == "corrupt or not an audio file (cannot decode it)"
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
    with pytest.raises(ManifestError, match=r"^labels.csv:12: missing file; fix or remove the row$"):
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
    assert report.skipped[0]["reason"] == "split value is not train/validation/test"


def test_a_manifest_is_accepted_as_data(csv_dataset, tmp_path):
    args = DataArguments(data=str(csv_dataset), label_scale="1-9")
    manifest, _ = prepare_manifest(args, tmp_path / "m", progress=False)
    again, report = prepare_manifest(DataArguments(data=str(tmp_path / "m" / "manifest.csv")), progress=False)
    assert again["song_id"].tolist() == manifest["song_id"].tolist()


def test_csv_spread_columns_map_onto_the_unit_scale_and_bad_ones_are_skipped(tmp_path):
    for i in range(5):
        write_audio(tmp_path / f"{i}.wav", seconds=0.5, seed=i)
    text = "path,v,a,v_sd,a_sd\n0.wav,3,7,2,1\n1.wav,5,5,0,0.5\n2.wav,5,5,-1,1\n3.wav,5,5,n/a,1\n4.wav,5,5,1,\n"
    (tmp_path / "l.csv").write_text(text)
    args = DataArguments(data=str(tmp_path / "l.csv"), label_scale="1-9", valence_column="v", arousal_column="a",
                         valence_std_column="v_sd", arousal_std_column="a_sd")
    manifest, report = prepare_manifest(args, progress=False)
    rows = manifest.set_index("song_id")
    assert rows.loc["0", ["valence_std", "arousal_std"]].tolist() == [0.5, 0.25]  # std * 2 / 8
    assert rows.loc["1", ["valence_std", "arousal_std"]].tolist() == [0.0, 0.125]
    assert {item["row"]: item["reason"] for item in report.skipped} == {
        "l.csv:4": "valence_std -1 is negative", "l.csv:5": "valence_std is missing or not a number",
        "l.csv:6": "arousal_std is missing or not a number"}
    without, _ = prepare_manifest(DataArguments(data=str(tmp_path / "l.csv"), label_scale="1-9", valence_column="v",
                                                arousal_column="a"), progress=False)
    assert len(without) == 5 and without["valence_std"].isna().all()
    with pytest.raises(CsvFormatError, match=r"l.csv: missing column\(s\) \['sd'\].*--valence_std_column"):
        prepare_manifest(DataArguments(data=str(tmp_path / "l.csv"), label_scale="1-9", valence_column="v",
                                       arousal_column="a", valence_std_column="sd"), progress=False)


def test_manifest_paths_are_absolute_and_old_relative_ones_resolve(csv_dataset, tmp_path, monkeypatch):
    manifest, _ = prepare_manifest(DataArguments(data=str(csv_dataset), label_scale="1-9"), tmp_path / "m", progress=False)
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in manifest["path"])
    old = manifest[["song_id", "path", "valence", "arousal", "split", "subset", "duration", "sample_rate", "channels"]].copy()
    old["path"] = [str(Path(p).relative_to(csv_dataset.parent)) for p in old["path"]]  # e.g. audio/a.mp3
    old.to_csv(csv_dataset.parent / "old.csv", index=False)
    monkeypatch.chdir(tmp_path)
    again = read_manifest(csv_dataset.parent / "old.csv")  # beside the manifest
    assert again["path"].tolist() == manifest["path"].tolist()
    assert again["valence_std"].isna().all() and again["curve"].eq("").all() and again["curve_frames"].eq(0).all()
    old.to_csv(tmp_path / "m" / "older.csv", index=False)
    monkeypatch.chdir(csv_dataset.parent)  # an older run: paths relative to the working directory
    assert read_manifest(tmp_path / "m" / "older.csv")["path"].tolist() == manifest["path"].tolist()


def test_bad_manifests_are_one_line(csv_dataset, tmp_path):
    prepare_manifest(DataArguments(data=str(csv_dataset), label_scale="1-9"), tmp_path / "m", progress=False)
    path = tmp_path / "m" / "manifest.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.drop(columns=["duration"]).to_csv(tmp_path / "cols.csv", index=False)
    with pytest.raises(ManifestError, match=r"cols.csv: not a Sentio manifest \(missing \['duration'\]\); pass a manifest.csv"):
        read_manifest(tmp_path / "cols.csv")
    frame.loc[1, "valence"] = "1.7"
    frame.to_csv(tmp_path / "range.csv", index=False)
    with pytest.raises(ManifestError, match=rf"^{tmp_path / 'range.csv'}:3: valence 1.7 outside \[-1, 1\]; fix the row"):
        read_manifest(tmp_path / "range.csv")
    frame.loc[1, "valence"] = "high"
    frame.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(ManifestError, match=r"text.csv:3: valence 'high' is not a number"):
        read_manifest(tmp_path / "text.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00bad" * 20)
    with pytest.raises(CsvFormatError, match=r"binary.csv: not a readable CSV .*; save it as comma-separated UTF-8 text$"):
        prepare_manifest(DataArguments(data=str(tmp_path / "binary.csv"), label_scale="1-9"), progress=False)


def test_error_types_stay_catchable_as_before():
    from sentio.data.deam import DeamLayoutError
    from sentio.errors import DataError, MissingFileError, SentioError

    assert issubclass(ManifestError, DataError) and issubclass(ManifestError, ValueError)
    assert issubclass(CsvFormatError, DataError) and issubclass(CsvFormatError, ValueError)
    assert issubclass(DeamLayoutError, MissingFileError) and issubclass(DeamLayoutError, FileNotFoundError)
    assert all(issubclass(e, SentioError) for e in (ManifestError, CsvFormatError, DeamLayoutError))


def test_data_layer_imports_no_higher_layer():
    """data/ sits below args, training, evaluation and models: it must not import them."""
    banned = ("sentio.args", "sentio.training", "sentio.evaluation", "sentio.models", "..args", "..training",
              "..evaluation", "..models")
    for module in (Path(__file__).resolve().parents[2] / "src" / "sentio" / "data").glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = "." * node.level + (node.module or "")
                assert not name.startswith(banned), f"{module.name} imports {name}"
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith(banned) for a in node.names), f"{module.name} imports {node.names}"


def test_data_arguments_are_a_data_source_spec():
    from transformers import HfArgumentParser

    from sentio.data.sources import DataSourceSpec

    assert issubclass(DataArguments, DataSourceSpec)
    (args,) = HfArgumentParser(DataArguments).parse_args_into_dataclasses(
        ["--data", "x.csv", "--valence_std_column", "vs", "--dynamic_labels", "d.csv", "--dynamic_label_scale", "1-9",
         "--cache_dir", "c"])
    assert (args.valence_std_column, args.arousal_std_column, args.dynamic_labels, args.dynamic_label_scale,
            args.cache_dir, args.split_column) == ("vs", None, "d.csv", "1-9", "c", "split")
