"""What a newcomer meets in the first hour: README, split sizes, output folders, flags, run paths."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.conftest import REPO
from tests.helpers import run_python, tiny_checkpoint


def test_readme_quick_start_says_how_to_use_the_environment_make_builds():
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first_python = quick.index("python ")
    assert "source .venv/bin/activate" in quick[:first_python] and ".venv/bin/python" in quick[:first_python]


@pytest.mark.slow
def test_too_few_songs_for_a_split_is_one_line_before_training(tiny_corpus, tmp_path):
    """10 clips split 80/10/10 leave one validation song: refused at once, not after training."""
    out = tmp_path / "run"
    result = run_python(["train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
                         "--demo_seed", "5", "--checkpoint", str(tiny_checkpoint("ast", tmp_path / "tiny")),
                         "--split_fractions", "0.88,0.06,0.06", "--epochs", "1", "--output_dir", str(out),
                         "--cache_dir", str(tmp_path / "cache"), "--report_to", "none"])
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: error: 16 songs split (seeded group-level split")
    assert "validation has 1 song (calibration and validation CCC need at least 2)" in last
    assert "test has 1 song (test CCC needs at least 2)" in last and "--split_fractions 0.6,0.2,0.2" in last
    assert "Traceback" not in result.stderr and not (tmp_path / "cache").exists()  # no feature was computed
    assert not list(out.glob("checkpoint-*"))


def test_check_split_sizes_passes_enough_songs_and_names_an_empty_split():
    from sentio.errors import DataError
    from sentio.training.setup import check_split_sizes

    manifest = pd.DataFrame({"song_id": [str(i) for i in range(6)],
                             "split": ["train", "train", "validation", "validation", "test", "test"]})
    check_split_sizes(manifest)
    with pytest.raises(DataError, match=r"6 songs split leave too few: train has 0 songs \(training needs at least 1\)"):
        check_split_sizes(manifest.assign(split=["validation"] * 3 + ["test"] * 3))


@pytest.mark.slow
def test_training_into_a_folder_that_holds_a_run_is_refused(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-450").mkdir(parents=True)
    (out / "eval-test").mkdir()
    common = ["train.py", "--model", "ast", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
              "--demo_seed", "5", "--checkpoint", str(tiny_checkpoint("ast", tmp_path / "tiny")), "--epochs", "1",
              "--per_device_train_batch_size", "4", "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"),
              "--report_to", "none", "--disable_tqdm", "true"]
    result = run_python(common)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"train.py: error: --output_dir {out} already holds a run (checkpoint-450, eval-test): choose another "
        "--output_dir, pass --overwrite_output_dir to train into it anyway, or --resume_from_checkpoint last to "
        "continue it")
    assert not (out / "manifest.csv").exists()
    result = run_python([*common, "--overwrite_output_dir"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_a_failed_run_leaves_no_empty_folder(tmp_path):
    out = tmp_path / "runs" / "ast"
    result = run_python(["train.py", "--model", "ast", "--data", str(tmp_path / "nowhere"), "--output_dir", str(out)])
    assert result.returncode == 2 and "no such file or folder" in result.stderr
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_make_demo_may_train_into_its_folder_again():
    makefile = (REPO / "Makefile").read_text()
    demo = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "--overwrite_output_dir" in demo.splitlines()[0]


def test_a_run_path_before_make_demo_is_one_line_without_the_hub(tmp_path, monkeypatch):
    import time

    from sentio.errors import CheckpointError
    from sentio.inference.loading import load_run

    monkeypatch.chdir(tmp_path)  # a fresh clone: no runs/ yet
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # a Hub attempt would take seconds of retries here
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"^no such run folder runs/ast-demo: train one first \(`make demo`"):
        load_run("runs/ast-demo")
    assert time.perf_counter() - start < 2


def script(*args: str):
    return run_python(list(args), timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("argv, flag", [(["train.py", "--modle", "ast"], "--model"),
                                        (["evaluate.py", "--model_dri", "x"], "--model_dir"),
                                        (["predict.py", "--model_dir", "x", "--timelne", "a.wav"], "--timeline")])
def test_a_mistyped_flag_gets_did_you_mean(argv, flag):
    result = script(*argv)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"{argv[0]}: error: unknown flag {argv[-2] if argv[0] != 'predict.py' else argv[3]}: "
                                                   f"did you mean {flag}?"]


@pytest.mark.slow
def test_help_shows_sentios_flags_and_the_passed_through_ones_behind_help_all():
    short, full = script("train.py", "--help"), script("train.py", "--help-all")
    assert short.returncode == full.returncode == 0
    assert len(short.stdout.splitlines()) < 300 < len(full.stdout.splitlines())
    assert "--per_device_train_batch_size" in short.stdout and "--overwrite_output_dir" in short.stdout
    assert "--adam_beta1" not in short.stdout and "--adam_beta1" in full.stdout
    assert re.search(r"\d+ more flags pass through to transformers.TrainingArguments \(--fp16", short.stdout)
    assert re.search(r"Backbone: ast, wav2vec2, vit, mert\b", short.stdout)  # from the registry
    distill = script("distill.py", "--help")
    assert distill.returncode == 0 and "--help-all" in distill.stdout and "--adam_beta1" not in distill.stdout
    download = script("download_model.py", "--help")
    assert download.stdout.startswith("usage: download_model.py MODEL --output_dir DIR")
    # passed-through flags still parse
    from sentio.args import EmotionTrainingArguments, ModelArguments
    from sentio.cli import parse_dataclasses, parser_for

    _, training = parse_dataclasses(parser_for((ModelArguments, EmotionTrainingArguments)),
                                    ["--adam_beta1", "0.8", "--output_dir", "x"])
    assert training.adam_beta1 == 0.8


def test_summary_says_1_file_and_a_real_time_factor_below_1():
    import sys

    sys.path.insert(0, str(REPO))
    import predict

    tally = predict.Tally(predicted=1, audio_seconds=1.0)
    tally.started -= 4.0  # one second of audio in four
    line = tally.summary("")
    assert line.startswith("predict.py: 1 file (0 failed)") and re.search(r"real-time factor 0\.2\d$", line)
    assert predict.Tally(predicted=2, failed=1).summary("").startswith("predict.py: 3 files (1 failed)")


def test_transformers_list_of_unsharded_layers_is_not_shown(caplog):
    import logging

    from sentio.cli import setup_logging

    setup_logging()
    with caplog.at_level(logging.WARNING):
        logging.getLogger("transformers.distributed.tensor_parallel").warning(
            "The following layers were not sharded: " + ", ".join(f"encoder.layer.*.{i}" for i in range(100)))
        logging.getLogger("transformers.distributed.tensor_parallel").warning("something else")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["something else"]
