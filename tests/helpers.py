"""Helpers the test modules share: running a script (in this process, or as a real child process)
and the tiny checkpoints and results several modules need. Test modules import helpers from here,
tests/tiny.py or tests/conftest.py, never from one another."""

from __future__ import annotations

import os
import runpy
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.tiny import TINY

# Every script a test starts runs offline: nothing is downloaded from the Hugging Face Hub.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def free_port() -> int:
    """A TCP port nobody listens on now: tests that start servers or process groups each take
    their own, so two of them running at once (pytest -n) never meet on a fixed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every living process below `pid`, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting for its reaper does not)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_script(monkeypatch: pytest.MonkeyPatch, script: str, *args: str) -> int:
    """A top-level script's __main__ in this process (no interpreter or torch start-up): its exit
    status. What it printed is in capsys."""
    monkeypatch.setattr(sys, "argv", [script, *args])
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / script), run_name="__main__")
    return exit_info.value.code


def run_python(args: list[str], env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python ARGS` as a child process in the repository root (the real command line, a real exit)."""
    full_env = {**os.environ, **OFFLINE, **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)


def tiny_checkpoint(name: str, folder: Path, **overrides) -> Path:
    """A tiny from-scratch checkpoint of backbone `name` saved in the real on-disk format."""
    from sentio.models import build_model

    build_model(name, from_scratch=True, config_overrides={**TINY[name], **overrides}).save_pretrained(folder)
    return folder


# A new process that loads a run through the public path (`import sentio`, AutoModel) and prints the
# mean prediction over the windows of one clip: python -c PREDICT RUN CLIP.
PREDICT = """
import json, sys
import numpy as np, torch
import sentio  # the user's one line: AutoModel then knows Sentio's models
from transformers import AutoModel
from sentio.features.extractor import SentioFeatureExtractor
model = AutoModel.from_pretrained(sys.argv[1]).eval()
extractor = SentioFeatureExtractor.from_pretrained(sys.argv[1])
batch = extractor(sys.argv[2], return_tensors="pt")
mask = (torch.arange(batch[extractor.feature_name].shape[1 + (extractor.feature_name == "pixel_values")])[None] < batch["length"][:, None]).long()
with torch.no_grad():
    out = model(**{extractor.feature_name: batch[extractor.feature_name], "attention_mask": mask})
print(json.dumps(out.predictions.mean(0).tolist()))
"""

# The optional fields a calibrated, dynamic run adds to a result (EmotionPredictor's song_result).
CALIBRATED = {
    "scale": "[-1, 1]",
    "curve": {"times": [0.5, 1.0, 1.5, 2.0], "valence": [0.1, 0.2, 0.3, 0.25], "arousal": [-0.2, -0.1, 0.0, 0.1]},
    "intervals": {level: {"valence": [0.2 - w, 0.2 + w], "arousal": [-0.05 - w, -0.05 + w]}
                  for level, w in (("80", 0.1), ("90", 0.15), ("95", 0.2))},
    "quadrant_probabilities": {"happy": 0.3, "tense": 0.1, "sad": 0.2, "calm": 0.4},
    "spread": {"valence": 0.21, "arousal": 0.17},
}
