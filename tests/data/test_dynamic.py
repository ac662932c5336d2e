"""Dynamic (2 Hz) labels: the time convention, the three readers, their skip report, and curves.csv."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentio.args import DataArguments
from sentio.data.deam import DeamReader
from sentio.data.dynamic import (
    FRAME_SECONDS,
    Curve,
    frame_labels,
    frames_in_window,
    read_long_dynamic,
    read_wide_dynamic,
)
from sentio.data.manifest import read_curves
from sentio.data.sources import prepare_manifest
from sentio.errors import DataError, MissingFileError
from tests.conftest import write_audio

SONG_LEVEL = Path("DEAM_Annotations/annotations/annotations averaged per song/song_level")
DYNAMIC = Path("DEAM_Annotations/annotations/annotations averaged per song/dynamic (per second annotations)")
STATIC_HEADER = "song_id, valence_mean, valence_std, arousal_mean, arousal_std"


def step_curve(step_at: float, end: float = 10.0) -> Curve:
    """-0.5 for the audio before `step_at` seconds, +0.5 after (valence and arousal alike)."""
    times = np.arange(FRAME_SECONDS, end + 1e-9, FRAME_SECONDS)
    value = np.where(times <= step_at, -0.5, 0.5).astype(np.float32)
    return Curve(times, np.stack([value, value], axis=1))


@pytest.mark.parametrize("start", [0.0, 0.5, 2.5, 3.0, 3.5])
def test_frame_labels_put_the_step_at_the_right_frame(start):
    labels = frame_labels(step_curve(step_at=4.0), start, 12)
    assert labels.shape == (12, 2) and labels.dtype == np.float32
    step = int((4.0 - start) / FRAME_SECONDS)  # frame [start + 0.5 j, start + 0.5 (j + 1)) that begins at 4.0 s
    assert (labels[:step] == -0.5).all() and (labels[step:] == 0.5).all()


def test_frame_labels_nan_where_unlabelled_and_aligned_windows_only():
    labels = frame_labels(step_curve(step_at=4.0, end=10.0), 8.0, 6)
    assert labels[:4, 0].tolist() == [0.5] * 4 and np.isnan(labels[4:]).all()  # labels end at 10 s
    assert np.isnan(frame_labels(None, 0.0, 3)).all()
    with pytest.raises(ValueError, match="window start 1.25 s is not on the 0.5 s grid"):
        frame_labels(step_curve(4.0), 1.25, 4)


def test_frames_in_window():
    assert [frames_in_window(s) for s in (10.0, 10.24, 1.5, 0.49, 3 * 0.1 * 5)] == [20, 20, 3, 0, 3]


def write_wide(folder: Path, valence_rows: list[str], arousal_rows: list[str], first_ms: int = 1000,
               frames: int = 4) -> tuple[Path, Path]:
    """DEAM-format dynamic files: spaced header, time in every column name."""
    folder.mkdir(parents=True, exist_ok=True)
    header = "song_id, " + ", ".join(f"sample_{first_ms + 500 * i}ms" for i in range(frames))
    for name, rows in (("valence.csv", valence_rows), ("arousal.csv", arousal_rows)):
        (folder / name).write_text("\n".join([header, *rows]) + "\n")
    return folder / "valence.csv", folder / "arousal.csv"


def test_wide_files_read_times_from_column_names_and_drop_padding(tmp_path):
    v, a = write_wide(tmp_path, ["1,0.1,0.2,0.3,0.4", "2,-0.1,-0.2,,", "3,0.5,NaN,NaN,NaN"],
                      ["1,0.5,0.6,0.7,0.8", "2,-0.5,-0.6,,", "3,0.9,NaN,NaN,NaN"])
    curves, report = read_wide_dynamic(v, a).curves()
    assert sorted(curves) == ["1", "2", "3"]
    assert curves["1"].times.tolist() == [1.0, 1.5, 2.0, 2.5] and curves["1"].times.dtype == np.float64
    assert curves["1"].values.dtype == np.float32
    np.testing.assert_array_equal(curves["1"].values, np.float32([[0.1, 0.5], [0.2, 0.6], [0.3, 0.7], [0.4, 0.8]]))
    assert len(curves["2"]) == 2 and len(curves["3"]) == 1
    assert report.frames_kept == 7 and report.frames_skipped_by_reason == {}


def test_wide_files_skip_each_bad_value_with_its_reason(tmp_path):
    v, a = write_wide(tmp_path, ["1,0.1,abc,0.3,1.5", "2,0.1,0.2,0.3,0.4", "2,0.9,0.9,0.9,0.9", "4,0.1,0.1,,"],
                      ["1,0.1,0.2,0.3,0.4", "2,0.1,0.2,0.3,0.4", "2,0.9,0.9,0.9,0.9"])
    curves, report = read_wide_dynamic(v, a).curves()
    assert curves["1"].times.tolist() == [1.0, 2.0] and "4" not in curves
    np.testing.assert_array_equal(curves["2"].values[:, 0], np.float32([0.1, 0.2, 0.3, 0.4]))  # the first row wins
    assert report.frames_skipped_by_reason == {"not a number": 1, "outside the -1..1 scale": 1,
                                               "duplicate song row": 8, "no arousal value": 2}
    examples = {e["reason"]: e for e in reversed(report.examples)}  # the first of each reason
    assert examples["not a number"] == {"where": "valence.csv:2 column sample_1500ms", "song_id": "1", "time": 1.5,
                                        "reason": "not a number", "detail": "abc"}
    assert examples["duplicate song row"]["where"] == "valence.csv:4 column sample_1000ms"
    assert examples["no arousal value"]["where"] == "valence.csv:5 column sample_1000ms"
    with pytest.raises(DataError, match=r"^valence.csv:2 column sample_1500ms: not a number \(abc\); fix or remove the value$"):
        read_wide_dynamic(v, a).curves(strict=True)


def test_off_grid_and_duplicate_time_columns(tmp_path):
    (tmp_path / "valence.csv").write_text("song_id,sample_1000ms,sample_1250ms,sample_1000ms\n1,0.1,0.2,0.3\n")
    (tmp_path / "arousal.csv").write_text("song_id,sample_1000ms,sample_1250ms,sample_1000ms\n1,0.1,0.2,0.3\n")
    with pytest.raises(DataError, match=r"column 'sample_1000ms.1' is not song_id or sample_<ms>ms"):
        read_wide_dynamic(tmp_path / "valence.csv", tmp_path / "arousal.csv")
    (tmp_path / "valence.csv").write_text("song_id,sample_1000ms,sample_1250ms,sample_1000.0ms\n1,0.1,0.2,0.3\n")
    (tmp_path / "arousal.csv").write_text("song_id,sample_1000ms,sample_1250ms,sample_1000.0ms\n1,0.1,0.2,0.3\n")
    curves, report = read_wide_dynamic(tmp_path / "valence.csv", tmp_path / "arousal.csv").curves()
    assert curves["1"].times.tolist() == [1.0]
    assert report.frames_skipped_by_reason == {"time off the 0.5 s grid": 1, "duplicate time": 2}
    with pytest.raises(DataError, match=r"^valence.csv:2 column sample_1250ms: time off the 0.5 s grid \(1.25 s\)"):
        read_wide_dynamic(tmp_path / "valence.csv", tmp_path / "arousal.csv").curves(strict=True)


def test_times_beyond_the_audio_are_skipped_against_the_manifest(tmp_path):
    v, a = write_wide(tmp_path, ["1,0.1,0.2,0.3,0.4", "9,0.1,0.2,0.3,0.4"], ["1,0.1,0.2,0.3,0.4", "9,0.1,0.2,0.3,0.4"])
    songs = pd.DataFrame({"song_id": ["1"], "path": ["/x/1.mp3"], "duration": [1.9]})
    curves, report = read_wide_dynamic(v, a).curves(songs)
    # 2.5 s describes [2.0, 2.5): after the 1.9 s of audio; 2.0 s describes [1.5, 2.0): kept
    assert list(curves) == ["1"] and curves["1"].times.tolist() == [1.0, 1.5, 2.0]
    assert report.frames_skipped_by_reason == {"time outside the audio": 1} and report.songs_not_in_manifest == 1
    with pytest.raises(DataError, match=r"^valence.csv:2 column sample_2500ms: time outside the audio "
                                        r"\(2.5 s; the audio lasts 1.9 s\); fix or remove the value$"):
        read_wide_dynamic(v, a).curves(songs, strict=True)


def test_long_csv_matches_paths_to_songs_and_checks_every_row(tmp_path):
    rows = ["path,time,valence,arousal", "audio/a.wav,0.5,9,1", "audio/a.wav,1.0,5,5", "audio/a.wav,1.0,6,6",
            "audio/a.wav,x,5,5", "audio/a.wav,1.5,5,", "./audio/b.wav,0.5,1,9", "audio/gone.wav,0.5,5,5"]
    (tmp_path / "dyn").mkdir()
    (tmp_path / "dyn" / "curves_in.csv").write_text("\n".join(rows).replace("audio/", "../audio/") + "\n")
    songs = pd.DataFrame({"song_id": ["a", "b"], "path": [str(tmp_path / "audio" / f"{s}.wav") for s in "ab"],
                          "duration": [5.0, 5.0]})
    curves, report = read_long_dynamic(tmp_path / "dyn" / "curves_in.csv", "1-9").curves(songs)
    assert curves["a"].times.tolist() == [0.5, 1.0] and curves["a"].values.tolist() == [[1.0, -1.0], [0.0, 0.0]]
    assert curves["b"].values.tolist() == [[-1.0, 1.0]]
    assert report.frames_skipped_by_reason == {"duplicate time": 1, "time is not a number": 1, "not a number": 1}
    assert report.songs_not_in_manifest == 1
    assert {e["where"] for e in report.examples} == {"curves_in.csv:4", "curves_in.csv:5 column time",
                                                     "curves_in.csv:6 column arousal"}


def test_long_csv_needs_its_columns(tmp_path):
    (tmp_path / "d.csv").write_text("song,time,valence\n1,0.5,0.1\n")
    with pytest.raises(DataError, match=r"d.csv: missing column\(s\) \['arousal', 'song_id or path'\]"):
        read_long_dynamic(tmp_path / "d.csv")


def deam_with_dynamic(root: Path, seconds: float = 2.3) -> Path:
    """A three-song DEAM folder with dynamic files in the demo's layout (first column at 1000 ms)."""
    (root / SONG_LEVEL).mkdir(parents=True)
    (root / SONG_LEVEL / "static_annotations_averaged_songs_1_2000.csv").write_bytes(
        f"{STATIC_HEADER}\r\n2,3,0.94,7,0.63\r\n5,5,1.2,6.5,1.1\r\n1005,6,2,4,0.4\r\n".encode())
    write_wide(root / DYNAMIC, ["2,0.1,0.2,0.3,0.4,0.5", "5,0.3,0.3,,,", "7,0.1,0.1,0.1,0.1,0.1"],
               ["2,-0.1,-0.2,-0.3,-0.4,-0.5", "5,0.4,0.4,,,", "7,0.1,0.1,0.1,0.1,0.1"], frames=5)
    for sid in (2, 5, 1005):
        write_audio(root / "DEAM_audio" / "MEMD_audio" / f"{sid}.mp3", seconds=seconds, sr=16000, seed=sid)
    return root


def test_prepare_writes_curves_beside_the_manifest(tmp_path):
    root = deam_with_dynamic(tmp_path / "deam")
    manifest, report = prepare_manifest(DataArguments(data=str(root), deam_swapped_subsets="none"), tmp_path / "run",
                                        progress=False)
    rows = manifest.set_index("song_id")
    assert rows["curve"].tolist() == ["curves.csv", "curves.csv", ""]
    assert rows["curve_frames"].tolist() == [4, 2, 0]  # song 2: 3.0 s describes [2.5, 3.0), past the ~2.3 s of audio
    assert rows.loc["2", "valence_std"] == pytest.approx(0.94 / 4) and rows.loc["2", "arousal_std"] == pytest.approx(0.63 / 4)
    on_disk = pd.read_csv(tmp_path / "run" / "curves.csv", dtype={"song_id": str})
    assert list(on_disk.columns) == ["song_id", "time", "valence", "arousal"]
    assert on_disk["song_id"].tolist() == ["2"] * 4 + ["5"] * 2 and on_disk["time"].tolist()[:4] == [1.0, 1.5, 2.0, 2.5]
    dynamic = json.loads((tmp_path / "run" / "data_report.json").read_text())["dynamic"]
    assert dynamic["songs_with_curve"] == 2 and dynamic["frames_kept"] == 6
    assert dynamic["frames_skipped_by_reason"] == {"time outside the audio": 1} and dynamic["songs_not_in_manifest"] == 1
    assert dynamic["time_convention"] == "the value at time T describes the audio in [T - 0.5 s, T)"

    curves = read_curves(tmp_path / "run")
    assert sorted(curves) == ["2", "5"]
    np.testing.assert_array_equal(curves["2"].values, np.float32([[0.1, -0.1], [0.2, -0.2], [0.3, -0.3], [0.4, -0.4]]))
    # a manifest given as --data keeps its curves in the new run folder
    again, _ = prepare_manifest(DataArguments(data=str(tmp_path / "run" / "manifest.csv")), tmp_path / "run2", progress=False)
    assert again["curve_frames"].tolist() == manifest["curve_frames"].tolist()
    assert (tmp_path / "run2" / "curves.csv").read_text() == (tmp_path / "run" / "curves.csv").read_text()


def test_dynamic_labels_flag_attaches_a_long_csv_and_strict_stops(tmp_path):
    root = deam_with_dynamic(tmp_path / "deam")
    (tmp_path / "dyn.csv").write_text("song_id,time,valence,arousal\n5,0.5,0.25,0.75\n5,1.0,0.25,1.75\n")
    args = DataArguments(data=str(root), dynamic_labels=str(tmp_path / "dyn.csv"))
    manifest, report = prepare_manifest(args, tmp_path / "run", progress=False)
    assert manifest.set_index("song_id")["curve_frames"].to_dict() == {"2": 0, "5": 1, "1005": 0}
    assert report.dynamic.frames_skipped_by_reason == {"outside the -1..1 scale": 1}
    assert report.dynamic.files == [str(tmp_path / "dyn.csv")]
    with pytest.raises(DataError, match=r"^dyn.csv:3 column arousal: outside the -1..1 scale \(1.75\); "
                                        r"fix or remove the value$"):
        prepare_manifest(DataArguments(data=str(root), dynamic_labels=str(tmp_path / "dyn.csv"), strict=True), progress=False)


def test_a_manifest_without_curves_leaves_no_curves_file(tmp_path):
    root = deam_with_dynamic(tmp_path / "deam")
    prepare_manifest(DataArguments(data=str(root)), tmp_path / "run", progress=False)
    for name in ("valence.csv", "arousal.csv"):
        (root / DYNAMIC / name).unlink()
    manifest, report = prepare_manifest(DataArguments(data=str(root)), tmp_path / "run", progress=False)
    assert manifest["curve"].tolist() == ["", "", ""] and report.dynamic is None
    assert not (tmp_path / "run" / "curves.csv").exists() and read_curves(tmp_path / "run") == {}


def test_missing_arousal_file_beside_valence_is_one_line(tmp_path):
    root = deam_with_dynamic(tmp_path / "deam")
    (root / DYNAMIC / "arousal.csv").unlink()
    with pytest.raises(MissingFileError, match=r"valence.csv: no arousal.csv beside it; dynamic annotations need both "
                                               r"files in one folder \(add arousal.csv or remove valence.csv\)$"):
        DeamReader(root)


def test_curves_file_missing_or_broken_is_one_line(tmp_path):
    root = deam_with_dynamic(tmp_path / "deam")
    prepare_manifest(DataArguments(data=str(root)), tmp_path / "run", progress=False)
    text = (tmp_path / "run" / "curves.csv").read_text()
    (tmp_path / "run" / "curves.csv").write_text(text.replace("0.4", "4.0", 1))
    with pytest.raises(DataError, match=r"^curves.csv:5 column valence: outside the -1..1 scale \(4.0\)"):
        read_curves(tmp_path / "run" / "manifest.csv")
    (tmp_path / "run" / "curves.csv").unlink()
    with pytest.raises(MissingFileError, match="its curve column names curves.csv, which is not beside it"):
        read_curves(tmp_path / "run")


def test_real_emomusic_dynamic_annotations(shared_data):
    folder = shared_data / "emomusic"
    curves, report = read_wide_dynamic(folder / "valence_cont_average.csv", folder / "arousal_cont_average.csv").curves()
    assert len(curves) == 744 and report.frames_skipped_by_reason == {}
    expected = np.arange(15.0, 45.0 + 1e-9, 0.5)
    assert all(len(c) == 61 and np.array_equal(c.times, expected) for c in curves.values())
    assert all(np.abs(c.values).max() <= 1 for c in curves.values())
    assert curves["2"].values[0].tolist() == pytest.approx([-0.0733412307857912, -0.109387732373192], abs=1e-7)
    first = frame_labels(curves["2"], 14.5, 2)  # [14.5, 15.0) is labelled by the value at 15.0 s
    np.testing.assert_array_equal(first, curves["2"].values[:2])
