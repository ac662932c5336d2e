"""distill.py --demo picks demo-sized settings after parsing, where the command line chose nothing."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from sentio.distill.args import DEMO_TRAINING
from tests.conftest import REPO


def parsed(monkeypatch, *args: str):
    spec = importlib.util.spec_from_file_location("distill_script", REPO / "distill.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["distill.py", "--teacher", "runs/t", *args])
    return module.parse_args()


def test_demo_picks_demo_epochs(monkeypatch):
    _, _, targs = parsed(monkeypatch, "--demo")
    assert targs.num_train_epochs == DEMO_TRAINING["num_train_epochs"] < 30


@pytest.mark.parametrize("flag", ["--epochs", "--num_train_epochs"])
def test_explicit_epochs_win_over_demo(monkeypatch, flag):
    _, _, targs = parsed(monkeypatch, "--demo", flag, "30")
    assert targs.num_train_epochs == 30


def test_without_demo_the_defaults_stay(monkeypatch):
    _, _, targs = parsed(monkeypatch)
    assert targs.num_train_epochs == 30
