"""evaluate.py end to end on a tiny saved run: numbers, predictions, pictures, report and errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, write_audio
from tests.tiny import TINY

NUM_CLIPS = 12
SUBSETS = ["2013"] * 4 + ["2014"] * 4 + [""] * 4
SPLITS = ["train"] * 2 + ["test"] * 10
FIGURES = ("scatter.png", "errors.png", "va_plane.png", "quadrants.png")


def run_eval(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, "evaluate.py", *args, "--cache_dir", str(cache)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A trained-looking run folder: tiny AST, its extractor, manifest.csv and a trainer_state.json."""
    from sentio.features.extractor import SentioFeatureExtractor
    from sentio.data.manifest import ManifestReport, write_manifest
    from sentio.models import build_model

    root = tmp_path_factory.mktemp("evalrun")
    run = root / "run"
    build_model("ast", from_scratch=True, config_overrides=TINY["ast"]).save_pretrained(run)
    SentioFeatureExtractor(feature_kind="ast", max_length=64, num_mel_bins=32).save_pretrained(run)
    rng = np.random.default_rng(3)
    rows = []
    for i in range(NUM_CLIPS):
        seconds = 1.0 + 0.25 * (i % 4)  # 1-1.75 s: one to three 0.64 s windows per song
        path = write_audio(root / "audio" / f"{i}.wav", seconds=seconds, sr=16000, seed=i)
        v, a = rng.uniform(-0.9, 0.9, 2)
        rows.append({"song_id": str(100 + i), "path": str(path), "valence": v, "arousal": a, "split": SPLITS[i],
                     "subset": SUBSETS[i], "duration": seconds, "sample_rate": 16000, "channels": 1})
    write_manifest(pd.DataFrame(rows), ManifestReport(source="test", reused=True), run)
    history = [{"epoch": e / 2, "step": 5 * e, "loss": 1.0 / e} for e in range(1, 7)]
    history += [{"epoch": float(e), "step": 10 * e, "eval_loss": 0.8 / e, "eval_ccc_valence": 0.1 * e,
                 "eval_ccc_arousal": 0.12 * e, "eval_ccc_mean": 0.11 * e} for e in range(1, 4)]
    (run / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    return run


@pytest.fixture(scope="module")
def song_eval(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("songeval") / "out"
    result = run_eval(["--model_dir", str(tiny_run), "--output_dir", str(out), "--bootstrap", "200", "--seed", "1"],
                      tiny_run.parent / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CCC valence" in result.stdout
    return out


def direct_song_predictions(run: Path, paths: dict[str, str]) -> dict[str, np.ndarray]:
    """Each song's windows through the model in this process, averaged (what evaluation should do)."""
    import torch
    from transformers import AutoModel

    from sentio.features.extractor import SentioFeatureExtractor
    from sentio.registration import register

    register()
    model = AutoModel.from_pretrained(run).eval()
    extractor = SentioFeatureExtractor.from_pretrained(run)
    out = {}
    for song, path in paths.items():
        batch = extractor(path, return_tensors="pt")
        x = batch[extractor.feature_name]
        mask = (torch.arange(x.shape[1])[None] < batch["length"][:, None]).long()
        with torch.no_grad():
            out[song] = model(**{extractor.feature_name: x, "attention_mask": mask}).predictions.mean(0).numpy()
    return out


@pytest.mark.slow
def test_report_matches_predictions_and_model(song_eval, tiny_run):
    from sentio.data.labels import QUADRANTS, quadrant
    from sentio.metrics import DIMENSIONS, METRICS, regression_metrics

    report = json.loads((song_eval / "eval_report.json").read_text())
    table = pd.read_csv(song_eval / "predictions.csv", dtype={"song_id": str, "subset": str}, keep_default_na=False)
    assert list(table.columns) == ["song_id", "subset", "valence_true", "arousal_true", "valence_pred",
                                   "arousal_pred", "quadrant_true", "quadrant_pred"]
    assert report["split"] == "test" and report["level"] == "song" and report["model_dir"] == str(tiny_run)
    assert report["counts"]["songs"] == len(table) == SPLITS.count("test")
    assert report["counts"]["windows"] > report["counts"]["songs"]

    # Same numbers as the training metrics code on the written predictions.
    pred = table[["valence_pred", "arousal_pred"]].to_numpy()
    true = table[["valence_true", "arousal_true"]].to_numpy()
    direct = regression_metrics(pred, true)
    for dim in (*DIMENSIONS, "mean"):
        for metric in METRICS:
            entry = report["metrics"][dim][metric]
            assert entry["value"] == pytest.approx(direct[f"{metric}_{dim}"], abs=1e-5), (dim, metric)
            assert entry["ci_low"] <= entry["ci_high"], (dim, metric)
            if entry["ci_method"] == "percentile":  # BCa corrects for bias and may exclude the estimate
                assert entry["ci_low"] <= entry["value"] + 1e-9 <= entry["ci_high"] + 2e-9, (dim, metric)
        for metric in ("rmse", "mae"):
            nine, unit = report["metrics_1_9"][dim][metric], report["metrics"][dim][metric]
            assert nine["value"] == pytest.approx(4 * unit["value"], rel=1e-6)
            assert nine["ci_high"] == pytest.approx(4 * unit["ci_high"], rel=1e-6)

    # Song predictions = the model's windows averaged per song.
    manifest = pd.read_csv(tiny_run / "manifest.csv", dtype={"song_id": str})
    paths = dict(zip(manifest["song_id"], manifest["path"]))
    expected = direct_song_predictions(tiny_run, {s: paths[s] for s in table["song_id"]})
    for _, row in table.iterrows():
        np.testing.assert_allclose(row[["valence_pred", "arousal_pred"]].to_numpy(float), expected[row["song_id"]], atol=1e-4)
        label = manifest.set_index("song_id").loc[row["song_id"], ["valence", "arousal"]].to_numpy(float)
        np.testing.assert_allclose(row[["valence_true", "arousal_true"]].to_numpy(float), label, atol=1e-5)

    # Subsets (empty subset rows are left out) and quadrants.
    assert sorted(report["subsets"]) == ["2013", "2014"]
    assert report["subsets"]["2014"]["songs"] == (table["subset"] == "2014").sum()
    quad = report["quadrants"]
    assert quad["labels"] == list(QUADRANTS)
    assert np.sum(quad["confusion"]) == len(table)
    assert quad["accuracy"] == pytest.approx((table["quadrant_true"] == table["quadrant_pred"]).mean())
    assert (table["quadrant_pred"] == quadrant(table["valence_pred"], table["arousal_pred"])).all()


@pytest.mark.slow
def test_pictures_and_markdown(song_eval):
    from PIL import Image

    report = json.loads((song_eval / "eval_report.json").read_text())
    assert "training_curves.png" in report["figures"].values()
    for name in (*FIGURES, "training_curves.png"):
        with Image.open(song_eval / name) as image:
            image.verify()
        with Image.open(song_eval / name) as image:
            assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 300
            assert len(np.unique(np.asarray(image.convert("L")))) > 10, f"{name} looks blank"
    md = (song_eval / "report.md").read_text()
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", md)
    assert set(links) == {*FIGURES, "training_curves.png"}
    assert all((song_eval / link).is_file() for link in links)
    assert "## By subset" in md and "| 2013 |" in md and "Quadrants" in md and "[" in md.split("| valence |")[1]


@pytest.mark.slow
def test_per_window_without_training_log(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "trainer_state.json").unlink()
    result = run_eval(["--model_dir", str(run), "--per_window", "--bootstrap", "50"], tiny_run.parent / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    out = run / "eval-test-windows"  # the default folder of a window-level report
    assert not (run / "eval-test").exists()  # it never replaces the song-level report
    report = json.loads((out / "eval_report.json").read_text())
    table = pd.read_csv(out / "predictions.csv", dtype={"song_id": str})
    assert report["level"] == "window" and "window" in table.columns
    assert report["counts"]["scored"] == report["counts"]["windows"] == len(table) > report["counts"]["songs"]
    assert not (out / "training_curves.png").exists()
    assert any("training curves skipped" in n for n in report["notes"])
    assert all((out / f).is_file() for f in FIGURES)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no_config", "empty_split"])
def test_bad_input_exits_2_with_one_line(case, tiny_run, tmp_path):
    args = ["--model_dir", str(tmp_path)] if case == "no_config" else ["--model_dir", str(tiny_run), "--split", "validation",
                                                                        "--output_dir", str(tmp_path / "out")]
    result = run_eval(args, tmp_path / "cache")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("evaluate.py: error:")]
    assert len(lines) == 1 and ("config.json" in lines[0] if case == "no_config" else "validation" in lines[0])
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_help_lists_the_flags():
    result = subprocess.run([sys.executable, "evaluate.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    for flag in ("--model_dir", "--data", "--demo", "--split", "--output_dir", "--per_window", "--bootstrap", "--seed"):
        assert flag in result.stdout


def test_song_bootstrap_is_scipys_bca_over_songs():
    from scipy import stats

    from sentio.evaluation.report import song_bootstrap

    rng = np.random.default_rng(3)
    values = rng.normal(size=40)
    songs = [f"s{i}" for i in range(40)]  # one row per song: resampling songs is resampling rows
    got = song_bootstrap(lambda rows: np.array([values[rows].mean()]), songs, draws=500, seed=7)
    expected = stats.bootstrap((values,), np.mean, n_resamples=500, method="BCa", rng=np.random.default_rng(7))
    assert got[0].method == "BCa"
    assert (got[0].low, got[0].high) == pytest.approx(tuple(expected.confidence_interval), abs=1e-12)
    # a song's windows travel together: duplicating every row changes nothing
    doubled = song_bootstrap(lambda rows: np.array([np.repeat(values, 2)[rows].mean()]),
                             [s for s in songs for _ in range(2)], draws=500, seed=7)
    assert (doubled[0].low, doubled[0].high) == pytest.approx((got[0].low, got[0].high), abs=1e-12)
    constant = song_bootstrap(lambda rows: np.array([1.0]), songs, draws=100, seed=0)
    assert constant[0].method == "percentile" and constant[0].low == constant[0].high == 1.0
    assert song_bootstrap(lambda rows: np.array([1.0]), ["one"], draws=100, seed=0) is None


def test_curve_bootstrap_statistic_from_sums_equals_recomputing_the_metrics():
    from sentio.evaluation.report import CURVE_KEYS, curve_resample_statistic
    from sentio.metrics import DIMENSIONS, curve_list_metrics

    rng = np.random.default_rng(0)
    lengths = [1, 5, 12, 30, 7, 20]
    trues = [rng.uniform(-1, 1, (n, 2)) for n in lengths]
    preds = [t * 0.6 + rng.normal(0, 0.3, t.shape) for t in trues]
    preds[2][:, 0] = 0.25  # a constant predicted curve: its r is undefined and left out
    keys = [f"{k}_{d}" for k in CURVE_KEYS for d in (*DIMENSIONS, "mean")]
    statistic = curve_resample_statistic(preds, trues, keys)
    for draw in (np.arange(6), np.array([3, 3, 0, 5, 2, 2]), np.array([1, 4])):
        expected = curve_list_metrics([preds[i] for i in draw], [trues[i] for i in draw])
        np.testing.assert_allclose(statistic(draw), [expected[k] for k in keys], rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_another_dataset_leaves_out_the_songs_the_run_trained_on(tiny_run, tmp_path):
    """--data OTHER: OTHER's test songs that are the run's train songs (here the same file) are left out and counted."""
    manifest = pd.read_csv(tiny_run / "manifest.csv", dtype=str)
    trained = manifest.loc[manifest["split"] == "train", "path"].iloc[0]
    fresh = [write_audio(tmp_path / "other" / f"n{i}.wav", seconds=1.5, sr=16000, seed=50 + i) for i in range(3)]
    rows = [f"{trained},0.1,0.2,test", *[f"{p},-0.1,0.3,test" for p in fresh]]
    (tmp_path / "other.csv").write_text("\n".join(["path,valence,arousal,split", *rows]) + "\n")
    out = tmp_path / "eval"
    result = run_eval(["--model_dir", str(tiny_run), "--data", str(tmp_path / "other.csv"), "--label_scale=-1-1",
                       "--output_dir", str(out), "--bootstrap", "0", "--match_audio", "no"], tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "left out 1 songs the run trained on" in result.stdout
    report = json.loads((out / "eval_report.json").read_text())
    assert report["left_out_seen_in_training"]["count"] == 1 and report["counts"]["scored"] == 3
    assert report["left_out_seen_in_training"]["left_out"][0]["run_split"] == "train"


def test_song_bootstrap_statistic_from_sums_equals_recomputing_the_metrics():
    from sentio.evaluation.report import song_sums_statistic
    from sentio.metrics import DIMENSIONS, METRICS, regression_metrics

    rng = np.random.default_rng(1)
    songs = [f"s{i}" for i, n in enumerate([1, 3, 2, 4, 1, 2]) for _ in range(n)]  # window level: rows per song
    true = rng.uniform(-1, 1, (len(songs), 2))
    pred = true * 0.5 + rng.normal(0, 0.3, true.shape)
    pred[songs.index("s4"), 0] = 0.3  # with s0's valence also 0.3, a draw of {s0, s4} has constant predictions
    pred[songs.index("s0"), 0] = 0.3
    keys = [f"{m}_{d}" for m in METRICS for d in (*DIMENSIONS, "mean")]
    statistic = song_sums_statistic(pred, true, songs, keys)
    order = list(dict.fromkeys(songs))
    for draw in (np.arange(6), np.array([3, 3, 0, 5, 2, 2]), np.array([1, 1]), np.array([0, 4]), np.array([4])):
        rows = np.concatenate([[i for i, s in enumerate(songs) if s == order[k]] for k in draw])
        expected = regression_metrics(pred[rows], true[rows])
        np.testing.assert_allclose(statistic(draw), [expected[k] for k in keys], rtol=1e-9, atol=1e-9)


def test_bootstrap_of_the_song_metrics_takes_well_under_a_second():
    """The report's bootstrap (1000 draws, BCa and percentile) for 10 songs: from sums, not per draw."""
    import time

    from sentio.evaluation.report import metrics_with_ci

    rng = np.random.default_rng(2)
    true = rng.uniform(-1, 1, (10, 2))
    pred = true * 0.7 + rng.normal(0, 0.2, true.shape)
    start = time.process_time()
    unit, _ = metrics_with_ci(pred, true, [str(i) for i in range(10)], draws=1000, seed=0)
    assert time.process_time() - start < 2.0  # per-draw scikit-learn calls took ~40 s here
    assert unit["mean"]["ccc"]["ci_low"] < unit["mean"]["ccc"]["value"] < unit["mean"]["ccc"]["ci_high"]


@pytest.mark.slow
def test_split_all_scores_every_song_and_one_song_is_na_never_zero(tiny_run, tmp_path):
    result = run_eval(["--model_dir", str(tiny_run), "--split", "all", "--output_dir", str(tmp_path / "all"),
                       "--bootstrap", "50"], tiny_run.parent / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "all" / "eval_report.json").read_text())
    assert report["split"] == "all" and report["counts"]["songs"] == NUM_CLIPS
    assert report["metrics"]["mean"]["ccc"]["songs"] == NUM_CLIPS
    assert f"all ({NUM_CLIPS} songs)" in result.stdout

    # a split of one song: CCC, r and R2 are undefined there, RMSE is not
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    manifest = pd.read_csv(run / "manifest.csv", dtype={"song_id": str})
    manifest.loc[manifest.index[2], "split"] = "validation"
    manifest.to_csv(run / "manifest.csv", index=False)
    result = run_eval(["--model_dir", str(run), "--split", "validation", "--bootstrap", "50"], tiny_run.parent / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "validation (1 song) CCC valence n/a  arousal n/a  mean n/a" in result.stdout
    assert "need at least 2 songs" in result.stderr
    report = json.loads((run / "eval-validation" / "eval_report.json").read_text())
    for metric in ("ccc", "pearson", "r2"):
        assert report["metrics"]["valence"][metric]["value"] is None
    assert report["metrics"]["valence"]["rmse"]["value"] > 0 and report["metrics"]["valence"]["rmse"]["songs"] == 1
    md = (run / "eval-validation" / "report.md").read_text()
    assert "| valence | n/a | n/a | n/a |" in md and "rests on 1 song (" in md
