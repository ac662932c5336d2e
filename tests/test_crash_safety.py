"""Finished work survives a kill: real processes, real SIGKILLs, then a rerun.

- training killed mid-run and resumed ends with exactly the weights and metrics of an
  uninterrupted run with the same seed;
- a feature or embedding cache is never read half-written, and two processes that build the same
  cache at once build it once;
- a teacher-output cache killed mid-computation is recomputed whole.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from tests.conftest import REPO, write_audio
from tests.helpers import run_python, tiny_checkpoint

pytestmark = pytest.mark.slow  # kills child processes mid-write

# Builds the features of N slow clips: each decode sleeps, so a kill lands mid-pass.
BUILD = """
import json, sys, time
import pandas as pd
import sentio.features.cache as fc
from sentio.features.extractor import SentioFeatureExtractor

audio_dir, cache, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
real = fc.load_audio
def slow(path, rate):
    time.sleep(delay)
    return real(path, rate)
fc.load_audio = slow
paths = sorted(str(p) for p in __import__("pathlib").Path(audio_dir).glob("*.wav"))
manifest = pd.DataFrame({"song_id": [f"s{i}" for i in range(len(paths))], "path": paths})
ds, report = fc.build_feature_dataset(manifest, SentioFeatureExtractor("fbank", max_length=64), cache, batch_size=1)
print(json.dumps({"windows": len(ds), "reused": report.reused, "cache_dir": report.cache_dir,
                  "first": ds.with_format("numpy")[0]["input_values"].sum().item()}))
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    for i in range(12):
        write_audio(folder / f"{i:02d}.wav", seconds=1.0, sr=16000, seed=i)
    return folder


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def wait_for(condition, timeout: float = 120.0, process: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended first: {process.stderr.read()[-2000:]}")
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_killed_feature_pass_is_never_read_and_the_rerun_completes(clips, tmp_path):
    cache = tmp_path / "cache"
    victim = start("-c", BUILD, str(clips), str(cache), "0.3")
    wait_for(lambda: any(p.is_file() for p in cache.glob("fbank-*.partial-*/*")), process=victim)  # writing
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert [p.name for p in cache.glob("fbank-*") if ".partial-" not in p.name and not p.name.endswith(".lock")] == []

    rerun = subprocess.run([sys.executable, "-c", BUILD, str(clips), str(cache), "0"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    result = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert result["windows"] == 24 and not result["reused"]  # 2 windows of 0.64 s per clip
    assert not list(cache.glob("*.partial-*"))  # the killed run's leftovers are gone
    assert json.loads((Path(result["cache_dir"]) / "done.json").read_text())["clips"] == 12


def test_two_processes_building_one_cache_build_it_once(clips, tmp_path):
    cache = tmp_path / "cache"
    first, second = (start("-c", BUILD, str(clips), str(cache), "0.05") for _ in range(2))
    outputs = []
    for process in (first, second):
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-2000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(o["reused"] for o in outputs) == [False, True]  # one computed, the other waited and reused
    assert outputs[0]["cache_dir"] == outputs[1]["cache_dir"] and outputs[0]["first"] == outputs[1]["first"]
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1


TEACHER = """
import sys, time
import numpy as np
from datasets import Dataset
import sentio.distill.teacher as teacher
from sentio.features.extractor import SentioFeatureExtractor

folder, cache, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
n = 8
features = Dataset.from_dict({"song_id": [f"s{i}" for i in range(n)], "clip": list(range(n)), "window": [0] * n,
                              "start": [0.0] * n, "length": [4] * n,
                              "input_values": np.ones((n, 4, 3), np.float32).tolist()})
def runner(batch):
    time.sleep(delay)
    values = batch["input_values"].sum(dim=(1, 2)).numpy()[:, None]
    return {"predictions": np.repeat(values, 2, axis=1), "embedding": np.repeat(values, 3, axis=1)}
out, path, reused = teacher.cached_teacher_outputs(runner, folder, features, SentioFeatureExtractor("fbank"),
                                                   cache + "/fbank-x", cache, batch_size=1)
print(reused, float(out.predictions.sum()), path)
"""


def test_killed_teacher_pass_leaves_no_cache_and_the_rerun_computes_it_whole(tmp_path):
    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (teacher_dir / name).write_text("{}")
    cache = tmp_path / "cache"
    victim = start("-c", TEACHER, str(teacher_dir), str(cache), "0.5")
    wait_for(lambda: (cache / "teacher.lock").exists() or any(cache.glob("*.lock")), process=victim)
    time.sleep(1.0)  # inside the teacher pass
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not list(cache.glob("teacher-*.npz"))
    done = subprocess.run([sys.executable, "-c", TEACHER, str(teacher_dir), str(cache), "0"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    reused, total, _ = done.stdout.split()
    assert reused == "False" and float(total) == 8 * 12 * 2  # every window, computed whole
    again = subprocess.run([sys.executable, "-c", TEACHER, str(teacher_dir), str(cache), "0"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert again.stdout.split()[0] == "True"


def test_training_killed_mid_epoch_resumes_to_the_uninterrupted_result(tiny_corpus, tmp_path):
    """kill -9 during the second epoch, rerun with --resume_from_checkpoint last (the first epoch's
    checkpoint): the final weights and test metrics equal those of an uninterrupted run with the same
    seed, bit for bit."""
    corpus = tiny_corpus
    tiny = tiny_checkpoint("ast", tmp_path / "tiny")
    common = ["train.py", "--model", "ast", "--demo", "--demo_dir", str(corpus), "--demo_num_clips", "16",
              "--demo_seed", "5", "--checkpoint", str(tiny), "--epochs", "2", "--train_windows", "all",
              "--per_device_train_batch_size", "8", "--learning_rate", "1e-3", "--seed", "3",
              "--save_total_limit", "5", "--cache_dir", str(tmp_path / "cache"), "--report_to", "none",
              "--disable_tqdm", "true"]
    whole = run_python([*common, "--output_dir", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr[-3000:]

    killed = tmp_path / "killed"
    victim = start(*common, "--output_dir", str(killed))
    first_epoch = lambda: [c for c in killed.glob("checkpoint-*") if (c / "trainer_state.json").is_file()]  # noqa: E731
    wait_for(lambda: len(first_epoch()) == 1, timeout=300, process=victim)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (killed / "model.safetensors").exists()  # it really died before the end
    resumed = run_python([*common, "--output_dir", str(killed), "--resume_from_checkpoint", "last"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected, got = load_file(tmp_path / "whole" / "model.safetensors"), load_file(killed / "model.safetensors")
    assert set(expected) == set(got)
    for name, tensor in expected.items():
        np.testing.assert_array_equal(got[name], tensor, err_msg=name)
    a = json.loads((tmp_path / "whole" / "all_results.json").read_text())
    b = json.loads((killed / "all_results.json").read_text())
    for key in ("test_ccc_valence", "test_ccc_arousal", "test_rmse_mean", "eval_ccc_mean"):
        assert a[key] == b[key], key


def test_resume_without_a_checkpoint_is_one_line(tmp_path):
    result = run_python(["train.py", "--model", "ast", "--demo", "--output_dir", str(tmp_path / "empty"),
                         "--resume_from_checkpoint", "last"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("train.py: error: --resume_from_checkpoint last: ")
