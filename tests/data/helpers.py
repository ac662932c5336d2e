"""Dataset folders written by the data tests and the script tests: DEAM's and EmoMusic's real
layouts with distinct labels and short audio."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_audio

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


def write_emomusic(root: Path, songs: list[tuple[int, str, str]], seconds: float = 1.0) -> Path:
    """An EmoMusic folder of (song id, artist, MediaEval 2013 set) with audio and distinct labels."""
    ann = root / "annotations"
    ann.mkdir(parents=True)
    rows = ["song_id,mean_arousal,std_arousal,mean_valence,std_valence"]
    rows += [f"{sid},{2 + (i * 5) % 7:.1f},1,{3 + (i * 3) % 5:.1f},1" for i, (sid, _, _) in enumerate(songs)]
    (ann / "static_annotations.csv").write_text("\n".join(rows) + "\n")
    info = ['"song_id","file_name","Artist","Song title","Mediaeval 2013 set"']
    info += [f'{sid},"\t{sid}.mp3","{artist}\t","\tT\t","{subset}"' for sid, artist, subset in songs]
    (root / "songs_info.csv").write_text("\n".join(info) + "\n")
    for sid, _, _ in songs:
        write_audio(root / "clips_45seconds" / f"{sid}.mp3", seconds=seconds, sr=16000, seed=sid)
    return root


def write_deam(root: Path, ids: list[int], seconds: float = 1.0) -> Path:
    folder = root / SONG_LEVEL
    folder.mkdir(parents=True)
    small = [f"{i},{3 + i % 5},1,{4 + i % 3},1" for i in ids if i <= 2000]
    full = [f"{i},{3 + i % 5},1,5,1,2,1,{4 + i % 3},1,8,1,3,1" for i in ids if i > 2000]
    (folder / "static_annotations_averaged_songs_1_2000.csv").write_bytes(("\r\n".join([HEADER1, *small]) + "\r\n").encode())
    (folder / "static_annotations_averaged_songs_2000_2058.csv").write_bytes(("\r\n".join([HEADER2, *full]) + "\r\n").encode())
    for i in ids:
        write_audio(root / "DEAM_audio" / "MEMD_audio" / f"{i}.mp3", seconds=seconds, sr=16000, seed=i)
    return root
