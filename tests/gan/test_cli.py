"""train_gan.py end to end on a tiny CSV corpus, then train.py --synthetic on its output."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import soundfile as sf

from tests.conftest import write_audio
from tests.test_train_cli import run, tiny_checkpoint


def _corpus(root):
    rows = []
    for i in range(12):
        path = write_audio(root / "audio" / f"song{i:02d}.wav", seconds=2.0, sr=16000, seed=i)
        split = "train" if i < 8 else ("validation" if i < 10 else "test")
        rows.append({"path": f"audio/{path.name}", "valence": round(-0.9 + 0.15 * i, 3),
                     "arousal": round(0.8 - 0.12 * i, 3), "split": split})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def test_train_gan_then_train_with_synthetic(tmp_path):
    csv = _corpus(tmp_path)
    tiny = tiny_checkpoint("ast", tmp_path / "tiny")
    common = ["--data", str(csv), "--label_scale=-1-1", "--cache_dir", str(tmp_path / "cache")]
    train = ["train.py", "--model", "ast", *common, "--checkpoint", str(tiny), "--epochs", "1",
             "--per_device_train_batch_size", "4", "--disable_tqdm", "true", "--report_to", "none"]

    # a real-only regressor for the quality report's embeddings
    result = run([*train, "--output_dir", str(tmp_path / "regressor")])
    assert result.returncode == 0, result.stderr[-3000:]

    gan = tmp_path / "gan"
    result = run(["train_gan.py", *common, "--checkpoint", str(tiny), "--epochs", "2", "--num_synthetic", "16",
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

    out = tmp_path / "mixed"
    result = run([*train, "--output_dir", str(out), "--synthetic", str(gan), "--synthetic_ratio", "1"])
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "all_results.json").read_text())
    assert results["synthetic_rows"] == 8 and np.isfinite(results["test_ccc_mean"])
    assert results["test_num_songs"] == 2 and results["eval_num_songs"] == 2  # real songs only
    manifest = pd.read_csv(out / "manifest.csv")
    assert not manifest["song_id"].astype(str).str.startswith("syn-").any()
    assert "synthetic GAN windows" in (out / "README.md").read_text()

    # a run whose features differ from the synthetic ones is refused in one line
    result = run([*train, "--output_dir", str(tmp_path / "bad"), "--synthetic", str(gan), "--dataset_stats"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("train.py: error: ")
    assert "synthetic features were made with mean=-4.26" in result.stderr.splitlines()[-1]


def test_wav2vec2_is_refused_in_one_line(tmp_path):
    result = run(["train_gan.py", "--model", "wav2vec2", "--demo", "--output_dir", str(tmp_path / "g")])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "train_gan.py: error: --model wav2vec2 reads waveform features, not spectrograms: the GAN imitates spectrogram "
        "features (use --model ast or vit)")
