"""train_gan.py end to end on a tiny CSV corpus, then train.py --synthetic on its output."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tests.gan.helpers import labelled_clips
from tests.helpers import run_python, tiny_checkpoint

pytestmark = pytest.mark.slow  # train_gan.py and train.py as child processes


def test_train_gan_then_train_with_synthetic(tmp_path):
    csv = labelled_clips(tmp_path, seconds=2.0)
    tiny = tiny_checkpoint("ast", tmp_path / "tiny")
    common = ["--data", str(csv), "--label_scale=-1-1", "--cache_dir", str(tmp_path / "cache")]
    train = ["train.py", "--model", "ast", *common, "--checkpoint", str(tiny), "--epochs", "1",
             "--per_device_train_batch_size", "4", "--disable_tqdm", "true", "--report_to", "none"]

    # a real-only regressor for the quality report's embeddings
    result = run_python([*train, "--output_dir", str(tmp_path / "regressor")])
    assert result.returncode == 0, result.stderr[-3000:]

    gan = tmp_path / "gan"
    result = run_python(["train_gan.py", *common, "--checkpoint", str(tiny), "--epochs", "2", "--num_synthetic", "16",
                         "--output_dir", str(gan), "--gan_height", "16", "--gan_width", "16", "--gan_channels", "8",
                         "--z_dim", "16", "--batch_size", "8", "--num_threads", "1", "--num_audio", "2", "--num_grid", "2",
                         "--regressor", str(tmp_path / "regressor"), "--tstr_epochs", "1", "--progress", "false"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((gan / "gan_report.json").read_text())
    assert report["epochs_done"] == 2 and report["train_songs"] == 8 and report["num_synthetic"] == 16
    assert len(report["history"]) == 2 and all(math.isfinite(h["d_loss"]) for h in report["history"])
    for name in ("gan_checkpoint.pt", "synthetic/dataset_info.json", "synthetic/preprocessor_config.json",
                 "synthetic_manifest.csv", "spectrogram_grid.png", "label_distributions.png", "gan_quality.json"):
        assert (gan / name).is_file(), name
    assert list(gan.glob("tensorboard/events.out.tfevents.*"))
    wavs = sorted(gan.glob("audio/*.wav"))
    assert [w.name.split("-")[0] for w in wavs] == ["real", "real", "synthetic", "synthetic"]
    assert sf.info(wavs[-1]).samplerate == 16000
    quality = json.loads((gan / "gan_quality.json").read_text())
    for family in ("random_cnn", "regressor"):
        for pair in ("real_vs_real", "synthetic"):
            assert all(math.isfinite(quality[family][pair][k]) for k in ("fd", "fd_inf", "kid", "precision")), family
    assert 0 < quality["label_consistency"]["synthetic"]["mae_mean"] < 2
    assert math.isfinite(quality["tstr"]["train_synthetic_test_real"]["test_ccc_mean"])
    assert quality["tstr"]["train_synthetic_test_real"]["test_num_songs"] == 2
    assert "mean_spectrum_correlation" in quality["spectral"]["synthetic"]

    # The conditioning aids and the filter, on 4 of the 8 train songs; the regressor steers here too.
    songs = pd.read_csv(tmp_path / "regressor" / "manifest.csv").query("split == 'train'")["song_id"].astype(str)
    (tmp_path / "songs.txt").write_text("\n".join(songs[:4]) + "\n")
    steered = tmp_path / "steered"
    result = run_python(["train_gan.py", *common, "--checkpoint", str(tiny), "--epochs", "1", "--num_synthetic", "24",
                         "--output_dir", str(steered), "--gan_height", "16", "--gan_width", "16", "--gan_channels", "8",
                         "--z_dim", "16", "--batch_size", "4", "--num_threads", "1", "--num_audio", "1", "--num_grid", "1",
                         "--train_songs", str(tmp_path / "songs.txt"), "--guide_regressor", str(tmp_path / "regressor"),
                         "--aux_weight", "0.5", "--consistency_weight", "1", "--filter_consistency", "0.6",
                         "--track_every", "1", "--track_samples", "8", "--progress", "false"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((steered / "gan_report.json").read_text())
    assert report["train_songs"] == 4 and {"d_aux", "g_aux", "g_consistency"} <= set(report["history"][0])
    counts = report["filter_consistency"]
    assert counts["labels_requested"] == 24 and counts["windows_kept"] == report["num_synthetic"] > 0
    assert counts["windows_kept"] + counts["labels_dropped"] == 24
    assert json.loads((steered / "gan_quality.json").read_text())["filter_consistency"] == counts
    from datasets import load_from_disk

    from sentio.gan.report import regressor_outputs
    from sentio.inference.loading import load_run

    written = load_from_disk(str(steered / "synthetic")).with_format("numpy")
    predicted = regressor_outputs(load_run(tmp_path / "regressor"), written["input_values"])[1]
    assert (np.abs(predicted - written["labels"]) <= 0.6 + 1e-5).all()

    out = tmp_path / "mixed"
    result = run_python([*train, "--output_dir", str(out), "--synthetic", str(gan), "--synthetic_ratio", "1"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    assert results["synthetic_rows"] == 8 and np.isfinite(results["test_ccc_mean"])
    assert results["test_num_songs"] == 2 and results["eval_num_songs"] == 2  # real songs only
    manifest = pd.read_csv(out / "manifest.csv")
    assert not manifest["song_id"].astype(str).str.startswith("syn-").any()
    assert "synthetic GAN windows" in (out / "README.md").read_text()

    # a run whose features differ from the synthetic ones is refused in one line
    result = run_python([*train, "--output_dir", str(tmp_path / "bad"), "--synthetic", str(gan), "--dataset_stats"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("train.py: error: ")
    assert "synthetic features were made with mean=-4.26" in result.stderr.splitlines()[-1]


def test_wav2vec2_is_refused_in_one_line(tmp_path):
    result = run_python(["train_gan.py", "--model", "wav2vec2", "--demo", "--output_dir", str(tmp_path / "g")])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "train_gan.py: error: --model wav2vec2 reads waveform features, not spectrograms: the GAN imitates spectrogram "
        "features (use --model ast or vit or clap)")


def test_kill_9_mid_training_then_the_rerun_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    import torch

    from tests.conftest import REPO

    csv = labelled_clips(tmp_path, seconds=2.0)
    tiny = tiny_checkpoint("ast", tmp_path / "tiny")
    gan = tmp_path / "gan"
    argv = ["train_gan.py", "--data", str(csv), "--label_scale=-1-1", "--cache_dir", str(tmp_path / "cache"),
            "--checkpoint", str(tiny), "--epochs", "30", "--num_synthetic", "4", "--output_dir", str(gan),
            "--gan_height", "16", "--gan_width", "16", "--gan_channels", "4", "--z_dim", "8", "--batch_size", "8",
            "--num_threads", "1", "--num_audio", "1", "--num_grid", "1", "--quality_samples", "16",
            "--track_every", "5", "--track_samples", "8", "--progress", "false"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (gan / "gan_checkpoint.pt").is_file() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait()
    assert first.returncode == -signal.SIGKILL  # killed, not finished
    saved = torch.load(gan / "gan_checkpoint.pt", weights_only=False)  # whole, whatever the moment of the kill
    assert 1 <= saved["epoch"] < 30

    result = run_python(argv)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed_at = int(result.stderr.split("resumed from")[1].split("at epoch")[1].split()[0])
    assert resumed_at >= saved["epoch"]
    report = json.loads((gan / "gan_report.json").read_text())
    assert report["epochs_done"] == 30 and len(report["history"]) == 30
    final = torch.load(gan / "gan_checkpoint.pt", weights_only=False)
    assert final["epoch"] == 30 and final["best"]["fd"] == min(h["quality_fd"] for h in report["history"]
                                                                 if "quality_fd" in h)
    assert torch.load(gan / "gan_best.pt", weights_only=False)["epoch"] == final["best"]["epoch"]
    assert not list(gan.glob("*.tmp")) and (gan / "synthetic" / "dataset_info.json").is_file()
