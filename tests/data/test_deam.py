from pathlib import Path

import pytest

from sentio.data.deam import DeamLayoutError, DeamReader, deam_subset
from sentio.data.splits import read_split_files

SONG_LEVEL = "DEAM_Annotations/annotations/annotations averaged per song/song_level"
HEADER1 = "song_id, valence_mean, valence_std, arousal_mean, arousal_std"
HEADER2 = ("song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, valence_min_mean, valence_min_std, "
           "arousal_mean, arousal_std, arousal_max_mean, arousal_max_std, arousal_min_mean, arousal_min_std")


def write_deam_csvs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows1 = ["2,3.1,0.94,3,0.63", "1005,5,1.2,6.5,1.1"]
    rows2 = ["2001,3.2,0.98,5.0,1.41,2.2,0.98,6.6,0.8,8.6,0.49,3.4,1.02"]
    (folder / "static_annotations_averaged_songs_1_2000.csv").write_bytes(("\r\n".join([HEADER1, *rows1]) + "\r\n").encode())
    (folder / "static_annotations_averaged_songs_2000_2058.csv").write_bytes(("\r\n".join([HEADER2, *rows2]) + "\r\n").encode())


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
