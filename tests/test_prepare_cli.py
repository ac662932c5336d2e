import json
import os
import subprocess
import sys

from tests.conftest import REPO, write_audio


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "prepare.py", *args], cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


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
    assert strict.stderr.strip().splitlines()[-1] == "prepare.py: error: labels.csv:7: missing file"
    assert "Traceback" not in strict.stderr


def test_prepare_bad_input_is_one_line(tmp_path):
    result = run("--data", str(tmp_path), "--output_dir", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"prepare.py: error: {tmp_path}: no DEAM static annotation file")
