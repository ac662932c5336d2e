"""Hugging Face interop: after `import sentio`, a run folder loads with transformers' own Auto classes
and pipeline API, in either import order, and gives EmotionPredictor's numbers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sentio.features.extractor import SentioFeatureExtractor
from sentio.inference import EmotionPredictor
from sentio.models import build_model
from tests.conftest import write_audio
from tests.tiny import TINY

CHECK = """
import json, sys
IMPORTS
import numpy as np, torch
run, audio = sys.argv[1], sys.argv[2]
model = AutoModel.from_pretrained(run).eval()
extractor = AutoFeatureExtractor.from_pretrained(run)
windows = extractor(audio, return_tensors="pt")
mask = (torch.arange(windows["input_values"].shape[1])[None] < windows["length"][:, None]).long()
with torch.no_grad():
    out = model(input_values=windows["input_values"], attention_mask=mask)
assert torch.equal(out.logits, out.predictions)
result = pipeline("music-emotion", model=run)(audio, timeline=True)
print(json.dumps({"model": type(model).__name__, "extractor": type(extractor).__name__,
                  "mean": out.logits.mean(0).tolist(), "pipeline": result}))
"""


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    build_model("ast", from_scratch=True, config_overrides=TINY["ast"]).save_pretrained(folder)
    SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32).save_pretrained(folder)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("imports", [
    "import sentio\nfrom transformers import AutoFeatureExtractor, AutoModel, pipeline",
    "from transformers import AutoFeatureExtractor, AutoModel, pipeline\nimport sentio",
], ids=["sentio-first", "transformers-first"])
def test_auto_classes_and_pipeline_load_a_run(run_folder, tmp_path, imports):
    audio = write_audio(tmp_path / "song.wav", seconds=1.5, sr=16000, seed=3)
    done = subprocess.run([sys.executable, "-c", CHECK.replace("IMPORTS", imports), str(run_folder), str(audio)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["model"] == "ASTForEmotionRegression" and got["extractor"] == "SentioFeatureExtractor"
    expected = EmotionPredictor.from_pretrained(run_folder).predict(str(audio), timeline=True)
    assert got["pipeline"]["valence"] == pytest.approx(expected["valence"], abs=1e-6)
    assert got["pipeline"]["arousal"] == pytest.approx(expected["arousal"], abs=1e-6)
    assert got["pipeline"]["quadrant"] == expected["quadrant"]
    for theirs, ours in zip(got["pipeline"]["timeline"], expected["timeline"], strict=True):
        assert theirs == pytest.approx(ours, abs=1e-6)
    assert got["mean"] == pytest.approx([expected["valence"], expected["arousal"]], abs=1e-6)


def test_card_names_the_pipeline_task_that_loads(tmp_path):
    from sentio.training.card import PIPELINE_TASK, ModelCardInfo, write_model_card

    info = ModelCardInfo(backbone="ast", model_class="ASTForEmotionRegression", num_parameters=10, init="scratch",
                         pooling="mean", loss="mse", features={"feature_kind": "fbank", "sampling_rate": 16000,
                                                               "max_length": 256}, data_source="x", split_method="y",
                         splits={}, epochs=1, batch_size=2, learning_rate=1e-3, seed=0, metric_for_best_model="ccc_mean")
    card = write_model_card(tmp_path, info, {}).read_text()
    assert f"pipeline_tag: {PIPELINE_TASK}" in card and PIPELINE_TASK == "music-emotion"
    assert "`fbank` features at 16000 Hz (max_length=256)" in card  # the input line a reader understands


def test_every_prediction_path_builds_the_same_calibrated_result(run_folder, tmp_path):
    """EmotionPredictor, the music-emotion pipeline and a checkpoint-N folder of the run all give the
    run's intervals and quadrant probabilities (one result builder), and say when the model was
    trained on the demo corpus and when a clip is shorter than one window."""
    import shutil

    from transformers import pipeline

    from sentio.registration import register

    register()  # the pipeline task, in this process

    from sentio.calibration import Calibration
    from sentio.choices import DEMO_NOTE

    run = tmp_path / "run"
    shutil.copytree(run_folder, run)
    checkpoint = run / "checkpoint-5"
    shutil.copytree(run_folder, checkpoint)  # the Trainer's checkpoint: no calibration.json of its own
    Calibration(normalized=False, quantiles={"0.8": [0.2, 0.3], "0.9": [0.3, 0.4], "0.95": [0.4, 0.5]},
                sigma=[0.2, 0.2], songs=12, method="split-conformal (test)").save(run)
    audio = write_audio(tmp_path / "song.wav", seconds=1.5, sr=16000, seed=3)
    expected = EmotionPredictor.from_pretrained(run).predict(str(audio))
    assert set(expected["intervals"]) == {"80", "90", "95"} and "quadrant_probabilities" in expected
    assert "notes" not in expected  # nothing to say: not a demo model, a clip longer than a window
    for source in (run, checkpoint):
        for got in (pipeline("music-emotion", model=str(source))(str(audio)),
                    EmotionPredictor.from_pretrained(source).predict(str(audio))):
            for level, dims in expected["intervals"].items():
                for dim, bounds in dims.items():
                    assert got["intervals"][level][dim] == pytest.approx(bounds, abs=1e-6)
            assert got["quadrant_probabilities"] == pytest.approx(expected["quadrant_probabilities"])

    # a run trained on the demo corpus says so in every result; a clip shorter than a window says it is padding
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "trained_on_demo_corpus": True}))
    short = write_audio(tmp_path / "short.wav", seconds=0.3, sr=16000, seed=4)  # a window is 64 frames: 0.66 s of audio
    predictor = EmotionPredictor.from_pretrained(run)
    assert predictor.trained_on_demo and not EmotionPredictor.from_pretrained(run_folder).trained_on_demo
    for got in (predictor.predict(str(short)), pipeline("music-emotion", model=str(run))(str(short))):
        assert got["notes"][0] == DEMO_NOTE
        assert got["notes"][1].startswith("the clip (0.30 s) is shorter than one window (0.66 s)")
    assert predictor.predict(str(audio))["notes"] == [DEMO_NOTE]
