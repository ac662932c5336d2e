"""train.py --hp_search: Optuna trials under RUN/trials/NNN, the best trial as the run, a search
that survives a SIGKILL, and one-line errors for bad search flags."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import run_python, run_script, tiny_checkpoint

optuna = pytest.importorskip("optuna")


def search_args(tiny_corpus: Path, tmp_path: Path, out: Path, trials: int, *extra: str) -> list[str]:
    checkpoint = tmp_path / "tiny"
    if not checkpoint.is_dir():
        tiny_checkpoint("ast", checkpoint)
    return ["train.py", "--model", "ast", "--probe", "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16",
            "--demo_seed", "5", "--checkpoint", str(checkpoint), "--epochs", "1", "--per_device_train_batch_size", "4",
            "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), "--report_to", "none",
            "--disable_tqdm", "true", "--hp_search", str(trials), *extra]


def finished_trials_so_far(out: Path) -> int:
    """Completed trials of a study another process is writing, read without optuna: opening it
    through optuna would race the writer creating the schema (both insert its version row)."""
    try:
        with sqlite3.connect(f"file:{out / 'hp_search.db'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, schema half-written, or locked for a write
        return 0


def study_trials(out: Path) -> list:
    study = optuna.load_study(study_name="sentio", storage=f"sqlite:///{out / 'hp_search.db'}")
    return study.get_trials(deepcopy=True)


@pytest.mark.slow
def test_three_trial_search_makes_the_best_trial_the_run(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    result = run_python(search_args(tiny_corpus, tmp_path, out, 3))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "hp_search.json").read_text())
    assert [t["number"] for t in report["trials"]] == [0, 1, 2]
    assert all(t["state"] == "COMPLETE" for t in report["trials"])
    # the default space, every setting searched in every trial
    names = {"learning_rate", "head_hidden_size", "final_dropout", "weight_decay", "layer", "mixup_alpha"}
    assert all(set(t["params"]) == names for t in report["trials"])
    assert all(1e-4 <= t["params"]["learning_rate"] <= 1e-2 for t in report["trials"])  # the probe's grid
    best = max(report["trials"], key=lambda t: t["objective"])
    assert report["best_trial"] == best["number"]
    assert set(report["importances"]) == names and "fANOVA" in report["importance_evaluator"]
    for number in range(3):
        folder = out / "trials" / f"{number:03d}"
        assert (folder / "model.safetensors").is_file() and (folder / "trial.json").is_file()
        assert not list(folder.glob("checkpoint-*"))
    # the run is the best trial: its weights, its settings, its validation score
    from safetensors.torch import load_file

    run_weights = load_file(out / "model.safetensors")
    trial_weights = load_file(out / "trials" / f"{best['number']:03d}" / "model.safetensors")
    assert run_weights.keys() == trial_weights.keys()
    assert all((run_weights[k] == trial_weights[k]).all() for k in run_weights)
    config = json.loads((out / "config.json").read_text())
    params = best["params"]
    assert config["head_hidden_size"] == params["head_hidden_size"]
    assert config["final_dropout"] == pytest.approx(params["final_dropout"])
    assert str(config["layer"]) == str(params["layer"])
    results = json.loads((out / "all_results.json").read_text())
    assert results["eval_ccc_mean"] == pytest.approx(best["objective"], abs=1e-6)
    assert results["hp_search_best_trial"] == best["number"] and results["hp_search_trials"] == 3
    assert (out / "calibration.json").is_file()
    card = (out / "README.md").read_text()
    assert "## Hyperparameter search" in card and f"this model is trial {best['number']}" in card
    assert card.count("| COMPLETE |") == 3
    assert f"learning rate {params['learning_rate']}" in card


@pytest.mark.slow
def test_killed_search_resumes_without_rerunning_finished_trials(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    space = tmp_path / "space.json"  # MARBLE's probe grid, and a fixed layer
    space.write_text(json.dumps({"learning_rate": {"type": "categorical", "choices": [1e-2, 1e-3, 1e-4]},
                                 "layer": {"choices": ["last", "weighted"]}}))
    args = search_args(tiny_corpus, tmp_path, out, 4, "--hp_space", str(space))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline:  # until the study records a finished trial
        if (out / "hp_search.db").is_file() and finished_trials_so_far(out):
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # in trial 1, as it starts
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = {t.number: t for t in study_trials(out) if t.state.name == "COMPLETE"}
    assert 0 in before and len(before) < 4
    kept = {n: (out / "trials" / f"{n:03d}" / "trial.json").read_text() for n in before}

    result = run_python(args)
    assert result.returncode == 0, result.stderr[-3000:]
    after = study_trials(out)
    complete = [t for t in after if t.state.name == "COMPLETE"]
    assert len(complete) == 4  # total reaches N
    for number, trial in before.items():  # finished trials were not rerun
        assert next(t for t in after if t.number == number).datetime_complete == trial.datetime_complete
        assert (out / "trials" / f"{number:03d}" / "trial.json").read_text() == kept[number]
    # a trial the kill interrupted is marked failed, not left running, and its number not reused
    assert {t.state.name for t in after} <= {"COMPLETE", "FAIL"}
    assert len(after) == 4 + sum(t.state.name == "FAIL" for t in after)
    report = json.loads((out / "hp_search.json").read_text())
    assert report["resumed_trials"] == len(before)
    assert all(set(t["params"]) == {"learning_rate", "layer"} for t in report["trials"] if t["state"] == "COMPLETE")


@pytest.mark.parametrize("case, extra, needle", [
    ("zero", ["--hp_search", "0"], "--hp_search must be a positive number of trials"),
    ("negative", ["--hp_search", "-2"], "--hp_search must be a positive number of trials"),
    ("not json", ["--hp_search", "2", "--hp_space", "{space}"], "is not valid JSON"),
    ("unknown", ["--hp_search", "2", "--hp_space", "{space}"], "'momentum' is not a searchable setting"),
    ("bad layer", ["--hp_search", "2", "--hp_space", "{space}"], "setting 'layer' value 9 must be"),
    ("no optuna", ["--hp_search", "2"], "--hp_search needs optuna: pip install optuna=="),
])
def test_bad_search_flags_are_one_line(case, extra, needle, tmp_path, monkeypatch, capsys):
    space = tmp_path / "space.json"
    space.write_text({"not json": "{'learning_rate': [1e-3]}",
                      "unknown": json.dumps({"momentum": {"type": "float", "low": 0.1, "high": 0.9}}),
                      "bad layer": json.dumps({"layer": {"type": "categorical", "choices": ["last", 9]}})}.get(case, "{}"))
    if case == "no optuna":  # `import optuna` fails, as when it is not installed
        monkeypatch.setitem(sys.modules, "optuna", None)
    args = ["--model", "ast", "--demo", "--demo_dir", str(tmp_path / "no-demo"), "--epochs", "1",
            "--output_dir", str(tmp_path / "run"), *[a.replace("{space}", str(space)) for a in extra]]
    # train.py's __main__ in this process: the same exit status and stderr, without an interpreter start per case
    code, err = run_script(monkeypatch, "train.py", *args), capsys.readouterr().err
    assert code == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert not (tmp_path / "no-demo").exists()  # refused before any data work
