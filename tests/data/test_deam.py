import json
from pathlib import Path

import numpy as np
import pytest

from sentio.data.deam import DeamLayoutError, DeamReader, deam_subset, resolve_swapped_subsets
from sentio.data.splits import read_split_files
from tests.data.helpers import HEADER1, SONG_LEVEL, write_deam_csvs

@pytest.mark.parametrize("layout", ["kaggle", "archive"])
def test_reader_handles_both_layouts_and_header_quirks(tmp_path, layout):
    if layout == "kaggle":
        write_deam_csvs(tmp_path / SONG_LEVEL)
        audio = tmp_path / "DEAM_audio" / "MEMD_audio"
    else:
        write_deam_csvs(tmp_path / "annotations" / "annotations averaged per song" / "song_level")
        audio = tmp_path / "MEMD_audio"
    audio.mkdir(parents=True)
    table = DeamReader(tmp_path).read_static()
    assert table["song_id"].tolist() == ["2", "1005", "2001"]
    assert table["valence"].tolist() == [3.1, 5.0, 3.2]
    assert table["arousal"].tolist() == [3.0, 6.5, 6.6]
    assert table["subset"].tolist() == ["2013", "2014", "2015"]
    assert table["path"].tolist()[0] == str(audio / "2.mp3")
    assert table["source"].tolist()[0] == "static_annotations_averaged_songs_1_2000.csv:2"


def test_reader_errors_name_what_is_missing(tmp_path):
    with pytest.raises(DeamLayoutError, match="no DEAM static annotation file"):
        DeamReader(tmp_path)
    write_deam_csvs(tmp_path / SONG_LEVEL)
    with pytest.raises(DeamLayoutError, match="MEMD_audio"):
        DeamReader(tmp_path)


def test_subsets_by_id():
    assert [deam_subset(i) for i in (1, 1000, 1001, 2000, 2001, 2058)] == ["2013", "2013", "2014", "2014", "2015", "2015"]


def test_reader_on_real_deam_csvs(tmp_path, shared_data):
    song_level = tmp_path / SONG_LEVEL
    song_level.mkdir(parents=True)
    for csv in (shared_data / "deam").glob("static_*.csv"):
        (song_level / csv.name).symlink_to(csv)
    (tmp_path / "DEAM_audio" / "MEMD_audio").mkdir(parents=True)
    table = DeamReader(tmp_path).read_static()
    assert len(table) == 1802 and table["song_id"].is_unique
    assert table[["valence", "arousal"]].notna().all().all()
    assert table["valence"].between(1, 9).all() and table["arousal"].between(1, 9).all()
    assert table["subset"].value_counts().to_dict() == {"2014": 1000, "2013": 744, "2015": 58}
    split = read_split_files(shared_data / "deam")
    assert sum(v == "train" for v in split.values()) == 1261
    assert set(split) == set(table["song_id"])


DYNAMIC = "DEAM_Annotations/annotations/annotations averaged per song/dynamic (per second annotations)"


def write_deam_with_dynamic(root: Path, swapped_subset: str = "2013", songs_per_subset: int = 12) -> dict:
    """A DEAM folder whose dynamic annotations contradict the static columns of one subset."""
    rng = np.random.default_rng(0)
    ids = {"2013": range(1, 1 + songs_per_subset), "2014": range(1001, 1001 + songs_per_subset)}
    static, dyn = [], {"valence": [], "arousal": []}
    for subset, songs in ids.items():
        for sid in songs:
            v, a = rng.uniform(2, 8, 2).round(1)
            static.append(f"{sid},{v:g},1,{a:g},2")
            dv, da = (a, v) if subset == swapped_subset else (v, a)
            for dim, value in (("valence", dv), ("arousal", da)):
                trace = (value - 5) / 4 + 0.05 * rng.standard_normal(4)
                cells = [f"{x:.4f}" for x in trace] + [""] * (sid % 2)  # NaN padding as in the real files
                dyn[dim].append(",".join([str(sid), *cells]))
    song_level = root / SONG_LEVEL
    song_level.mkdir(parents=True)
    (song_level / "static_annotations_averaged_songs_1_2000.csv").write_bytes(
        ("\r\n".join([HEADER1, *static]) + "\r\n").encode())
    (root / DYNAMIC).mkdir(parents=True)
    header = "song_id, " + ", ".join(f"sample_{15000 + 500 * i}ms" for i in range(5))
    for dim, rows in dyn.items():
        (root / DYNAMIC / f"{dim}.csv").write_text("\n".join([header, *rows]) + "\n")
    (root / "DEAM_audio" / "MEMD_audio").mkdir(parents=True)
    return {"ids": ids}


def test_dynamic_annotations_reveal_a_swapped_subset(tmp_path):
    write_deam_with_dynamic(tmp_path, swapped_subset="2013")
    reader = DeamReader(tmp_path)
    static = reader.read_static()
    table, check = resolve_swapped_subsets(reader, static, "auto")
    assert check["swapped_subsets"] == ["2013"]
    stats = check["by_subset"]
    assert stats["2013"]["swapped"] and not stats["2014"]["swapped"]
    assert stats["2013"]["static_valence_vs_dynamic_arousal"] > 0.9 > stats["2013"]["static_valence_vs_dynamic_valence"]
    old, new = static.set_index("song_id"), table.set_index("song_id")
    assert new.loc["1", "valence"] == old.loc["1", "arousal"] and new.loc["1", "arousal"] == old.loc["1", "valence"]
    assert new.loc["1", "valence_std"] == old.loc["1", "arousal_std"] and new.loc["1", "arousal_std"] == old.loc["1", "valence_std"]
    assert new.loc["1001", ["valence", "arousal"]].tolist() == old.loc["1001", ["valence", "arousal"]].tolist()

    same, check = resolve_swapped_subsets(reader, static, "none")
    assert check["swapped_subsets"] == [] and same.equals(static)
    forced, check = resolve_swapped_subsets(reader, static, "2014")
    assert forced.set_index("song_id").loc["1001", "valence"] == old.loc["1001", "arousal"]
    with pytest.raises(ValueError, match="no subset 2099"):
        resolve_swapped_subsets(reader, static, "2099")


def test_without_dynamic_files_auto_changes_nothing_and_says_so(tmp_path, caplog):
    write_deam_csvs(tmp_path / SONG_LEVEL)
    (tmp_path / "DEAM_audio" / "MEMD_audio").mkdir(parents=True)
    reader = DeamReader(tmp_path)
    static = reader.read_static()
    with caplog.at_level("WARNING", logger="sentio.data.deam"):
        table, check = resolve_swapped_subsets(reader, static, "auto")
    assert table.equals(static) and check["swapped_subsets"] == [] and "not checked" in check["check"]
    assert any("swap check of each subset was skipped" in r.getMessage() for r in caplog.records)  # on the console too


def test_real_deam_2013_static_columns_contradict_the_real_dynamic_annotations(tmp_path, shared_data):
    """DEAM's static file vs the per-second EmoMusic annotations of the same 744 songs."""
    song_level = tmp_path / SONG_LEVEL
    song_level.mkdir(parents=True)
    (song_level / "static_annotations_averaged_songs_1_2000.csv").symlink_to(
        shared_data / "deam" / "static_annotations_averaged_songs_1_2000.csv")
    (tmp_path / DYNAMIC).mkdir(parents=True)
    for dim in ("valence", "arousal"):
        (tmp_path / DYNAMIC / f"{dim}.csv").symlink_to(shared_data / "emomusic" / f"{dim}_cont_average.csv")
    (tmp_path / "DEAM_audio" / "MEMD_audio").mkdir(parents=True)
    reader = DeamReader(tmp_path)
    _, check = resolve_swapped_subsets(reader, reader.read_static(), "auto")
    assert check["swapped_subsets"] == ["2013"]
    stats = check["by_subset"]["2013"]
    assert stats["songs"] == 744 and stats["static_valence_vs_dynamic_arousal"] > 0.9
    assert stats["static_valence_vs_dynamic_valence"] < 0.7
    assert not check["by_subset"]["2014"]["checked"]  # no dynamic rows for these ids here


def test_prepare_writes_the_label_check_into_the_report(tmp_path):
    from sentio.args import DataArguments
    from sentio.data.sources import prepare_manifest
    from tests.conftest import write_audio

    ids = write_deam_with_dynamic(tmp_path / "deam")["ids"]
    for sid in [*ids["2013"], *ids["2014"]]:
        write_audio(tmp_path / "deam" / "DEAM_audio" / "MEMD_audio" / f"{sid}.mp3", seconds=0.5, sr=16000, seed=sid)
    manifest, report = prepare_manifest(DataArguments(data=str(tmp_path / "deam")), tmp_path / "out", progress=False)
    written = json.loads((tmp_path / "out" / "data_report.json").read_text())
    assert written["deam_label_check"]["swapped_subsets"] == ["2013"] == report.checks["deam_label_check"]["swapped_subsets"]
    static = DeamReader(tmp_path / "deam").read_static().set_index("song_id")
    row = manifest.set_index("song_id").loc["1"]
    assert row["valence"] == pytest.approx((static.loc["1", "arousal"] - 5) / 4)
    assert (row["valence_std"], row["arousal_std"]) == (0.5, 0.25)  # swapped with the means, then std / 4
    # the clips last 0.5 s, the dynamic labels start at 15 s: every frame is outside the audio
    assert written["dynamic"]["frames_kept"] == 0 and manifest["curve"].eq("").all()
    assert set(written["dynamic"]["frames_skipped_by_reason"]) == {"time outside the audio"}


def test_static_file_without_a_spread_column_is_one_line(tmp_path):
    song_level = tmp_path / SONG_LEVEL
    song_level.mkdir(parents=True)
    (song_level / "static_annotations_averaged_songs_1_2000.csv").write_text("song_id,valence_mean,arousal_mean\n2,3,4\n")
    (tmp_path / "DEAM_audio" / "MEMD_audio").mkdir(parents=True)
    with pytest.raises(DeamLayoutError, match=r"missing column\(s\) \['valence_std', 'arousal_std'\]; a DEAM static file "
                                              r"starts with the header song_id, valence_mean, valence_std"):
        DeamReader(tmp_path).read_static()
