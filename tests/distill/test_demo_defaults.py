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


def test_demo_picks_demo_epochs_and_one_thread(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    dargs, _, targs = parsed(monkeypatch, "--demo")
    assert targs.num_train_epochs == DEMO_TRAINING["num_train_epochs"] < 30
    assert dargs.torch_threads == 1


def test_explicit_threads_win_over_demo(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert parsed(monkeypatch, "--demo", "--torch_threads", "2")[0].torch_threads == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # a thread count set in the environment is a choice too
    assert parsed(monkeypatch, "--demo")[0].torch_threads is None


@pytest.mark.parametrize("flag", ["--epochs", "--num_train_epochs"])
def test_explicit_epochs_win_over_demo(monkeypatch, flag):
    _, _, targs = parsed(monkeypatch, "--demo", flag, "30")
    assert targs.num_train_epochs == 30


def test_without_demo_the_defaults_stay(monkeypatch):
    dargs, _, targs = parsed(monkeypatch)
    assert targs.num_train_epochs == 30 and dargs.torch_threads is None


def test_bad_thread_count_is_refused(monkeypatch):
    from sentio.errors import ArgumentError

    with pytest.raises(ArgumentError, match="--torch_threads"):
        parsed(monkeypatch, "--torch_threads", "0")
