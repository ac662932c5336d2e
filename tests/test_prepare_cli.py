import json
import subprocess

import pytest

from tests.conftest import write_audio
from tests.helpers import run_python

pytestmark = pytest.mark.slow  # prepare.py as a child process


def run(*args: str) -> subprocess.CompletedProcess:
    return run_python(["prepare.py", *args], timeout=180)


def test_prepare_writes_manifest_report_and_features(tmp_path):
    for i in range(5):
        write_audio(tmp_path / "a" / f"{i}.flac", seconds=1.0, sr=22050, channels=2, seed=i)
    lines = ["path,valence,arousal"] + [f"a/{i}.flac,{1 + i},{9 - i}" for i in range(5)] + ["a/gone.flac,5,5"]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = run("--data", str(tmp_path / "labels.csv"), "--label_scale", "1-9", "--output_dir", str(out),
                 "--features", "ast", "--preprocessing_num_workers", "2", "--cache_dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rows kept 5, skipped 1" in result.stdout
    assert "features ast: 5 windows from 5 clips, 0 clips failed to decode" in result.stdout
    report = json.loads((out / "data_report.json").read_text())
    assert report["skipped"] == [{"row": "labels.csv:7", "song_id": "a/gone", "path": str(tmp_path / "a" / "gone.flac"),
                                  "reason": "missing file"}]
    assert list((tmp_path / "cache").glob("fbank-*/done.json"))

    strict = run("--data", str(tmp_path / "labels.csv"), "--label_scale", "1-9", "--output_dir", str(out), "--strict")
    assert strict.returncode == 2
    assert strict.stderr.strip().splitlines()[-1] == "prepare.py: error: labels.csv:7: missing file; fix or remove the row"
    assert "Traceback" not in strict.stderr


def test_prepare_bad_input_is_one_line(tmp_path):
    result = run("--data", str(tmp_path), "--output_dir", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"prepare.py: error: {tmp_path}: no DEAM static annotation file")


def test_prepare_with_spreads_and_dynamic_labels(tmp_path):
    for i in range(3):
        write_audio(tmp_path / "a" / f"{i}.wav", seconds=2.0, sr=16000, seed=i)
    rows = [f"a/{i}.wav,0.{i + 1},-0.{i + 1},0.1,0.2" for i in range(3)]
    (tmp_path / "labels.csv").write_text("\n".join(["path,valence,arousal,vsd,asd", *rows]) + "\n")
    (tmp_path / "dyn.csv").write_text("path,time,valence,arousal\na/0.wav,0.5,0.1,0.2\na/0.wav,1.0,0.3,0.4\na/1.wav,9.0,0,0\n")
    out = tmp_path / "out"
    flags = ["--data", str(tmp_path / "labels.csv"), "--label_scale=-1-1", "--output_dir", str(out),
             "--valence_std_column", "vsd", "--arousal_std_column", "asd", "--dynamic_labels", str(tmp_path / "dyn.csv")]
    result = run(*flags)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0] == ("song_id,path,valence,arousal,split,subset,duration,sample_rate,channels,"
                           "valence_std,arousal_std,curve,curve_frames,dataset,group")
    assert manifest[1].startswith(f"a/0,{tmp_path / 'a' / '0.wav'},0.1,-0.1,") and manifest[1].endswith(",0.1,0.2,curves.csv,2,csv,a/0")
    assert (out / "curves.csv").read_text() == "song_id,time,valence,arousal\na/0,0.5,0.1,0.2\na/0,1.0,0.3,0.4\n"
    report = json.loads((out / "data_report.json").read_text())
    assert report["dynamic"]["frames_skipped_by_reason"] == {"time outside the audio": 1}

    strict = run(*flags, "--strict")
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert strict.stderr.strip().splitlines()[-1] == ("prepare.py: error: dyn.csv:4: time outside the audio "
                                                      "(9 s; the audio lasts 2 s); fix or remove the value")
