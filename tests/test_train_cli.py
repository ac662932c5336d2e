"""train.py end to end on a tiny demo corpus: train -> save -> reload in a new process -> same predictions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from sentio.models.registry import BACKBONES
from tests.conftest import REPO
from tests.helpers import PREDICT, alive, descendants, free_port, run_python, run_script, tiny_checkpoint

# Every backbone of the registry but CLAP, whose end-to-end run (tests/models/test_clap.py) needs a
# checkpoint in CLAP's own format: a new backbone joins this test on its own.
END_TO_END = [name for name in BACKBONES if name != "clap"]


@pytest.mark.slow
@pytest.mark.parametrize("name", END_TO_END)
def test_train_save_reload_in_new_process(name, tiny_corpus, tmp_path):
    out = tmp_path / "run"
    result = run_python([
        "train.py", "--model", name, "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
        "--demo_seed", "5", "--checkpoint", str(tiny_checkpoint(name, tmp_path / "tiny")), "--epochs", "2",
        "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--output_dir", str(out),
        "--cache_dir", str(tmp_path / "cache"), "--report_to", "tensorboard", "--disable_tqdm", "true",
        # the tiny waveform encoders hop 20 samples: short windows keep their sequences short
        *(["--window_seconds", "0.5"] if BACKBONES[name].feature_kind == "waveform" else []),
        *(["--mixup_alpha", "0.2"] if name == "vit" else []),  # the flag reaches training
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    for key in ("test_ccc_valence", "test_ccc_arousal", "test_ccc_mean", "test_rmse_mean", "test_pearson_mean", "eval_ccc_mean"):
        assert np.isfinite(results[key]), key
    assert results["test_ccc_mean"] == pytest.approx((results["test_ccc_valence"] + results["test_ccc_arousal"]) / 2)
    for file in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md", "manifest.csv", "data_report.json"):
        assert (out / file).is_file(), file
    assert list(out.glob("runs/*/events.out.tfevents.*")), "no TensorBoard event file"
    card = (out / "README.md").read_text()
    assert f"pretrained `{tmp_path / 'tiny'}`" in card and "test | ccc" in card

    clip = next((tiny_corpus / "DEAM_audio" / "MEMD_audio").glob("*.mp3"))
    first = run_python(["-c", PREDICT, str(out), str(clip)])
    second = run_python(["-c", PREDICT, str(out), str(clip)])
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads(first.stdout) == json.loads(second.stdout)

    # and in this process, through the same public loading path
    import torch
    from transformers import AutoModel

    from sentio.features.extractor import SentioFeatureExtractor
    from sentio.registration import register

    register()
    model = AutoModel.from_pretrained(out).eval()
    extractor = SentioFeatureExtractor.from_pretrained(out)
    batch = extractor(str(clip), return_tensors="pt")
    steps = batch[extractor.feature_name].shape[1 + (extractor.feature_name == "pixel_values")]
    mask = (torch.arange(steps)[None] < batch["length"][:, None]).long()
    with torch.no_grad():
        here = model(**{extractor.feature_name: batch[extractor.feature_name], "attention_mask": mask}).predictions.mean(0)
    assert np.allclose(here.numpy(), json.loads(first.stdout), atol=1e-5)


@pytest.mark.slow
def test_push_to_hub_offline_fails_before_training(tiny_corpus, tmp_path):
    start = time.perf_counter()
    result = run_python(["train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--push_to_hub",
                         "--hub_model_id", "someone/sentio-test", "--output_dir", str(tmp_path / "run")])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("train.py: error: --push_to_hub needs the Hub")
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "run" / "manifest.csv").exists()


def test_bad_data_is_one_line(tmp_path, monkeypatch, capsys):
    # train.py's __main__ in this process: the same exit status and stderr, without an interpreter start each
    code = run_script(monkeypatch, "train.py", "--model", "ast", "--data", str(tmp_path / "nowhere"),
                      "--output_dir", str(tmp_path / "r"))
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"train.py: error: {tmp_path / 'nowhere'}: no such file or folder; "
        "pass --data DEAM_DIR|EMOMUSIC_DIR|PMEMO_DIR|CSV|manifest.csv")
    code = run_script(monkeypatch, "train.py", "--model", "bert", "--demo", "--output_dir", str(tmp_path / "r"))
    assert code == 2 and "unknown model 'bert'" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_one_model(tiny_corpus, tmp_path):
    """torchrun on a CPU-only machine: one distributed (gloo) run, each process taking half the batches."""
    pytest.importorskip("torch.distributed.run")
    out = tmp_path / "run"
    result = run_python([
        "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
        "--demo_seed", "5", "--checkpoint", str(tiny_checkpoint("ast", tmp_path / "tiny")), "--epochs", "2",
        "--per_device_train_batch_size", "2", "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"),
        "--report_to", "none", "--disable_tqdm", "true",
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    train_songs = (json.loads((out / "data_report.json").read_text())["splits"])["train"]
    state = json.loads((out / "trainer_state.json").read_text())
    # 2 processes x 2 songs per step; a lone process would take twice the steps
    assert state["global_step"] == 2 * (train_songs // 4)
    assert result.stdout.count("test CCC:") == 1
    assert np.isfinite(json.loads((out / "all_results.json").read_text())["test_ccc_mean"])


@pytest.mark.slow
def test_torchrun_workers_die_with_a_launcher_killed_outright(tiny_corpus, tmp_path):
    """torchrun starts each worker in a session of its own: a launcher killed with SIGKILL would
    leave them training on, writing checkpoints into the run a resumed run writes. They die with it."""
    pytest.importorskip("torch.distributed.run")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
               "train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
               "--demo_seed", "5", "--checkpoint", str(tiny_checkpoint("ast", tmp_path / "tiny")), "--epochs", "500",
               "--per_device_train_batch_size", "2", "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"),
               "--report_to", "none", "--disable_tqdm", "true"]
    launcher = subprocess.Popen(command, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / "manifest.csv").is_file() and time.monotonic() < deadline and launcher.poll() is None:
            time.sleep(0.1)
        workers = descendants(launcher.pid)
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)  # the launcher only: the workers are in sessions of their own
        launcher.wait()
    assert (out / "manifest.csv").is_file() and len(workers) >= 2
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


@pytest.mark.slow
def test_probe_run_trains_the_head_on_cached_embeddings_and_scores_like_raw_audio(tiny_corpus, tmp_path):
    """--probe: MARBLE's defaults apply, the encoder pass is cached and reused by a second head, and
    evaluate.py on raw audio (the whole saved model) reproduces the test metrics training computed
    from the cached embeddings."""
    tiny = tiny_checkpoint("mert", tmp_path / "tiny")
    common = ["--model", "mert", "--probe", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
              "--demo_seed", "5", "--checkpoint", str(tiny), "--window_seconds", "0.5", "--epochs", "2",
              "--cache_dir", str(tmp_path / "cache"), "--report_to", "none", "--disable_tqdm", "true"]
    first = run_python(["train.py", *common, "--output_dir", str(tmp_path / "a")])
    assert first.returncode == 0, first.stderr[-3000:]
    assert "probe embeddings" in first.stderr and "computed" in first.stderr
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["probe"] and config["layer"] == "weighted" and config["head_hidden_size"] == 512
    args = json.loads((tmp_path / "a" / "trainer_state.json").read_text())
    assert args["train_batch_size"] == 64  # MARBLE's batch; learning rate 1e-3 below
    assert "learning rate 0.001" in (tmp_path / "a" / "README.md").read_text()
    assert "probe mode" in (tmp_path / "a" / "README.md").read_text()

    second = run_python(["train.py", *common, "--layer", "1", "--learning_rate", "5e-3", "--output_dir", str(tmp_path / "b")])
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reused" in [line for line in second.stderr.splitlines() if "probe embeddings" in line][0]
    assert json.loads((tmp_path / "b" / "config.json").read_text())["layer"] == 1
    assert "learning rate 0.005" in (tmp_path / "b" / "README.md").read_text()  # a given flag wins

    evaluated = run_python(["evaluate.py", "--model_dir", str(tmp_path / "a"), "--bootstrap", "0",
                            "--cache_dir", str(tmp_path / "cache")])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads((tmp_path / "a" / "eval-test" / "eval_report.json").read_text())
    results = json.loads((tmp_path / "a" / "all_results.json").read_text())
    for dim in ("valence", "arousal"):
        assert report["metrics"][dim]["ccc"]["value"] == pytest.approx(results[f"test_ccc_{dim}"], abs=1e-4)


def test_defaults_resolve_after_parsing_whatever_the_flag_spelling(monkeypatch):
    import runpy
    import sys as system

    train = runpy.run_path(str(REPO / "train.py"), run_name="train_script")
    for argv, expected in ((["--model=vit", "--demo"], os.path.join("runs", "vit-demo")),
                           (["--mod", "mert"], os.path.join("runs", "mert")),  # an abbreviation is a spelling too
                           (["--demo", "--model=wav2vec2", "--output_dir=elsewhere"], "elsewhere")):
        monkeypatch.setattr(system, "argv", ["train.py", *argv])
        assert train["parse_args"]()[3].output_dir == expected, argv  # (model, data, synthetic, training, search)
    distill = runpy.run_path(str(REPO / "distill.py"), run_name="distill_script")
    monkeypatch.setattr(system, "argv", ["distill.py", "--teacher", "t", "--student=mobilevit"])
    assert distill["parse_args"]()[-1].output_dir == os.path.join("runs", "student-mobilevit")


@pytest.mark.slow
def test_prepare_caches_exactly_what_train_then_reuses(tiny_corpus, tmp_path):
    tiny = tiny_checkpoint("ast", tmp_path / "tiny")
    data = ["--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16", "--demo_seed", "5",
            "--checkpoint", str(tiny), "--cache_dir", str(tmp_path / "cache")]
    prepared = run_python(["prepare.py", *data, "--features", "ast", "--output_dir", str(tmp_path / "prep")])
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert "fbank features computed" in prepared.stderr
    trained = run_python(["train.py", "--model", "ast", *data, "--epochs", "1", "--output_dir", str(tmp_path / "run"),
                          "--per_device_train_batch_size", "4", "--report_to", "none", "--disable_tqdm", "true"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "fbank features reused" in trained.stderr and "fbank features computed" not in trained.stderr
    recorded = json.loads((tmp_path / "run" / "data_report.json").read_text())["feature_cache"]
    assert recorded == str((tmp_path / "cache").resolve())


@pytest.mark.slow
def test_demo_beside_another_source_trains_without_the_demo_ceiling(tiny_corpus, tmp_path):
    """The demo ceiling describes the demo corpus alone: a run whose test songs also come from
    another source trains, scores and prints without it (it once failed looking up prefixed ids)."""
    from tests.conftest import write_audio

    rows = [{"path": f"audio/c{i}.wav", "valence": round(-0.8 + 0.2 * i, 2), "arousal": round(0.7 - 0.15 * i, 2)}
            for i in range(8)]
    for i in range(8):
        write_audio(tmp_path / "other" / "audio" / f"c{i}.wav", seconds=3.0, sr=16000, seed=40 + i)
    pd.DataFrame(rows).to_csv(tmp_path / "other" / "labels.csv", index=False)
    out = tmp_path / "run"
    result = run_python(["train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
                         "--demo_seed", "5", "--data", str(tmp_path / "other" / "labels.csv"), "--label_scale=-1-1",
                         "--match_audio", "no", "--checkpoint", str(tiny_checkpoint("ast", tmp_path / "tiny")),
                         "--epochs", "1", "--per_device_train_batch_size", "4", "--output_dir", str(out),
                         "--cache_dir", str(tmp_path / "cache"), "--report_to", "none", "--disable_tqdm", "true"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    assert np.isfinite(results["test_ccc_mean"]) and not any("ceiling" in key for key in results)
    assert "test CCC: valence" in result.stdout and "of the ceiling" not in result.stdout
    assert "no demo ceiling: the test songs come from several sources" in result.stderr
    assert set(pd.read_csv(out / "manifest.csv")["dataset"]) == {"demo", "csv"}


@pytest.mark.slow
def test_a_run_that_fails_before_training_says_what_its_folder_holds(tiny_corpus, tmp_path):
    result = run_python(["train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
                         "--demo_seed", "5", "--checkpoint", str(tiny_checkpoint("ast", tmp_path / "tiny")),
                         "--synthetic", str(tmp_path / "no-gan-here"), "--output_dir", str(tmp_path / "run"),
                         "--cache_dir", str(tmp_path / "cache")])
    assert result.returncode == 2
    assert "no synthetic split here" in result.stderr.strip().splitlines()[-1]
    assert "the run stopped before training" in result.stderr and "(no model was saved)" in result.stderr
    assert (tmp_path / "run" / "data_report.json").is_file()  # kept: it explains the data


@pytest.mark.slow
@pytest.mark.parametrize("name, extra", [("ast", ["--target", "both"]),
                                         ("mert", ["--target", "dynamic", "--probe", "--window_seconds", "1.0"])],
                         ids=["ast-both", "mert-probe-dynamic"])
def test_dynamic_target_trains_on_the_2hz_labels_and_scores_curves(tiny_corpus, tmp_path, name, extra):
    out = tmp_path / "run"
    result = run_python(["train.py", "--model", name, "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
                         "--demo_seed", "5", "--checkpoint", str(tiny_checkpoint(name, tmp_path / "tiny")), *extra,
                         "--epochs", "2", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3",
                         "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), "--report_to", "none",
                         "--disable_tqdm", "true"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    for key in ("test_ccc_valence", "test_ccc_arousal", "test_song_pearson_mean", "test_song_rmse_mean",
                "test_static_ccc_mean", "eval_ccc_mean", "test_num_frames"):
        assert np.isfinite(results[key]), key
    assert results["test_num_frames"] > results["test_num_curves"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["target"] == extra[1] and config["input_step_seconds"] > 0
    preprocessor = json.loads((out / "preprocessor_config.json").read_text())
    assert preprocessor["start_grid_seconds"] == 0.5  # prediction cuts the same grid-aligned windows
    if name != "ast":
        return
    evaluated = run_python(["evaluate.py", "--model_dir", str(out), "--bootstrap", "50", "--cache_dir", str(tmp_path / "cache")])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    folder = out / "eval-test"
    dynamic = json.loads((folder / "eval_report.json").read_text())["dynamic"]
    assert dynamic["songs"] == 2 and set(dynamic["picks"]) == {"best", "median", "worst"}
    # the same numbers training reported on these songs' curves
    assert dynamic["metrics"]["mean"]["ccc"]["value"] == pytest.approx(results["test_ccc_mean"], abs=1e-4)
    assert dynamic["metrics"]["mean"]["song_rmse"]["value"] == pytest.approx(results["test_song_rmse_mean"], abs=1e-4)
    curves = pd.read_csv(folder / "predicted_curves.csv", dtype={"song_id": str})
    assert len(curves) == dynamic["frames"] and np.allclose(np.diff(sorted(set(curves["time"]))) % 0.5, 0)
    for figure in ("curves.png", "trajectories.png"):
        assert (folder / figure).is_file(), figure


@pytest.mark.slow
def test_uncertainty_run_is_calibrated_and_evaluated_for_coverage(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    result = run_python(["train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
                         "--demo_seed", "5", "--checkpoint", str(tiny_checkpoint("ast", tmp_path / "tiny")),
                         "--uncertainty", "--disagreement_weight", "1.0", "--epochs", "2", "--per_device_train_batch_size", "4",
                         "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), "--report_to", "none",
                         "--disable_tqdm", "true"])
    assert result.returncode == 0, result.stderr[-3000:]
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["normalized"] and set(calibration["quantiles"]) == {"0.8", "0.9", "0.95"}
    assert calibration["songs"] == 2 and calibration["constant_width"]
    # the train split: enough songs (12) for a rank correlation of the spreads; two test songs are not
    evaluated = run_python(["evaluate.py", "--model_dir", str(out), "--split", "train", "--bootstrap", "100",
                            "--cache_dir", str(tmp_path / "cache")])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    folder = out / "eval-train"
    coverage = json.loads((folder / "eval_report.json").read_text())["coverage"]
    for level in ("0.8", "0.9", "0.95"):
        for dim in ("valence", "arousal"):
            entry = coverage["levels"][level][dim]
            assert 0.0 <= entry["coverage"]["value"] <= 1.0 and entry["mean_width"] > 0
            assert "constant_width" in entry
    assert set(coverage["spread_vs_raters_spearman"]) == {"valence", "arousal"}
    table = pd.read_csv(folder / "predictions.csv")
    for column in ("valence_low_90", "valence_high_90", "arousal_low_95", "valence_spread"):
        assert column in table, column
    assert (table["valence_low_90"] <= table["valence_pred"]).all() and (table["valence_pred"] <= table["valence_high_90"]).all()
    assert (folder / "coverage.png").is_file() and "## Calibrated intervals" in (folder / "report.md").read_text()


def test_half_precision_on_a_cpu_is_said_once(tmp_path, caplog):
    import logging

    from sentio.args import EmotionTrainingArguments

    with caplog.at_level(logging.WARNING, logger="sentio.args"):
        fp16 = EmotionTrainingArguments(output_dir=str(tmp_path), fp16=True)
        bf16 = EmotionTrainingArguments(output_dir=str(tmp_path), bf16=True)
    said = [r.getMessage() for r in caplog.records if r.name == "sentio.args"]
    assert not fp16.fp16 and fp16.use_cpu  # float32 is what a CPU trains in: the flag is dropped, not faked
    assert bf16.bf16  # kept (it works), but slow: the user is told so
    assert len(said) == 2 and "--fp16 needs a GPU" in said[0] and "--bf16 on a CPU" in said[1]
