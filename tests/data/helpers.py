"""Dataset folders written by the data tests and the script tests: DEAM's, EmoMusic's and PMEmo's
real layouts with distinct labels and short audio."""

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


def write_pmemo(root: Path, seconds: float = 3.0) -> Path:
    """A PMEmo2019 folder in the release's formats: songs 1 and 4 labelled, 7 a short chorus without
    labels, 9 labelled without its audio. The dynamic file starts at frameTime 0.5 here (the release's
    at 15.5) so the clips stay short; song 1's last frameTime lies past its audio's end."""
    ann = root / "annotations"
    ann.mkdir(parents=True)
    (root / "metadata.csv").write_text(
        "musicId,fileName,title,artist,album,duration,chorus_start_time,chorus_end_time\n"
        '1,1.mp3,A,Artist One,"Album, Vol. 2",3.0,02:35,02:38\n4,4.mp3,B,Artist Two,X,3.0,01:00,01:03\n'
        "7,7.mp3,C,Artist Three,Y,3.0,00:10,00:13\n9,9.mp3,D,Artist Four,Z,3.0,00:10,00:13\n")
    (ann / "static_annotations.csv").write_text("musicId,Arousal(mean),Valence(mean)\n1,0.4,0.575\n4,0.25,1\n9,0.5,0.5\n")
    (ann / "static_annotations_std.csv").write_text("musicId,Arousal(std),Valence(std)\n1,0.15,0.2\n4,0.1,0.05\n9,0.1,0.1\n")
    rows = ["musicId,frameTime,Arousal(mean),Valence(mean)"]
    rows += [f"1,{t:.1f},0.25,0.75" for t in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5)]
    rows += ["4,0.5,0.5,0.5", "4,1.0,x,0.5"]
    (ann / "dynamic_annotations.csv").write_text("\n".join(rows) + "\n")
    for sid in (1, 4, 7):
        write_audio(root / "chorus" / f"{sid}.mp3", seconds=seconds, sr=16000, seed=sid)
    return root
