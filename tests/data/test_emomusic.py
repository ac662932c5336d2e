"""EmoMusic: detection, arousal-first static file, spreads, MediaEval subsets and dynamic curves."""

import json
from pathlib import Path

import pytest

from sentio.args import DataArguments
from sentio.data.deam import DeamLayoutError
from sentio.data.emomusic import EmoMusicReader, is_emomusic
from sentio.data.sources import prepare_manifest
from sentio.errors import MissingFileError
from tests.conftest import write_audio


def write_emomusic(root: Path) -> Path:
    """A three-song EmoMusic folder in the real files' formats (song 4 has no audio)."""
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "static_annotations.csv").write_text(
        "song_id,mean_arousal,std_arousal,mean_valence,std_valence\n2,3.1,0.99443,3,0.66667\n3,7,2,5,1\n4,5,1,5,1\n")
    (root / "songs_info.csv").write_text(
        '"song_id","file_name","Artist","Mediaeval 2013 set"\n'
        '2,"\t2.mp3","A\t","development"\n3,"\t3.mp3","B\t","\tevaluation\t"\n')
    header = "song_id," + ",".join(f"sample_{ms}ms" for ms in (500, 1000, 1500))
    (root / "annotations" / "valence_cont_average.csv").write_text(f"{header}\n2,0.1,0.2,0.3\n3,-0.1,-0.2,-0.3\n")
    (root / "annotations" / "arousal_cont_average.csv").write_text(f"{header}\n2,0.4,0.5,0.6\n3,0.7,x,0.9\n")
    for sid in (2, 3):
        write_audio(root / "clips_45seconds" / f"{sid}.mp3", seconds=2.0, sr=16000, seed=sid)
    return root


def test_prepare_reads_an_emomusic_folder(tmp_path):
    root = write_emomusic(tmp_path / "emo")
    assert is_emomusic(root)
    manifest, report = prepare_manifest(DataArguments(data=str(root)), tmp_path / "run", progress=False)
    rows = manifest.set_index("song_id")
    assert rows.index.tolist() == ["2", "3"] and report.source == f"EmoMusic folder {root}"
    assert (rows.loc["2", "valence"], rows.loc["2", "arousal"]) == ((3 - 5) / 4, (3.1 - 5) / 4)
    assert rows.loc["2", ["valence_std", "arousal_std"]].tolist() == pytest.approx([0.66667 / 4, 0.99443 / 4])
    assert rows["subset"].tolist() == ["development", "evaluation"]
    assert rows["path"].tolist() == [str((root / "clips_45seconds" / f"{s}.mp3").resolve()) for s in (2, 3)]
    assert [r["reason"] for r in report.skipped] == ["missing file"]
    assert rows["curve_frames"].tolist() == [3, 2]
    written = json.loads((tmp_path / "run" / "data_report.json").read_text())["dynamic"]
    assert written["frames_skipped_by_reason"] == {"not a number": 1}
    assert written["examples"][0]["where"] == "arousal_cont_average.csv:3 column sample_1000ms"


def test_emomusic_layout_errors(tmp_path):
    root = write_emomusic(tmp_path / "emo")
    for clip in (root / "clips_45seconds").iterdir():
        clip.unlink()
    (root / "clips_45seconds").rmdir()
    with pytest.raises(MissingFileError, match=r"no clips_45seconds/ audio folder found"):
        EmoMusicReader(root)
    (root / "annotations" / "static_annotations.csv").write_text("song_id,valence,arousal\n2,3,4\n")
    assert not is_emomusic(root)
    with pytest.raises(DeamLayoutError, match=r"or an EmoMusic folder with static_annotations.csv"):
        prepare_manifest(DataArguments(data=str(root)), progress=False)


def test_real_emomusic_static_files(tmp_path, shared_data):
    for name in ("static_annotations.csv", "songs_info.csv", "valence_cont_average.csv", "arousal_cont_average.csv"):
        (tmp_path / name).symlink_to(shared_data / "emomusic" / name)
    (tmp_path / "clips_45seconds").mkdir()
    assert is_emomusic(tmp_path)
    reader = EmoMusicReader(tmp_path)
    table = reader.read_static().set_index("song_id")
    assert len(table) == 744 and table.index.is_unique
    # the file lists arousal first: song 2 is mean_arousal 3.1, mean_valence 3
    assert table.loc["2", ["valence", "arousal", "valence_std", "arousal_std"]].tolist() == [3.0, 3.1, 0.66667, 0.99443]
    assert table["subset"].value_counts().to_dict() == {"development": 619, "evaluation": 125}
    curves, report = reader.dynamic.curves()
    assert len(curves) == 744 and report.frames_kept == 744 * 61
