"""Loading a trained run: the one way evaluate.py, predict.py, distill.py, the GAN's regressor
option and the web app get a model and its feature extractor.

A run is a train.py (or distill.py) output folder: config.json, model.safetensors,
preprocessor_config.json (+ manifest.csv, calibration.json, ...), a hub id of a pushed run, or an
exported .onnx file with the run's preprocessor_config.json beside it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from ..errors import CheckpointError, first_line
from ..choices import TRAINED_ON_DEMO, WEIGHT_FILES
from .runner import OnnxRunner, TorchRunner, WindowRunner

if TYPE_CHECKING:  # torch and transformers load only for a torch run (an ONNX run needs neither)
    import torch

    from ..features.extractor import SentioFeatureExtractor
    from ..features.numpy_features import NumpyFeatureExtractor

    Extractor = Union[SentioFeatureExtractor, NumpyFeatureExtractor]

_WHAT_IS_A_RUN = "pass the output_dir of a Sentio training run (train.py or distill.py) or an exported .onnx file"
# A checkpoint the Trainer wrote inside a run folder: the run's own files (calibration.json,
# manifest.csv, data_report.json) are in the folder above it.
_CHECKPOINT_FOLDER = re.compile(r"checkpoint-\d+")
# What a run records about its training data (config.json), and the older runs' data_report.json
# source line, which names the demo corpus the same way.
_DEMO_SOURCE = "demo corpus"
_EXTRACTOR_TYPE = "SentioFeatureExtractor"  # what SentioFeatureExtractor.save_pretrained records


@dataclass
class Run:
    """A loaded run: the runner that predicts windows, the features it expects, and, for a torch
    run, the model and its config. `folder` holds the run's other files (None for a hub id)."""

    runner: WindowRunner
    extractor: Extractor
    folder: Path | None
    model: torch.nn.Module | None = None

    @property
    def config(self) -> Any:
        return None if self.model is None else self.model.config

    def file(self, name: str) -> Path | None:
        """A file of the run folder (manifest.csv, calibration.json, ...), or None when absent; for a
        `checkpoint-N` folder, the run's file in the folder above when the checkpoint has none."""
        return run_file(self.folder, name)

    @property
    def trained_on_demo(self) -> bool:
        """Whether the run was trained on Sentio's synthetic demo corpus (recorded in config.json;
        older runs: their data_report.json's source)."""
        return trained_on_demo(self.folder, self.config)


def run_file(folder: Path | None, name: str) -> Path | None:
    """`folder / name`, or for a `checkpoint-N` folder without it the run's own file above it."""
    if folder is None:
        return None
    for where in (folder, folder.parent) if _CHECKPOINT_FOLDER.fullmatch(folder.name) else (folder,):
        if (where / name).is_file():
            return where / name
    return None


def trained_on_demo(folder: Path | None, config: Any = None) -> bool:
    """What the run at `folder` (or its model `config`) records about being trained on the demo corpus."""
    recorded = getattr(config, TRAINED_ON_DEMO, None) if config is not None else None
    if recorded is None and run_file(folder, "config.json") is not None:
        try:
            recorded = json.loads(run_file(folder, "config.json").read_text()).get(TRAINED_ON_DEMO)
        except (OSError, ValueError, AttributeError):
            recorded = None
    if recorded is not None:
        return bool(recorded)
    report = run_file(folder, "data_report.json")
    try:
        source = json.loads(report.read_text()).get("source", "") if report is not None else ""
    except (OSError, ValueError, AttributeError):
        return False
    return str(source).startswith(_DEMO_SOURCE)


def _not_a_folder(source: str) -> CheckpointError:
    """'no such folder', with the nearest existing name when the parent folder exists (a typo)."""
    path = Path(source).expanduser()
    parent = path.parent if str(path.parent) not in ("", ".") else Path(".")
    hint = ""
    if parent.is_dir():
        near = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir() if p.is_dir()], n=1)
        if near:
            hint = f" (did you mean {parent / near[0] if str(parent) != '.' else near[0]}?)"
    if not hint and not parent.is_dir():  # nothing trained here yet (a fresh clone before `make demo`)
        return CheckpointError(f"no such run folder {source}: train one first (`make demo` trains runs/ast-demo), "
                               f"or {_WHAT_IS_A_RUN}")
    return CheckpointError(f"model folder {source} does not exist{hint}: {_WHAT_IS_A_RUN}")


def _read_json(path: Path, what: str) -> dict:
    try:
        text = path.read_text()
        if not text.strip():
            raise CheckpointError(f"{path} is empty: the run is damaged; copy it again or retrain")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc.__class__.__name__}): the {what} is damaged") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a {what} (a JSON object was expected)")
    return data


def load_extractor(folder: str | os.PathLike, local_only: bool = True, numpy: bool = False) -> Extractor:
    """The run's SentioFeatureExtractor from preprocessor_config.json, with one-line errors; with
    `numpy`, a NumpyFeatureExtractor of the same params (no torch, no transformers)."""
    folder = Path(folder)
    if local_only or numpy:
        path = folder / "preprocessor_config.json"
        if not path.is_file():
            raise CheckpointError(f"{folder} has no preprocessor_config.json: {_WHAT_IS_A_RUN}")
        data = _read_json(path, "feature extractor config")
        if data.get("feature_extractor_type") not in (None, _EXTRACTOR_TYPE) or "feature_kind" not in data:
            raise CheckpointError(f"{path} is not a Sentio feature extractor config "
                                  f"({data.get('feature_extractor_type', 'no feature_kind')}): {_WHAT_IS_A_RUN}")
    try:
        if numpy:
            from ..features.numpy_features import NumpyFeatureExtractor

            return NumpyFeatureExtractor.from_config(data)
        from ..features.extractor import SentioFeatureExtractor

        return SentioFeatureExtractor.from_pretrained(str(folder), local_files_only=local_only)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder}/preprocessor_config.json: {first_line(exc)}") from None


def _check_config(folder: Path) -> None:
    """config.json must be a Sentio model's (a plain transformers or other library's config is not a run)."""
    from ..models.registry import AUTO_ONLY_MODELS, BACKBONES

    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} has no config.json: {_WHAT_IS_A_RUN}")
    model_type = _read_json(path, "model config").get("model_type")
    ours = {b.config_class.model_type for b in BACKBONES.values()} | {c.model_type for c, _ in AUTO_ONLY_MODELS}
    if model_type not in ours:
        what = f"a {model_type!r} model" if model_type else "no model_type"
        raise CheckpointError(f"{path} has {what}, not a Sentio model's config: {_WHAT_IS_A_RUN}")


def _load_torch_model(source: str, local_only: bool) -> torch.nn.Module:
    import transformers
    from safetensors import SafetensorError

    from ..models.auto import register_models

    register_models()  # AutoModel finds Sentio's model classes (`import sentio` also registers the pipeline task)
    try:
        return transformers.AutoModel.from_pretrained(source, local_files_only=local_only).eval()
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:  # a truncated or foreign weights file
        reason = first_line(exc, 200)
        raise CheckpointError(f"{source}: cannot load the model weights ({reason}); the run is damaged or "
                              "incomplete: copy it again or retrain") from None


def load_run(source: str | os.PathLike, device: str | torch.device | None = None, numpy_features: bool = False) -> Run:
    """The run at `source` (a folder, an .onnx file, or a hub id), ready to predict windows. With
    `numpy_features`, an ONNX run gets a NumpyFeatureExtractor: predicting then loads no torch and
    no transformers (what EmotionPredictor asks for); a torch run is unchanged."""
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise CheckpointError(f"ONNX model {text} does not exist: {_WHAT_IS_A_RUN}")
        return Run(OnnxRunner(path), load_extractor(path.parent, numpy=numpy_features), path.parent)
    if path.is_dir():
        has_torch = any((path / w).is_file() for w in WEIGHT_FILES)
        graphs = sorted(path.glob("*.onnx"))
        if not has_torch and len(graphs) == 1:  # an export folder: run its one graph
            return Run(OnnxRunner(graphs[0]), load_extractor(path, numpy=numpy_features), path)
        if not has_torch and graphs:
            raise CheckpointError(f"{text} has no torch weights but several .onnx files: pass one of them")
        _check_config(path)
        extractor = load_extractor(path)
        if not has_torch:
            raise CheckpointError(f"{text} has no model weights (model.safetensors): {_WHAT_IS_A_RUN}")
        model = _load_torch_model(str(path), local_only=True)
        return Run(TorchRunner(model, device), extractor, path, model)
    # the model package (transformers' model code: a second of imports) only for a torch run,
    # so that predicting with an exported .onnx student starts fast
    from ..models.hub import looks_local, resolve_checkpoint

    if looks_local(text):
        raise _not_a_folder(text)
    # a run pushed to the Hub: local cache first, then the Hub
    hub_source, local_only = resolve_checkpoint(text, advice=_WHAT_IS_A_RUN)
    extractor = load_extractor(hub_source, local_only)
    model = _load_torch_model(hub_source, local_only)
    return Run(TorchRunner(model, device), extractor, None, model)
