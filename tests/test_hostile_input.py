"""Hostile input end to end: every regression case bench/fuzz.py ever found is a prediction or one
named line (through the reader, the predictor and predict.py on the whole folder), and
--max_duration cuts long files with a note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentio.inference import EmotionPredictor
from tests.conftest import write_audio
from tests.test_library import predict_py, run  # noqa: F401  (fixtures)

CASES = Path(__file__).parent / "fuzz_cases"


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
