"""distill.py end to end on a tiny teacher and corpus: the student folder, the teacher-output cache,
ONNX fp32/int8 in onnxruntime against PyTorch, predict.py on an .onnx file, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from sentio.features.extractor import SentioFeatureExtractor
from sentio.models import StudentForEmotionRegression, build_model
from tests.conftest import REPO
from tests.helpers import run_script
from tests.tiny import TINY

pytestmark = pytest.mark.slow  # a teacher and a student trained, exported and timed

# Tolerances: the fp32 graph computes what PyTorch computes (op order aside). int8 rounds weights
# and activations to 256 levels; on this tiny, barely trained student the outputs (in (-1, 1))
# move by up to a few tenths, on the demo student by a few hundredths (see distill_report.json).
FP32_ATOL, INT8_ATOL = 1e-4, 0.3


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A teacher run folder (tiny AST, its extractor, a manifest over a tiny demo corpus)."""
    from sentio.args import DataArguments
    from sentio.demo.corpus import ensure_demo
    from sentio.data.sources import prepare_manifest

    root = tmp_path_factory.mktemp("teacher")
    corpus = ensure_demo(root / "demo", num_clips=16, seed=5)
    folder = root / "run"
    manifest, _ = prepare_manifest(DataArguments(demo=True, demo_dir=str(corpus), demo_num_clips=16, demo_seed=5),
                                   folder, progress=False)
    torch.manual_seed(0)
    build_model("ast", from_scratch=True, config_overrides=TINY["ast"]).save_pretrained(folder)
    SentioFeatureExtractor(feature_kind="ast", max_length=64, num_mel_bins=32).save_pretrained(folder)
    return folder, manifest


@pytest.fixture(scope="module")
def student_run(teacher_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    # a subprocess: the real command line, and the Trainer's global state stays out of this process
    args = [sys.executable, "distill.py", "--teacher", str(teacher_run[0]), "--output_dir", str(root / "out"),
            "--cache_dir", str(root / "cache"), "--epochs", "2", "--train_windows", "random",
            "--per_device_train_batch_size", "4", "--width_mult", "0.25", "--report_to", "none",
            "--disable_tqdm", "true", "--calibration_windows", "16", "--latency_runs", "3"]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


def test_distill_writes_a_sentio_model_onnx_files_and_report(student_run):
    root, result = student_run
    out = root / "out"
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md", "manifest.csv",
                 "student.onnx", "student.int8.onnx", "distill_report.json", "all_results.json", "calibration.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "distill_report.json").read_text())
    assert report["onnx"]["dynamic_batch"] and report["onnx"]["dynamic_frames"]
    assert report["onnx"]["input_shape"] == ["batch", "frames", 32]  # named axes, not the exporter's s43
    assert report["parity"]["fp32_max_abs_diff"] < FP32_ATOL, report["parity"]
    assert report["parity"]["int8_max_abs_diff"] < INT8_ATOL, report["parity"]
    assert report["targets"]["per_window"] > 0 and report["targets"]["song_mean"] == 0 and not report["targets"]["reused"]
    assert report["latency_ms"]["clip_int8_ms"] > 0 and report["latency_ms"]["clip_windows"] >= 15  # 0.64 s windows
    assert report["student"]["architecture"] == "cnn" and report["files_mb"]["student.int8.onnx"] < report["files_mb"]["student.onnx"]
    results = json.loads((out / "all_results.json").read_text())
    for key in ("test_ccc_mean", "teacher_test_ccc_mean", "test_int8_onnx_ccc_mean"):
        assert np.isfinite(results[key]), key
    assert "## Distillation" in (out / "README.md").read_text()
    assert "parity on" in result.stdout and "test CCC mean: teacher" in result.stdout
    assert "torchvision" not in result.stderr  # no noise about a package the students do not use


def test_teacher_outputs_are_cached_and_reused(student_run, teacher_run):
    from sentio.features.cache import build_feature_dataset
    from sentio.distill.distill import load_teacher
    from sentio.distill.teacher import cached_teacher_outputs, teacher_cache_path

    root, _ = student_run
    teacher = load_teacher(str(teacher_run[0]))
    model, extractor = teacher.model, teacher.extractor
    features, report = build_feature_dataset(teacher_run[1], extractor, str(root / "cache"))
    assert report.reused
    path = teacher_cache_path(str(teacher_run[0]), report.cache_dir, str(root / "cache"))
    assert path.is_file()  # written by the distill.py run
    cached, _, reused = cached_teacher_outputs(teacher.runner, str(teacher_run[0]), features, extractor, report.cache_dir,
                                               str(root / "cache"))
    assert reused and len(cached.predictions) == len(features)
    with torch.no_grad():  # the cached values are the teacher's outputs on those windows
        batch = features.with_format("torch", columns=["input_values"])[:3]["input_values"]
        np.testing.assert_allclose(model(batch).predictions.numpy(), cached.predictions[:3], atol=1e-5)


def test_onnx_files_match_pytorch_in_onnxruntime_and_through_predict(student_run, teacher_run, monkeypatch, capsys):
    from transformers import AutoModel

    from sentio.inference import EmotionPredictor, OnnxRunner
    from sentio.registration import register

    register()

    out = student_run[0] / "out"
    clip = str(teacher_run[1]["path"].iloc[0])
    assert isinstance(AutoModel.from_pretrained(out), StudentForEmotionRegression)
    expected = EmotionPredictor.from_pretrained(out, device="cpu").predict(clip, timeline=True)
    for name, atol in (("student.onnx", FP32_ATOL), ("student.int8.onnx", INT8_ATOL)):
        predictor = EmotionPredictor.from_pretrained(out / name)
        assert isinstance(predictor.runner, OnnxRunner)
        got = predictor.predict(clip, timeline=True)
        assert got["num_windows"] == expected["num_windows"] > 1
        np.testing.assert_allclose([got["valence"], got["arousal"]], [expected["valence"], expected["arousal"]], atol=atol)
        np.testing.assert_allclose([[w["valence"], w["arousal"]] for w in got["timeline"]],
                                   [[w["valence"], w["arousal"]] for w in expected["timeline"]], atol=atol)
        # the student is calibrated like any run, and its ONNX files beside it carry the intervals
        assert got["intervals"].keys() == expected["intervals"].keys() == {"80", "90", "95"}
        np.testing.assert_allclose(got["intervals"]["90"]["arousal"], expected["intervals"]["90"]["arousal"], atol=atol)
        assert sum(got["quadrant_probabilities"].values()) == pytest.approx(1.0)

    # predict.py on the .onnx file prints the PyTorch student's numbers (fp32 tolerance)
    rows = {}
    for model_dir in (out / "student.onnx", out):
        assert run_script(monkeypatch, "predict.py", "--model_dir", str(model_dir), clip) == 0
        rows[str(model_dir)] = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    onnx, pt = rows[str(out / "student.onnx")], rows[str(out)]
    for column in ("valence", "arousal"):
        assert float(onnx[column]) == pytest.approx(float(pt[column]), abs=FP32_ATOL)
    assert onnx["num_windows"] == pt["num_windows"]


def test_bad_teacher_is_one_line(tmp_path, monkeypatch, capsys):
    assert run_script(monkeypatch, "distill.py", "--teacher", str(tmp_path / "nowhere"), "--output_dir", str(tmp_path / "o")) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == (f"distill.py: error: model folder {tmp_path / 'nowhere'} does not exist: "
                         "pass the output_dir of a Sentio training run (train.py or distill.py) or an exported .onnx file")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    assert run_script(monkeypatch, "distill.py", "--teacher", str(tmp_path / "half"), "--output_dir", str(tmp_path / "o")) == 2
    assert "config.json has no model_type, not a Sentio model's config" in capsys.readouterr().err
