"""Protocols end to end: prepare.py / train.py / evaluate.py with --protocol, and each new bad input (one line, exit 2)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.data.helpers import write_deam, write_emomusic
from tests.helpers import run_python, run_script, tiny_checkpoint

pytestmark = pytest.mark.slow  # trains and evaluates through the scripts

ARTISTS = ["Kevin MacLeod", "Josh Woodward", "Ars Sonor", "Broke For Free", "Jahzzar", "Podington Bear", "Lee Rosevere"]


def test_marble_emo_train_and_evaluate(tmp_path):
    songs = [(i + 2, ARTISTS[i % len(ARTISTS)], "evaluation" if i % 5 == 0 else "development") for i in range(24)]
    root = write_emomusic(tmp_path / "emo", songs, seconds=6.0)
    out = tmp_path / "run"
    result = run_python(["train.py", "--model", "vit", "--data", str(root), "--protocol", "marble-emo",
                         "--checkpoint", str(tiny_checkpoint("vit", tmp_path / "tiny")), "--epochs", "1",
                         "--per_device_train_batch_size", "4", "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"),
                         "--report_to", "none", "--disable_tqdm", "true"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test R²: valence" in result.stdout
    results = json.loads((out / "all_results.json").read_text())
    assert {"test_r2_valence", "test_r2_arousal", "test_r2_mean", "test_ccc_mean"} <= set(results)
    assert set(pd.read_csv(out / "manifest.csv")["protocol"]) == {"marble-emo"}
    assert json.loads((out / "preprocessor_config.json").read_text())["window_seconds"] == 5.0  # the protocol's window
    assert "Protocol `marble-emo`" in (out / "README.md").read_text()
    assert "z-scored with the mean and population std of the" in (out / "README.md").read_text()
    # the protocol's label transform: an unbounded head trained on z values, the statistics in config.json
    norm = json.loads((out / "data_report.json").read_text())["protocol"]["label_normalisation"]
    config = json.loads((out / "config.json").read_text())
    assert config["label_mean"] == pytest.approx([norm["mean"]["valence"], norm["mean"]["arousal"]])
    assert config["label_std"] == pytest.approx([norm["std"]["valence"], norm["std"]["arousal"]])
    assert "2 unbounded outputs trained on z-scored labels" in (out / "README.md").read_text()

    result = run_python(["evaluate.py", "--model_dir", str(out), "--bootstrap", "0"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "test R² valence" in result.stdout
    assert "protocol marble-emo (emomusic), headline r2:" in result.stdout
    assert "MERT-330M, frozen probe" in result.stdout and "R² valence 0.6120  arousal 0.7470" in result.stdout
    report = json.loads((out / "eval-test" / "eval_report.json").read_text())
    section = report["protocol"]
    assert section["headline"]["songs"] == 5 and section["headline"]["labels"].startswith("z-scored")
    # R² on the z scale equals R² on [-1, 1]: the headline is the report's own R²
    assert section["headline"]["r2"]["mean"] == pytest.approx(report["metrics"]["mean"]["r2"]["value"])
    assert "## Protocol" in (out / "eval-test" / "report.md").read_text()


def bad_world(tmp_path):
    emo = write_emomusic(tmp_path / "emo", [(2, "A", "development"), (3, "B", "evaluation"), (4, "C", "development")])
    deam = write_deam(tmp_path / "deam", [5, 6, 2001])
    return emo, deam


@pytest.mark.parametrize("script, args, expected", [
    ("prepare.py", ["--data", "{emo}", "--protocol", "marble"], "--protocol 'marble' is not a protocol Sentio knows"),
    ("prepare.py", ["--data", "{deam}", "--protocol", "marble-emo"], "--protocol marble-emo applies to emomusic data"),
    ("train.py", ["--data", "{emo}", "{deam}", "--protocol", "marble-emo"],
     "--protocol marble-emo reads one emomusic dataset per run; give one --data source"),
    ("train.py", ["--data", "{emo}", "--protocol", "mediaeval-2015"], "--protocol mediaeval-2015 applies to deam data"),
    ("prepare.py", ["--data", "{emo}", "--keep_published_leakage"], "--keep_published_leakage belongs to --protocol music2emo"),
    ("prepare.py", ["--data", "{emo}", "--protocol", "music2emo", "--split_files", "{tmp}"], "fixes the split itself"),
    ("prepare.py", ["--data", "{tmp}/emo_plain/manifest.csv", "--protocol", "marble-emo"],
     "prepared with no protocol, not --protocol marble-emo"),
    ("prepare.py", ["--dataset_name", "someone/no-such-emotion-set", "--label_scale", "1-9"],
     "--dataset_name someone/no-such-emotion-set: cannot load it"),
])
def test_bad_protocol_input_is_one_line(tmp_path, monkeypatch, capsys, script, args, expected):
    emo, deam = bad_world(tmp_path)
    if "{tmp}/emo_plain/manifest.csv" in args:
        assert run_script(monkeypatch, "prepare.py", "--data", str(emo), "--output_dir", str(tmp_path / "emo_plain")) == 0
        capsys.readouterr()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    filled = [a.format(emo=emo, deam=deam, tmp=tmp_path) for a in args]
    output = ["--output_dir", str(tmp_path / "out")]
    assert run_script(monkeypatch, script, *filled, *output) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
