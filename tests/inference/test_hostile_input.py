"""Hostile input end to end: every regression case bench/fuzz.py ever found is a prediction or one
named line (through the reader, the predictor and predict.py on the whole folder), and
--max_duration cuts long files with a note."""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentio.data.sources import DataSourceSpec, prepare_manifest
from sentio.errors import SentioError
from sentio.inference import EmotionPredictor
from tests.conftest import REPO, write_audio

CASES = Path(__file__).parents[1] / "fuzz_cases"
AUDIO_CASES = sorted(p for p in (CASES / "audio").iterdir() if p.is_file()) if (CASES / "audio").is_dir() else []
ANNOTATION_CASES = sorted(p for p in (CASES / "annotations").iterdir() if p.is_dir()) if (CASES / "annotations").is_dir() else []
# how bench/fuzz.py reads each annotation target (the data path of its DataSourceSpec)
TARGET_SPECS = {
    "deam": lambda root: {"data": str(root)},
    "emomusic": lambda root: {"data": str(root)},
    "label_csv": lambda root: {"data": str(root / "labels.csv"), "label_scale": "1-9",
                               "valence_std_column": "valence_std", "arousal_std_column": "arousal_std"},
    "manifest": lambda root: {"data": str(root / "manifest.csv")},
}


def _limited() -> None:
    """A child's address space: a memory bomb fails inside it instead of taking the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


@pytest.mark.slow
def test_predict_py_on_every_regression_case_names_or_predicts_each_file(run, tmp_path):  # noqa: F811
    assert len(AUDIO_CASES) >= 2
    out = tmp_path / "cases.csv"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "predict.py", "--model_dir", str(run), str(CASES / "audio"),
                                "--output", str(out), "--num_workers", "2"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_limited)
    _, err = process.communicate(timeout=300)
    assert process.returncode in (0, 1), err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    with open(out, newline="") as rows:
        predicted = {row["file"] for row in csv.DictReader(rows) if row.get("num_windows")}
    skipped = {line.split(": ")[1].removeprefix("skipped ") for line in err.splitlines() if ": skipped " in line}
    for case in AUDIO_CASES:
        assert (str(case) in predicted) != (str(case) in skipped), case.name  # exactly one of the two
    assert f"{len(AUDIO_CASES)} files ({len(skipped)} failed)" in err
    assert time.monotonic() - started < 300


@pytest.mark.parametrize("case", ANNOTATION_CASES, ids=lambda p: p.name)
def test_annotation_regression_case_is_a_manifest_or_one_line(case, tmp_path):
    target = json.loads((case / "case.json").read_text())["target"]
    spec = DataSourceSpec(**TARGET_SPECS[target](case))
    try:
        manifest, _ = prepare_manifest(spec, output_dir=tmp_path, progress=False)
    except SentioError as error:
        assert "\n" not in str(error).strip(), str(error)
    else:
        assert len(manifest) >= 1


def test_max_duration_cuts_long_files_with_a_note(run, tmp_path, predict_py):  # noqa: F811
    long, short = write_audio(tmp_path / "long.wav", 5.0, 16000), write_audio(tmp_path / "short.wav", 1.5, 16000)
    out = tmp_path / "out.json"
    code, err = predict_py("--model_dir", str(run), str(long), str(short), "--max_duration", "2", "--output", str(out))
    assert code == 0, err
    assert f"predict.py: note: {long} is longer than --max_duration 2 s: only its beginning was predicted" in err
    assert str(short) not in err
    records = {Path(r["file"]).name: r for r in json.loads(out.read_text())}
    assert records["long.wav"]["cut_at"] == 2.0 and "cut_at" not in records["short.wav"]
    predictor = EmotionPredictor.from_pretrained(run, device="cpu")
    cut = write_audio(tmp_path / "cut.wav", 2.0, 16000)  # the same chord, 2 s long: the first 2 s of `long`
    expected = predictor.predict(cut)
    assert records["long.wav"]["num_windows"] == expected["num_windows"]
    assert records["long.wav"]["valence"] == pytest.approx(expected["valence"], abs=1e-5)
    code, err = predict_py("--model_dir", str(run), str(long), "--max_duration", "0")
    assert code == 2 and "--max_duration must be a positive number of seconds, got 0.0" in err
