"""PMEmo2019: detection, the [0, 1] scale, spreads, unlabelled choruses, and what a frameTime describes."""

import json

import numpy as np
import pandas as pd
import pytest

from sentio.args import DataArguments
from sentio.data.dynamic import frame_labels, frame_starts
from sentio.data.pmemo import UNLABELLED_REASON, PmemoReader, is_pmemo
from sentio.data.readers import open_reader
from sentio.data.sources import prepare_manifest
from sentio.errors import MissingFileError
from tests.data.helpers import write_pmemo


def test_prepare_reads_a_pmemo_folder(tmp_path):
    root = write_pmemo(tmp_path / "PMEmo2019")
    assert is_pmemo(root) and isinstance(open_reader(root), PmemoReader)
    manifest, report = prepare_manifest(DataArguments(data=str(root)), tmp_path / "run", progress=False)
    rows = manifest.set_index("song_id")
    assert rows.index.tolist() == ["1", "4"] and report.source == f"PMEmo folder {root}"
    assert report.dataset == "pmemo" and report.label_scale == "0-1"
    # [0, 1] -> [-1, 1] by 2x - 1; spreads x 2
    assert rows.loc["1", ["valence", "arousal"]].tolist() == pytest.approx([0.15, -0.2])
    assert rows.loc["4", ["valence", "arousal"]].tolist() == pytest.approx([1.0, -0.5])
    assert rows.loc["1", ["valence_std", "arousal_std"]].tolist() == pytest.approx([0.4, 0.3])
    skipped = {r["song_id"]: r["reason"] for r in report.skipped}
    assert skipped == {"7": UNLABELLED_REASON, "9": "missing file"}
    assert report.skipped_by_reason == {"no annotations in the release": 1, "missing file": 1}
    # 2 Hz curves: song 1 keeps 0.5 .. 3.0 (the value at T describes [T - 0.5, T)); 3.5 starts at the end
    assert rows.loc["1", "curve_frames"] == 6 and rows.loc["4", "curve_frames"] == 1
    dynamic = json.loads((tmp_path / "run" / "data_report.json").read_text())["dynamic"]
    assert dynamic["frames_skipped_by_reason"] == {"not a number": 1, "time outside the audio": 1}
    where = {e["reason"]: e["where"] for e in dynamic["examples"]}
    assert where["not a number"] == "dynamic_annotations.csv:10 column Arousal(mean)"
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    song1 = curves[curves["song_id"] == 1]
    assert song1["time"].tolist() == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert song1[["valence", "arousal"]].to_numpy().tolist() == [[0.5, -0.5]] * 6


def test_frame_time_describes_the_half_second_before_it(tmp_path):
    from sentio.data.manifest import read_curves

    root = write_pmemo(tmp_path / "PMEmo2019")
    prepare_manifest(DataArguments(data=str(root)), tmp_path / "run", progress=False)
    curve = read_curves(tmp_path / "run")["1"]
    # a window starting at 0 s: its first half-second [0, 0.5) takes the value at frameTime 0.5
    labels = frame_labels(curve, 0.0, 6)
    assert np.isfinite(labels).all() and labels[0].tolist() == [0.5, -0.5]
    assert frame_starts([15.5])[0] == 15.0  # the release's first value covers [15.0, 15.5)


def test_pmemo_layout_errors(tmp_path):
    root = write_pmemo(tmp_path / "PMEmo2019")
    for clip in (root / "chorus").iterdir():
        clip.unlink()
    (root / "chorus").rmdir()
    with pytest.raises(MissingFileError, match=r"no chorus/ audio folder found"):
        PmemoReader(root)


def test_real_pmemo_annotations(shared_data, tmp_path):
    """The real release files: 767 labelled songs of 794 choruses; every labelled half-second inside its chorus."""
    real = shared_data / "pmemo"
    root = tmp_path / "PMEmo2019"
    (root / "annotations").mkdir(parents=True)
    (root / "chorus").mkdir()
    for name in ("static_annotations.csv", "static_annotations_std.csv", "dynamic_annotations.csv",
                 "dynamic_annotations_std.csv"):
        (root / "annotations" / name).write_bytes((real / name).read_bytes())
    (root / "metadata.csv").write_bytes((real / "metadata.csv").read_bytes())
    reader = open_reader(root)
    table, _ = reader.read()
    assert len(table) == 794
    assert int((table["skip_reason"] == "").sum()) == 767
    assert int((table["skip_reason"] == UNLABELLED_REASON).sum()) == 27
    labelled = table[table["skip_reason"] == ""]
    assert labelled[["valence", "arousal", "valence_std", "arousal_std"]].notna().all().all()
    curves, report = reader.dynamic.curves()
    assert len(curves) == 767 and not report.frames_skipped_by_reason
    assert {c.times[0] for c in curves.values()} == {15.5}
    duration = pd.read_csv(real / "metadata.csv").set_index("musicId")["duration"]
    last_start = {int(s): frame_starts(c.times[-1:])[0] for s, c in curves.items()}
    assert all(start < duration[s] for s, start in last_start.items())
    # the alternative reading [T, T + 0.5) would put the last half-second past the end of most choruses
    assert sum(start + 1.0 > duration[s] for s, start in last_start.items()) > 700
