"""Predicting with an exported ONNX model loads neither torch nor transformers, and gives the numbers
the torch features give; predict.py's transformers-free argument parser is HfArgumentParser's."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sentio.features.extractor import SentioFeatureExtractor
from sentio.inference import EmotionPredictor, OnnxRunner
from tests.conftest import write_audio

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory) -> Path:
    """distill.py's cnn student (random weights, 0.64 s windows of 32 mel bins) exported to ONNX."""
    from sentio.distill.export import export_onnx
    from sentio.models.student import StudentEmotionConfig, StudentForEmotionRegression

    folder = tmp_path_factory.mktemp("onnx-run")
    torch.manual_seed(0)
    config = StudentEmotionConfig(architecture="cnn", width_mult=0.25, num_mel_bins=32, max_length=64, loss="mse")
    SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32).save_pretrained(folder)
    return export_onnx(StudentForEmotionRegression(config).eval(), folder / "student.onnx", 64, 32)


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("songs")
    for i, (seconds, fmt) in enumerate([(7.3, "MP3"), (0.4, "WAV"), (3.1, "OGG"), (12.0, "FLAC")]):
        write_audio(root / f"song{i}.{fmt.lower()}", seconds, (44100, 22050)[i % 2], 1 + i % 2, seed=i, fmt=fmt)
    return root


def _imported(stderr: str) -> set[str]:
    """The top-level packages a `python -X importtime` run imported."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_predict_py_with_an_onnx_model_imports_no_torch_and_no_transformers(onnx_run, songs, tmp_path):
    output = tmp_path / "out.csv"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-X", "importtime", "predict.py", "--model_dir", str(onnx_run), str(songs),
                           "--output", str(output)], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    imported = _imported(done.stderr)
    assert "onnxruntime" in imported and "soundfile" in imported  # the check sees real imports
    assert not imported & {"torch", "transformers", "accelerate", "datasets", "safetensors", "scipy"}, imported
    rows = {row["file"]: row for row in csv.DictReader(io.StringIO(output.read_text()))}
    assert len(rows) == 4
    # the same model fed the torch features it was trained on: the same numbers
    reference = EmotionPredictor(OnnxRunner(onnx_run), SentioFeatureExtractor.from_pretrained(str(onnx_run.parent)))
    for path, row in rows.items():
        expected = reference.predict(path)
        assert int(row["num_windows"]) == expected["num_windows"]
        assert float(row["valence"]) == pytest.approx(expected["valence"], abs=1e-5)
        assert float(row["arousal"]) == pytest.approx(expected["arousal"], abs=1e-5)


def test_the_predictor_of_an_onnx_run_uses_numpy_features(onnx_run, songs):
    from sentio.features.numpy_features import NumpyFeatureExtractor

    for source in (onnx_run, onnx_run.parent):  # the file, or the export folder with its one graph
        predictor = EmotionPredictor.from_pretrained(source)
        assert isinstance(predictor.extractor, NumpyFeatureExtractor)
        batch = predictor.collate([{"input_values": torch.zeros(64, 32).numpy(), "length": 10}])
        assert batch["attention_mask"].dtype.name == "int64" and batch["attention_mask"].sum() == 10
        result = predictor.predict(str(songs / "song0.mp3"), timeline=True)
        assert result["num_windows"] == len(result["timeline"]) > 1


@pytest.mark.parametrize("argv", [
    ["--model_dir", "m", "a.mp3"],
    ["--model_dir=m", "--timeline", "--write_tags=false", "a", "b"],
    ["--model-dir", "m", "--num_workers", "3", "--max_duration", "2.5", "--device", "cpu", "--timeline=yes", "x"],
    ["--model_dir", "m", "--batch_size", "8", "--file_timeout", "0", "--output", "o.jsonl", "f"],
])
def test_predict_parser_is_hf_argument_parser(argv):
    from sentio.cli import parse_dataclasses, parser_for

    sys.path.insert(0, str(REPO))
    try:
        import predict
    finally:
        sys.path.remove(str(REPO))
    ours = predict.parse_args(argv)
    hf_parser = parser_for([predict.PredictArguments], prog="predict.py")
    hf_parser.add_argument("audio", nargs="+")
    theirs = parse_dataclasses(hf_parser, argv)
    assert ours[0] == theirs[0] and ours[1] == theirs[1].audio
    keys = ("option_strings", "dest", "nargs", "const", "default", "required", "help", "metavar")
    light = [{k: getattr(a, k) for k in keys} for a in predict.DataclassArgumentParser([predict.PredictArguments])._actions]
    hf = [{k: getattr(a, k) for k in keys} for a in parser_for([predict.PredictArguments])._actions]
    assert light == hf
