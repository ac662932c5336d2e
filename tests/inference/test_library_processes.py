"""A library over several processes (torchrun / accelerate launch, gloo on CPU): the same output as
one process, each file predicted once, and a run killed half-way resumed with another number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sentio.inference.shards import part_path, part_paths, split_by_size
from tests.conftest import REPO, write_audio
from tests.helpers import alive, descendants, free_port

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _predict(launcher: list[str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*launcher, "predict.py", *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=300, **kwargs)


def torchrun() -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port())]


def accelerate_launch() -> list[str]:
    # without a GPU, --multi_gpu still starts one process each through torchrun; predict.py joins them with gloo
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
            "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port())]


def test_split_by_size_is_balanced_and_keeps_the_input_order():
    paths = [f"{i}.wav" for i in range(7)]
    shares = split_by_size(paths, [100, 10, 10, 90, 10, 10, 50], 2)
    assert shares == [["0.wav", "1.wav", "2.wav", "4.wav", "5.wav"], ["3.wav", "6.wav"]]  # 140 bytes each
    assert split_by_size(paths, [1] * 7, 3) == split_by_size(paths, [1] * 7, 3)  # the same on every process
    assert split_by_size(paths[:1], [5], 3) == [["0.wav"], [], []]


@pytest.mark.slow
def test_two_processes_give_the_single_process_output(run, tmp_path):
    music = tmp_path / "music"
    for i in range(8):
        write_audio(music / f"{i:02d}.{('wav', 'flac')[i % 2]}", 0.5 + 0.4 * i, 16000, seed=i)
    args = ["--model_dir", str(run), str(music), "--batch_size", "1"]  # one window a forward: the same floats
    single, double = tmp_path / "one.csv", tmp_path / "two.csv"
    one = _predict([sys.executable], *args, "--num_workers", "1", "--output", str(single))
    assert one.returncode == 0, one.stderr
    two = _predict(torchrun(), *args, "--output", str(double))
    assert two.returncode == 0, two.stderr
    assert double.read_bytes() == single.read_bytes()
    assert not part_paths(double) and sorted(p.name for p in tmp_path.iterdir()) == ["music", "one.csv", "two.csv"]
    summaries = [line for line in two.stderr.splitlines()
                 if line.startswith("predict.py: ") and not line.startswith("predict.py: note: ")]  # notes: short clips
    assert summaries == [f"predict.py: 8 files (0 failed), {summaries[0].split('), ')[1]}"]  # one summary, all files
    again = _predict(torchrun(), *args, "--output", str(double))
    assert "(0 failed, 8 already done)" in again.stderr and double.read_bytes() == single.read_bytes()
    refused = _predict(torchrun(), *args)
    assert refused.returncode != 0 and "give --output FILE.csv or FILE.jsonl" in refused.stderr


@pytest.mark.slow
def test_a_run_killed_half_way_resumes_with_one_process(run, tmp_path):
    music = tmp_path / "music"
    for i in range(16):
        write_audio(music / f"{i:02d}.wav", 6.0, 16000, seed=i)
    output = tmp_path / "out.jsonl"
    args = ["--model_dir", str(run), str(music), "--output", str(output), "--batch_size", "1", "--num_workers", "1"]
    process = subprocess.Popen([*accelerate_launch(), "predict.py", *args], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)

    def finished() -> int:
        return sum(len(p.read_text().splitlines()) for p in part_paths(output))

    try:
        deadline = time.monotonic() + 240
        while finished() < 4 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        workers = descendants(process.pid)  # torchrun gives each its own session: not in the launcher's group
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the launcher, killed outright
        process.wait()
    assert len(workers) >= 2
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)  # the workers died with it (else they would merge late)
    parts = part_paths(output)
    assert parts == [part_path(output, 0, 2), part_path(output, 1, 2)]
    written = sum(len(p.read_text().splitlines()) for p in parts)
    assert 4 <= written < 16, written

    resumed = _predict([sys.executable], *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "already done)" in resumed.stderr.splitlines()[-1]
    files = [json.loads(line)["file"] for line in output.read_text().splitlines()]
    assert sorted(files) == sorted(str(p) for p in music.iterdir())  # no file missing, none twice
    assert not part_paths(output) and not list(tmp_path.glob("out.jsonl.journal*"))
