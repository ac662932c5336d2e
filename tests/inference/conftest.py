"""Shared fixtures of the inference tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sentio.features.extractor import SentioFeatureExtractor
from sentio.models import build_model
from tests.helpers import run_script
from tests.tiny import TINY


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tiny AST run with 0.64 s windows (the library tests' model)."""
    folder = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    build_model("ast", from_scratch=True, config_overrides=TINY["ast"]).save_pretrained(folder)
    SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32).save_pretrained(folder)
    return folder


@pytest.fixture
def predict_py(monkeypatch, capsys):
    """predict.py's __main__ in this process (no start-up cost): (exit status, stderr)."""

    def call(*args: str) -> tuple[int, str]:
        return run_script(monkeypatch, "predict.py", *args), capsys.readouterr().err

    return call
