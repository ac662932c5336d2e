"""EmotionPredictor and predict.py on tiny untrained models: the numbers must equal a direct forward."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sentio.calibration import Calibration
from sentio.features.audio import AudioError
from sentio.features.extractor import SentioFeatureExtractor
from sentio.data.labels import from_unit, quadrant
from sentio.errors import CheckpointError
from sentio.inference import EmotionPredictor
from sentio.models import build_model
from tests.conftest import REPO, write_audio
from tests.helpers import run_python, run_script
from tests.tiny import TINY

COLUMNS = ["file", "valence", "arousal", "valence_1_9", "arousal_1_9", "quadrant", "num_windows"]
# name -> (seconds, sample rate, channels, format): odd rates, mono and stereo, every soundfile format
GOOD = {
    "a_mono_8k.wav": (1.5, 8000, 1, "WAV"),
    "b_stereo_22k.flac": (1.0, 22050, 2, "FLAC"),
    "c_stereo_48k.ogg": (1.2, 48000, 2, "OGG"),
    "d_mono_22k.mp3": (1.0, 22050, 1, "MP3"),
    "e_long_16k.wav": (6.0, 16000, 1, "WAV"),  # ~0.66 s windows: 9 of them
}


def _torch_model(kind: str):
    torch.manual_seed(0)  # the same random weights every run
    return build_model(kind, from_scratch=True, config_overrides=TINY[kind]).eval()


@pytest.fixture(scope="module")
def ast_run(tmp_path_factory) -> tuple[Path, torch.nn.Module, SentioFeatureExtractor]:
    folder = tmp_path_factory.mktemp("ast_run")
    model = _torch_model("ast")
    model.save_pretrained(folder)
    extractor = SentioFeatureExtractor(feature_kind="fbank", max_length=64, num_mel_bins=32)
    extractor.save_pretrained(folder)
    return folder, model, extractor


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio")
    files = {name: write_audio(root / "good" / name, s, sr, ch, seed=i, fmt=fmt)
             for i, (name, (s, sr, ch, fmt)) in enumerate(GOOD.items())}
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    (bad / "corrupt.mp3").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (bad / "notes.wav").write_text("not audio at all\n")
    (bad / "song.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(64))  # damaged, or no ffmpeg: unreadable
    (bad / "readme.txt").write_text("ignored: not an audio extension\n")
    return {**files, "good": root / "good", "bad": bad}


@pytest.fixture(scope="module")
def predictor(ast_run) -> EmotionPredictor:
    return EmotionPredictor.from_pretrained(ast_run[0], device="cpu")


def direct(model: torch.nn.Module, extractor: SentioFeatureExtractor, path: Path) -> np.ndarray:
    """Per-window predictions [K, 2] from one plain forward over all of the extractor's windows."""
    windows = extractor(str(path), return_tensors="pt")
    name = extractor.feature_name
    x = windows[name].float()
    steps = x.shape[1 + extractor.time_axis]
    mask = (torch.arange(steps)[None, :] < windows["length"][:, None]).long()
    with torch.no_grad():
        return model(**{name: x, "attention_mask": mask}).predictions.double().numpy()


def test_api_equals_direct_forward_averaged(ast_run, audio, predictor):
    _, model, extractor = ast_run
    for name in GOOD:
        expected = direct(model, extractor, audio[name])
        result = predictor.predict(audio[name], timeline=True)
        v, a = expected.mean(axis=0)
        np.testing.assert_allclose([result["valence"], result["arousal"]], [v, a], atol=1e-5)
        np.testing.assert_allclose([result["valence_1_9"], result["arousal_1_9"]], from_unit([v, a]), atol=1e-4)
        assert result["quadrant"] == quadrant(result["valence"], result["arousal"])
        assert result["num_windows"] == len(expected) == len(result["timeline"])
        got = np.array([[w["valence"], w["arousal"]] for w in result["timeline"]])
        np.testing.assert_allclose(got, expected, atol=1e-5)
    assert predictor.predict(audio["e_long_16k.wav"])["num_windows"] == 9
    assert "timeline" not in predictor.predict(audio["a_mono_8k.wav"])


def test_batch_size_does_not_change_numbers(ast_run, audio):
    runs = [EmotionPredictor.from_pretrained(ast_run[0], device="cpu", batch_size=b) for b in (1, 4, 32)]
    results = [p.predict(audio["e_long_16k.wav"], timeline=True) for p in runs]
    for other in results[1:]:
        np.testing.assert_allclose([other["valence"], other["arousal"]], [results[0]["valence"], results[0]["arousal"]], atol=1e-5)
        assert [w["start"] for w in other["timeline"]] == [w["start"] for w in results[0]["timeline"]]


def test_waveform_input_equals_file(audio, predictor):
    for name in ("c_stereo_48k.ogg", "a_mono_8k.wav"):
        wave, sr = sf.read(audio[name], dtype="float32")
        from_file, from_wave = predictor.predict(audio[name]), predictor.predict(wave, sampling_rate=sr)
        np.testing.assert_allclose([from_wave["valence"], from_wave["arousal"]], [from_file["valence"], from_file["arousal"]], atol=1e-5)


def test_predict_files_goes_on_after_bad_files(audio, predictor):
    paths = [audio["bad"] / "empty.wav", audio["a_mono_8k.wav"], audio["bad"] / "corrupt.mp3", audio["bad"] / "notes.wav"]
    out = dict(predictor.predict_files(paths + [audio["bad"] / "missing.wav"], progress=False))
    assert sorted(out) == sorted([str(p) for p in paths] + [str(audio["bad"] / "missing.wav")])  # in the order they finish
    errors = [r for r in out.values() if isinstance(r, AudioError)]
    assert len(errors) == 4 and all(str(e).startswith(e.path + ": ") for e in errors)
    assert out[str(audio["a_mono_8k.wav"])] == predictor.predict(audio["a_mono_8k.wav"])


@pytest.mark.slow
def test_scripts_import_sentio_without_torch_and_it_exports_the_predictor():
    # a module of the package registers nothing, so --help and flag errors do not load torch
    code = "import sys, sentio.errors; assert 'torch' not in sys.modules, 'torch imported'; print(sentio.__version__)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, timeout=60)
    from sentio import EmotionPredictor as exported

    assert exported is EmotionPredictor


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_python(["predict.py", *args], timeout=120)


@pytest.mark.slow
def test_cli_csv_skips_bad_files_and_exits_1(ast_run, audio, predictor):
    result = _cli("--model_dir", str(ast_run[0]), str(audio["bad"]), str(audio["good"]), "--batch_size", "4")
    assert result.returncode == 1, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("predict.py: skipped")]
    assert len(skipped) == 4 and "Traceback" not in result.stderr
    assert not any(line.startswith("Note:") for line in result.stderr.splitlines())  # libmpg123 muted
    for name in ("corrupt.mp3", "empty.wav", "notes.wav", "song.m4a"):  # sorted, one line each, naming the file
        assert sum(str(audio["bad"] / name) in line for line in skipped) == 1
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == COLUMNS + ["scale"]  # the scale of valence and arousal is named
    assert sorted(r["file"] for r in rows) == [str(audio[n]) for n in sorted(GOOD)]  # in the order they finish
    for row in rows:
        expected = predictor.predict(row["file"])
        for column in COLUMNS[1:5]:
            assert float(row[column]) == pytest.approx(expected[column], abs=1e-5)
        assert row["quadrant"] == expected["quadrant"] and int(row["num_windows"]) == expected["num_windows"]


def test_cli_json_and_csv_timeline(ast_run, audio, predictor, tmp_path, monkeypatch):
    files = [str(audio["e_long_16k.wav"]), str(audio["b_stereo_22k.flac"])]
    out_json = tmp_path / "emotions.json"
    assert run_script(monkeypatch, "predict.py", "--model_dir", str(ast_run[0]), "--timeline", *files, "--output", str(out_json)) == 0
    records = json.loads(out_json.read_text())
    assert [r["file"] for r in records] == files
    for record in records:
        expected = predictor.predict(record["file"], timeline=True)
        assert set(record) == set(COLUMNS) | {"timeline", "scale"}
        assert len(record["timeline"]) == record["num_windows"] == expected["num_windows"]
        assert record["valence"] == pytest.approx(expected["valence"], abs=1e-5)
        assert record["timeline"][-1]["arousal"] == pytest.approx(expected["timeline"][-1]["arousal"], abs=1e-5)

    out_csv = tmp_path / "emotions.csv"
    assert run_script(monkeypatch, "predict.py", "--model_dir", str(ast_run[0]), *files, "--output", str(out_csv), "--timeline") == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == ["file", "start", *COLUMNS[1:], "scale", "size_bytes", "mtime_ns", "kind"]  # the key a rerun skips by
    songs = [r for r in rows if r["start"] == ""]
    assert sorted(r["file"] for r in songs) == sorted(files)
    for song in songs:
        stat = os.stat(song["file"])
        assert (int(song["size_bytes"]), int(song["mtime_ns"])) == (stat.st_size, stat.st_mtime_ns)
    assert len(rows) == sum(1 + int(r["num_windows"]) for r in songs)
    windows = [r for r in rows if r["file"] == files[0] and r["start"] != ""]
    assert [float(r["start"]) for r in windows] == pytest.approx([w["start"] for w in records[0]["timeline"]], abs=1e-5)
    assert {r["kind"] for r in songs} == {"file"} and {r["kind"] for r in windows} == {"window"}
    # starts without float noise: each a whole number of 0.1 ms (23.175, not 23.174999)
    assert all(abs(w["start"] * 1e4 - round(w["start"] * 1e4)) < 1e-6 for w in records[0]["timeline"])


@pytest.mark.slow
def test_cli_bad_model_dir_or_output_exit_2(tmp_path, audio, ast_run, monkeypatch, capsys):
    result = _cli("--model_dir", str(tmp_path / "no_such_run"), str(audio["a_mono_8k.wav"]))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("predict.py: error:") and "no_such_run" in lines[0]

    assert run_script(monkeypatch, "predict.py", "--model_dir", str(ast_run[0]), str(audio["a_mono_8k.wav"]), "--output", "x.txt") == 2
    assert "--output must end in .csv or .json (or .jsonl" in capsys.readouterr().err
    assert run_script(monkeypatch, "predict.py", "--model_dir", str(audio["good"]), str(audio["a_mono_8k.wav"])) == 2
    assert "has no config.json: pass the output_dir of a Sentio training run" in capsys.readouterr().err


def test_vit_pixel_values(tmp_path, audio):
    model = _torch_model("vit")
    extractor = SentioFeatureExtractor(feature_kind="vit", image_size=32, window_seconds=0.5)
    model.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    predictor = EmotionPredictor.from_pretrained(tmp_path, device="cpu", batch_size=2)
    assert predictor.extractor.feature_name == "pixel_values"
    result = predictor.predict(audio["a_mono_8k.wav"], timeline=True)
    expected = direct(model, extractor, audio["a_mono_8k.wav"])
    assert result["num_windows"] == len(expected) == 3
    np.testing.assert_allclose([result["valence"], result["arousal"]], expected.mean(axis=0), atol=1e-5)


def test_broken_onnx_file_is_refused_clearly(tmp_path, ast_run):
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_bytes((ast_run[0] / name).read_bytes())
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    for source in (tmp_path, tmp_path / "model.onnx"):  # the folder (its only model) or the file itself
        with pytest.raises(CheckpointError, match="model.onnx: not a loadable ONNX model"):
            EmotionPredictor.from_pretrained(source)


@pytest.fixture(scope="module")
def dynamic_run(tmp_path_factory) -> tuple[Path, torch.nn.Module, SentioFeatureExtractor, Calibration]:
    """A tiny wav2vec2 run with a 2 Hz head and a spread (--target both --uncertainty), 2 s windows
    on the half-second grid, calibrated with normalised scores."""
    folder = tmp_path_factory.mktemp("dynamic_run")
    torch.manual_seed(0)
    model = build_model("wav2vec2", from_scratch=True,
                        config_overrides={**TINY["wav2vec2"], "input_step_seconds": 1 / 16000},
                        head_kwargs={"target": "both", "uncertainty": True}).eval()
    model.save_pretrained(folder)
    extractor = SentioFeatureExtractor("waveform", window_seconds=2.0, sampling_rate=16000, start_grid_seconds=0.5)
    extractor.save_pretrained(folder)
    calibration = Calibration(normalized=True, quantiles={"0.8": [1.0, 1.5], "0.9": [1.5, 2.0], "0.95": [2.0, 2.5]},
                              sigma=[0.8, 1.1], songs=20, method="split-conformal (test)")
    calibration.save(folder)
    return folder, model, extractor, calibration


def test_dynamic_calibrated_run_gives_curve_spread_intervals_and_quadrant_odds(dynamic_run, audio, tmp_path, monkeypatch):
    folder, model, extractor, calibration = dynamic_run
    predictor = EmotionPredictor.from_pretrained(folder, device="cpu", batch_size=3)
    path = audio["e_long_16k.wav"]  # 6 s
    result = predictor.predict(path, timeline=True)

    windows = extractor(str(path), return_tensors="pt")
    mask = (torch.arange(windows["input_values"].shape[1])[None, :] < windows["length"][:, None]).long()
    with torch.no_grad():
        out = model(input_values=windows["input_values"].float(), attention_mask=mask)
    mean, spread = out.predictions.double().mean(0).numpy(), out.spread.double().mean(0).numpy()
    assert result["scale"] == "[-1, 1]"
    np.testing.assert_allclose([result["valence"], result["arousal"]], mean, atol=1e-5)
    np.testing.assert_allclose([result["spread"]["valence"], result["spread"]["arousal"]], spread, atol=1e-5)
    # normalised intervals: mean +- quantile x predicted spread, clipped to [-1, 1]; nested by level
    assert sorted(result["intervals"], key=float) == ["80", "90", "95"]
    for level, q in (("80", [1.0, 1.5]), ("95", [2.0, 2.5])):
        for d, dim in enumerate(("valence", "arousal")):
            low, high = result["intervals"][level][dim]
            assert low == pytest.approx(max(-1, mean[d] - q[d] * spread[d]), abs=1e-5)
            assert high == pytest.approx(min(1, mean[d] + q[d] * spread[d]), abs=1e-5)
    assert result["intervals"]["95"]["valence"][0] <= result["intervals"]["80"]["valence"][0]
    odds = result["quadrant_probabilities"]
    assert set(odds) == {"happy", "tense", "sad", "calm"} and sum(odds.values()) == pytest.approx(1.0)
    assert max(odds, key=odds.get) == result["quadrant"]  # the likeliest quadrant holds the mean
    # the 2 Hz curve: every half-second of the file, the mean of the windows' frames at that time
    curve = result["curve"]
    assert curve["times"] == [0.5 * k for k in range(1, 13)]
    frames = out.frame_predictions.double().numpy()
    starts = np.asarray(windows["start"], dtype=np.float64)
    for k, t in enumerate(curve["times"]):
        covering = [frames[w, int(round((t - s) / 0.5)) - 1] for w, s in enumerate(starts)
                    if 0 < t - s <= 2.0 + 1e-9 and out.frame_mask[w, int(round((t - s) / 0.5)) - 1]]
        np.testing.assert_allclose([curve["valence"][k], curve["arousal"][k]], np.mean(covering, axis=0), atol=1e-5)

    # a list gives each item's result; the library path (threads, shared batches) gives the same
    pair = predictor.predict([path, audio["a_mono_8k.wav"]], timeline=True)
    assert pair[0]["curve"] == result["curve"] and pair[0]["intervals"] == result["intervals"]
    assert pair[1] == predictor.predict(audio["a_mono_8k.wav"], timeline=True)
    (_, from_library), = predictor.predict_files([path], progress=False, timeline=True)
    assert from_library["curve"]["times"] == curve["times"]
    np.testing.assert_allclose(from_library["curve"]["valence"], curve["valence"], atol=1e-5)
    assert from_library["intervals"].keys() == result["intervals"].keys()

    # predict.py --timeline: the file's row with its interval columns, a row per window, a row per 0.5 s
    out_csv = tmp_path / "curves.csv"
    assert run_script(monkeypatch, "predict.py", "--model_dir", str(folder), str(path), "--timeline", "--output", str(out_csv)) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert {"scale", "valence_low_90", "arousal_high_95", "valence_spread", "p_happy"} <= set(rows[0])
    assert float(rows[0]["valence_low_80"]) == pytest.approx(result["intervals"]["80"]["valence"][0], abs=1e-5)
    points = [r for r in rows if r["time"]]
    assert [float(r["time"]) for r in points] == curve["times"]
    np.testing.assert_allclose([float(r["arousal"]) for r in points], curve["arousal"], atol=1e-5)


def test_a_damaged_calibration_is_one_line(dynamic_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(dynamic_run[0], folder)
    (folder / "calibration.json").write_text('{"normalized": true, "quantiles": {}}')
    with pytest.raises(CheckpointError, match="calibration.json: not a Sentio calibration"):
        EmotionPredictor.from_pretrained(folder, device="cpu")


@pytest.mark.slow
def test_cli_says_once_that_a_model_is_a_demo_model_and_which_clips_were_padding(ast_run, tmp_path):
    from sentio.choices import DEMO_NOTE

    run = tmp_path / "demo_run"
    shutil.copytree(ast_run[0], run)
    (run / "data_report.json").write_text(json.dumps({"source": "demo corpus at data/demo"}))  # a run of before
    songs = [write_audio(tmp_path / "a.wav", 2.0, 16000, seed=1), write_audio(tmp_path / "b.wav", 2.5, 16000, seed=2),
             write_audio(tmp_path / "short.wav", 0.3, 16000, seed=3)]
    result = _cli("--model_dir", str(run), *map(str, songs), "--output", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(DEMO_NOTE) == 1
    padded = [line for line in result.stderr.splitlines() if "shorter than one window" in line]
    assert len(padded) == 1 and str(songs[2]) in padded[0]
    records = {r["file"]: r for r in map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())}
    assert all(r["notes"][0] == DEMO_NOTE for r in records.values())
    assert len(records[str(songs[2])]["notes"]) == 2 and len(records[str(songs[0])]["notes"]) == 1
