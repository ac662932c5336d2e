"""Hyperparameter search (`train.py --hp_search N`): transformers' `Trainer.hyperparameter_search`
with the Optuna backend.

- The objective is the validation metric that picks the best checkpoint (`--metric_for_best_model`,
  default ccc_mean), maximised: each trial reports its best epoch's value, the epoch whose weights
  `load_best_model_at_end` restores and the trial saves.
- The space (`default_space`, or `--hp_space FILE.json`, see `read_space`) mixes TrainingArguments
  fields (set by the Trainer on each trial), head fields (a fresh model per trial through
  `model_init`, whose encoder weights are copied from the one model loaded once) and mixup (the
  training set is rewrapped per trial).
- Trials live under RUN/trials/NNN, each a from_pretrained folder of its best epoch plus
  trial.json. The study is an Optuna SQLite file in the run (RUN/hp_search.db): rerunning the same
  command after a crash or a kill keeps every finished trial and runs only the missing ones.
- The best trial becomes the run; hp_search.json holds every trial and the parameter importances
  (Optuna's fANOVA evaluator).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from transformers import EarlyStoppingCallback, PreTrainedModel

from ..errors import ArgumentError
from ..choices import LAYER_LAST, LAYER_WEIGHTED, LOSSES
from .augment import Mixup
from .trainer import EmotionTrainer

logger = logging.getLogger(__name__)

STUDY_FILE = "hp_search.db"
REPORT_FILE = "hp_search.json"
TRIALS_DIR = "trials"
STUDY_NAME = "sentio"
IMPORTANCE_EVALUATOR = "fANOVA (optuna.importance.FanovaImportanceEvaluator)"
OPTUNA_PIN = "optuna==5.0.0"
# Where each searchable setting applies: a TrainingArguments field, a head config field, the data.
TRAINING_SETTINGS = ("learning_rate", "weight_decay", "warmup_steps", "per_device_train_batch_size")
HEAD_SETTINGS = ("head_hidden_size", "final_dropout", "layer", "loss", "ccc_weight")
DATA_SETTINGS = ("mixup_alpha",)
SEARCHABLE = TRAINING_SETTINGS + HEAD_SETTINGS + DATA_SETTINGS
_TYPES = ("float", "int", "categorical")


def require_optuna() -> None:
    """One line when optuna is missing: it is an optional dependency (the `search` extra)."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ArgumentError(f"--hp_search needs optuna: pip install {OPTUNA_PIN} (or pip install 'sentio[search]')") \
            from None


@dataclass
class ParamSpec:
    """One searched setting: a float or int range (`log` for a log scale, `step` for a grid) or a
    list of choices."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def suggest(self, trial: Any) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, self.choices)
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        if self.type == "categorical":
            return f"one of {self.choices}"
        return f"{self.type} {self.low:g}..{self.high:g}" + (" (log)" if self.log else "") + \
            (f" step {self.step:g}" if self.step else "")


def default_space(probe: bool, num_hidden_layers: int) -> list[ParamSpec]:
    """The default space: learning rate (log; MARBLE's probe grid 1e-4..1e-2 in probe mode), head
    width, dropout, weight decay, the layer the head reads (last, weighted, the middle hidden
    state) and mixup."""
    low, high = (1e-4, 1e-2) if probe else (1e-5, 5e-4)
    return [
        ParamSpec("learning_rate", "float", low, high, log=True),
        ParamSpec("head_hidden_size", "categorical", choices=[128, 256, 512]),
        ParamSpec("final_dropout", "float", 0.0, 0.5),
        ParamSpec("weight_decay", "float", 0.0, 0.1),
        ParamSpec("layer", "categorical", choices=[LAYER_LAST, LAYER_WEIGHTED, str(max(1, num_hidden_layers // 2))]),
        ParamSpec("mixup_alpha", "float", 0.0, 0.5),
    ]


def _spec_from_json(path: str, name: str, value: Any) -> ParamSpec:
    where = f"--hp_space {path}: setting {name!r}"
    if name not in SEARCHABLE:
        raise ArgumentError(f"{where} is not a searchable setting; choose from {', '.join(SEARCHABLE)}")
    if not isinstance(value, dict):
        raise ArgumentError(f"{where} must be an object such as {{\"type\": \"float\", \"low\": 0.0, \"high\": 0.5}}")
    unknown = sorted(set(value) - {"type", "low", "high", "log", "step", "choices"})
    kind = value.get("type", "categorical" if "choices" in value else None)
    if unknown or kind not in _TYPES:
        raise ArgumentError(f"{where}: type must be one of {', '.join(_TYPES)}"
                            + (f", and {', '.join(unknown)} is not a field" if unknown else ""))
    if kind == "categorical":
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ArgumentError(f"{where}: a categorical setting needs a non-empty list \"choices\"")
        return ParamSpec(name, kind, choices=choices)
    low, high = value.get("low"), value.get("high")
    numbers = [v for v in (low, high, value.get("step")) if v is not None]
    if low is None or high is None or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
        raise ArgumentError(f"{where}: a {kind} setting needs numbers \"low\" and \"high\"")
    if not low <= high or (value.get("log") and low <= 0):
        raise ArgumentError(f"{where}: needs low <= high (and low > 0 with \"log\")")
    return ParamSpec(name, kind, float(low), float(high), bool(value.get("log", False)), value.get("step"))


def read_space(path: str) -> list[ParamSpec]:
    """A --hp_space file: a JSON object {setting: spec}, each spec {"type": "float"|"int", "low",
    "high", optional "log", "step"} or {"type": "categorical", "choices": [...]}; it replaces the
    default space (settings it leaves out keep their command-line values)."""
    try:
        with open(path) as fh:
            raw = json.load(fh)
    except OSError as exc:
        raise ArgumentError(f"--hp_space {path}: cannot read it ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ArgumentError(f"--hp_space {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(raw, dict) or not raw:
        raise ArgumentError(f"--hp_space {path} must be a JSON object of settings, e.g. "
                            "{\"learning_rate\": {\"type\": \"float\", \"low\": 1e-5, \"high\": 1e-3, \"log\": true}}")
    return [_spec_from_json(path, name, value) for name, value in raw.items()]


def _layer_value(value: Any) -> str | int:
    """A layer choice as the head config takes it: last, weighted, or an int index."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def check_space(space: Sequence[ParamSpec], num_hidden_layers: int, source: str) -> None:
    """Values a model cannot take fail before any training, naming the setting."""
    for spec in space:
        values = spec.choices if spec.type == "categorical" else [spec.low, spec.high]
        for value in values:
            bad = None
            if spec.name == "layer":
                layer = _layer_value(value)
                if not (layer in (LAYER_LAST, LAYER_WEIGHTED)
                        or (isinstance(layer, int) and not isinstance(layer, bool) and 0 <= layer <= num_hidden_layers)):
                    bad = f"last, weighted or a hidden-state index 0..{num_hidden_layers}"
            elif spec.name == "loss" and value not in LOSSES:
                bad = f"one of {', '.join(LOSSES)}"
            elif spec.name != "loss" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                bad = "a number"
            elif spec.name in ("learning_rate", "per_device_train_batch_size") and not value > 0:
                bad = "positive"
            elif spec.name == "final_dropout" and not 0 <= value < 1:
                bad = "in [0, 1)"
            elif spec.name in ("head_hidden_size", "mixup_alpha", "weight_decay", "warmup_steps", "ccc_weight") \
                    and not value >= 0:
                bad = ">= 0"
            if bad:
                raise ArgumentError(f"{source}: setting {spec.name!r} value {value!r} must be {bad}")


def search_space(hp_space: str | None, probe: bool, num_hidden_layers: int) -> list[ParamSpec]:
    """The space a search explores (the --hp_space file or the default), checked against the model."""
    space = read_space(hp_space) if hp_space else default_space(probe, num_hidden_layers)
    check_space(space, num_hidden_layers, f"--hp_space {hp_space}" if hp_space else "the default search space")
    return space


@dataclass
class TrialRecord:
    number: int
    state: str
    objective: float | None
    params: dict[str, Any]
    seconds: float | None


@dataclass
class SearchSummary:
    """What a finished search reports (hp_search.json, the model card)."""

    n_trials: int
    objective: str
    direction: str
    best_trial: int
    best_objective: float
    best_params: dict[str, Any]
    trials: list[TrialRecord]
    importances: dict[str, float]
    importance_evaluator: str
    space: list[ParamSpec]
    sampler: str
    seconds: float = 0.0
    resumed_trials: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SearchTrainer(EmotionTrainer):
    """EmotionTrainer whose trials each end with their best epoch saved in RUN/trials/NNN (the model
    `load_best_model_at_end` restored) and report that epoch's metric as the objective (the stock
    backend reports the LAST evaluation, which need not be the epoch the trial keeps)."""

    def train(self, resume_from_checkpoint=None, trial=None, **kwargs):
        for callback in self.callback_handler.callbacks:  # its counter would carry over from the last trial
            if isinstance(callback, EarlyStoppingCallback):
                callback.early_stopping_patience_counter = 0
        start = time.perf_counter()
        result = super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)
        if trial is None:
            return result
        folder = self._get_output_dir(trial)
        if self.state.best_metric is not None:
            self.objective = float(self.state.best_metric)
        self.save_model(folder)
        for checkpoint in Path(folder).glob("checkpoint-*"):  # the saved model is the trial's best epoch
            shutil.rmtree(checkpoint, ignore_errors=True)
        record = {"number": trial.number, "params": trial.params, "objective": self.objective,
                  "train_metrics": result.metrics, "seconds": round(time.perf_counter() - start, 3),
                  "log_history": self.state.log_history}
        with open(os.path.join(folder, "trial.json"), "w") as fh:
            json.dump(record, fh, indent=2, default=str)
        return result


class HyperparameterSearch:
    """One search over a run: the model_init, the Optuna study in the run folder, the summary."""

    def __init__(self, space: list[ParamSpec], run_dir: str, n_trials: int, model: PreTrainedModel,
                 train_dataset: torch.utils.data.Dataset, input_name: str, seed: int, mixup_alpha: float = 0.0):
        self.space, self.run_dir, self.n_trials, self.seed = space, run_dir, n_trials, seed
        self.mixup_alpha = mixup_alpha  # the command line's, for a space that does not search it
        self.base_model, self.base_train, self.input_name = model, train_dataset, input_name
        self.base_config = copy.deepcopy(model.config)
        self.encoder_state = {k: v.detach().clone() for k, v in model.state_dict().items()
                              if not k.startswith(("head.", "layer_weights"))}
        self.trainer: SearchTrainer | None = None

    # ---- per trial ----------------------------------------------------------------------------
    def params(self, trial: Any) -> dict[str, Any]:
        """The trial's values (Optuna returns the same value when a trial asks twice)."""
        return {spec.name: spec.suggest(trial) for spec in self.space}

    def training_params(self, trial: Any) -> dict[str, Any]:
        """What the Trainer sets on its TrainingArguments for the trial."""
        return {k: v for k, v in self.params(trial).items() if k in TRAINING_SETTINGS}

    def model_init(self, trial: Any = None) -> PreTrainedModel:
        """A fresh model with the trial's head settings and the loaded encoder's weights, and the
        training set with the trial's mixup."""
        params = self.params(trial) if trial is not None else {}
        config = copy.deepcopy(self.base_config)
        for name in HEAD_SETTINGS:
            if name in params:
                setattr(config, name, _layer_value(params[name]) if name == "layer" else params[name])
        config.validate_emotion_head()
        model = type(self.base_model)(config)
        missing, unexpected = model.load_state_dict(self.encoder_state, strict=False)
        if unexpected or any(not k.startswith(("head.", "layer_weights")) for k in missing):
            raise RuntimeError(f"trial model does not match the loaded encoder: {unexpected or missing}")
        if self.trainer is not None:
            self.trainer.train_dataset = self.train_dataset(params)
        return model

    def train_dataset(self, params: dict[str, Any]) -> torch.utils.data.Dataset:
        """The training set with the trial's mixup (evaluation is never mixed)."""
        alpha = float(params.get("mixup_alpha", self.mixup_alpha))
        return Mixup(self.base_train, self.input_name, alpha=alpha) if alpha > 0 else self.base_train

    # ---- the study ----------------------------------------------------------------------------
    @property
    def storage(self) -> str:
        return f"sqlite:///{os.path.abspath(os.path.join(self.run_dir, STUDY_FILE))}"

    def _space_json(self) -> str:
        return json.dumps([asdict(s) for s in self.space], sort_keys=True)

    def open_study(self, direction: str) -> Any:
        """The run's study, created or reopened; a trial left RUNNING by a killed process is marked
        failed (its number is not reused)."""
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=STUDY_NAME, storage=self.storage, load_if_exists=True,
                                    direction=direction)
        saved = study.user_attrs.get("space")
        if saved is None:
            study.set_user_attr("space", self._space_json())
        elif saved != self._space_json():
            raise ArgumentError(f"--output_dir {self.run_dir} holds a search over another space ({STUDY_FILE}); "
                                "use the same --hp_space to resume it, or a new --output_dir")
        for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study._storage.set_trial_state_values(stale._trial_id, TrialState.FAIL)
            logger.warning("trial %d was interrupted: marked failed, a new trial takes its place", stale.number)
        return study

    def run(self, trainer_kwargs: dict[str, Any], metric: str,
            greater_is_better: bool) -> tuple[EmotionTrainer, SearchSummary]:
        """Run the missing trials, then a trainer holding the best trial's model (from its folder,
        strictly loaded) with the winning training settings on its arguments."""
        import optuna
        from optuna.trial import TrialState

        direction = "maximize" if greater_is_better else "minimize"
        start = time.perf_counter()
        study = self.open_study(direction)
        finished = (TrialState.COMPLETE, TrialState.PRUNED)
        done = len(study.get_trials(deepcopy=False, states=finished))
        remaining = self.n_trials - done
        if done:
            logger.info("hp search: %d of %d trials already finished in %s; running %d more", done, self.n_trials,
                        self.run_dir, max(remaining, 0))
        key = metric if metric.startswith("eval_") else f"eval_{metric}"
        args = trainer_kwargs["args"]
        push, args.push_to_hub = args.push_to_hub, False  # trials are never pushed; the run is, at the end
        try:
            self._run_trials(study, remaining, trainer_kwargs, key, direction)
        finally:
            args.push_to_hub = push
        study = optuna.load_study(study_name=STUDY_NAME, storage=self.storage)
        best = study.best_trial
        summary = self._summary(study, key, direction, done, time.perf_counter() - start)
        folder = os.path.join(self.run_dir, TRIALS_DIR, f"{best.number:03d}")
        model = self._load_trial(folder)
        for name, value in best.params.items():
            if name in TRAINING_SETTINGS:
                setattr(args, name, type(getattr(args, name))(value))
        final = EmotionTrainer(model=model, **{**trainer_kwargs, "train_dataset": self.train_dataset(best.params)})
        with open(os.path.join(folder, "trial.json")) as fh:
            record = json.load(fh)
        final.state.log_history = record.get("log_history", [])
        final.search_train_metrics = record.get("train_metrics", {})
        write_report(self.run_dir, summary)
        return final, summary

    def _run_trials(self, study: Any, remaining: int, trainer_kwargs: dict[str, Any], key: str, direction: str) -> None:
        import optuna

        if remaining > 0:
            self.trainer = SearchTrainer(model_init=self.model_init,
                                         **{**trainer_kwargs, "train_dataset": self.base_train})
            # Seeded by how many trials the study already holds: a resumed search must not replay
            # the random start-up draws of the trials it already ran.
            sampler = optuna.samplers.TPESampler(seed=self.seed + len(study.trials))
            self.trainer.hyperparameter_search(
                hp_space=self.training_params, compute_objective=lambda metrics: float(metrics[key]),
                n_trials=remaining, direction=direction, backend="optuna",
                hp_name=lambda trial: os.path.join(TRIALS_DIR, f"{trial.number:03d}"),
                study_name=STUDY_NAME, storage=self.storage, load_if_exists=True, sampler=sampler,
            )

    def _load_trial(self, folder: str) -> PreTrainedModel:
        model, info = type(self.base_model).from_pretrained(folder, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        if problems:
            raise RuntimeError(f"{folder}: the best trial's model does not load strictly: {problems}")
        return model

    def _summary(self, study: Any, key: str, direction: str, resumed: int, seconds: float) -> SearchSummary:
        import optuna

        trials = []
        for t in study.trials:
            elapsed = (t.datetime_complete - t.datetime_start).total_seconds() \
                if t.datetime_complete and t.datetime_start else None
            trials.append(TrialRecord(t.number, t.state.name, t.value, dict(t.params), elapsed))
        importances: dict[str, float] = {}
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=self.seed)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) >= 2:
            try:
                importances = {k: float(v) for k, v in optuna.importance.get_param_importances(
                    study, evaluator=evaluator).items()}
            except (RuntimeError, ValueError) as exc:  # e.g. every trial with the same values
                logger.warning("parameter importances not computed: %s", exc)
        best = study.best_trial
        return SearchSummary(
            n_trials=self.n_trials, objective=key, direction=direction, best_trial=best.number,
            best_objective=float(best.value), best_params=dict(best.params), trials=trials,
            importances=importances, importance_evaluator=f"{IMPORTANCE_EVALUATOR}, seed {self.seed}",
            space=list(self.space), sampler=f"TPESampler (seeded from --seed {self.seed})",
            seconds=round(seconds, 3), resumed_trials=resumed,
        )


def write_report(run_dir: str, summary: SearchSummary) -> Path:
    """hp_search.json: every trial, the best one, the importances and how they were computed."""
    path = Path(run_dir) / REPORT_FILE
    path.write_text(json.dumps(summary.to_json(), indent=2, default=str))
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "-" if value is None else str(value)


def card_section(summary: SearchSummary) -> list[str]:
    """Markdown lines for the model card: the winning settings, every trial, the importances."""
    names = [s.name for s in summary.space]
    lines = [
        "## Hyperparameter search",
        f"- {len(summary.trials)} Optuna trials ({summary.sampler}), objective validation "
        f"`{summary.objective}` ({summary.direction}); this model is trial {summary.best_trial}: "
        + ", ".join(f"{k}={_cell(v)}" for k, v in summary.best_params.items()),
        f"- Parameter importances ({summary.importance_evaluator}): "
        + (", ".join(f"{k} {v:.3f}" for k, v in summary.importances.items()) or "not enough finished trials"),
        "",
        "| trial | state | " + summary.objective + " | " + " | ".join(names) + " | seconds |",
        "|---|---|---|" + "---|" * len(names) + "---|",
    ]
    for t in summary.trials:
        lines.append(f"| {t.number} | {t.state} | {_cell(t.objective)} | "
                     + " | ".join(_cell(t.params.get(n)) for n in names) + f" | {_cell(t.seconds)} |")
    return lines + [""]


def check_search_flags(search_args: Any, plan: Any, training_args: Any) -> list[ParamSpec]:
    """What --hp_search needs before data work, beyond its flags (sentio.args.check_train_flags):
    optuna present, the space readable and fitting the model. Returns the space."""
    require_optuna()
    return search_space(search_args.hp_space, plan.probe, int(plan.architecture().num_hidden_layers))
