"""Building a model: from scratch, from a backbone checkpoint, or from a previous Sentio run.

A checkpoint is found in this order: an existing local folder; the local Hugging Face cache; the
Hub, probed once with a short timeout and one retry. Failing that, CheckpointError says in one
line what to do. There is no silent fallback from pretrained to random weights, and
trust_remote_code is never on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from huggingface_hub import (
    constants,
    get_hf_file_metadata,
    hf_hub_url,
    snapshot_download,
    try_to_load_from_cache,
)
from safetensors import SafetensorError
from transformers import PretrainedConfig, PreTrainedModel

from ..choices import WEIGHT_FILES
from ..errors import CheckpointError, first_line
from .auto import register_models
from .backbone import Backbone
from .registry import BACKBONES, backbone_for_model_type, get_backbone

logger = logging.getLogger(__name__)

HUB_PROBE_TIMEOUT_S = 4.0  # per attempt; two attempts, 1 s apart
# Keys of a checkpoint's config that describe its old task or file, not the architecture.
_DROPPED_CONFIG_KEYS = (
    "model_type", "architectures", "transformers_version", "id2label", "label2id", "problem_type",
    "dtype", "torch_dtype", "auto_map",
)  # fmt: skip


def _what_to_do(checkpoint: str) -> str:
    return (
        f"run `python download_model.py {checkpoint} --output_dir DIR` where there is internet and pass "
        "`--checkpoint DIR`, or pass a local folder, or use `--from_scratch`"
    )


# Where Sentio writes runs by default (train.py's runs/<model>): a name under it is a run folder,
# never the hub repo of a user called "runs", even before the first run created the folder.
RUNS_ROOT = "runs"


def looks_local(name: str) -> bool:
    """A name meant as a local path: it has a form no hub id has ("owner/name"), its parent folder
    exists here (`runs/ast-demoo` is a mistyped run folder, not the hub repo of a user `runs`), or
    it lies under runs/ (`runs/ast-demo` before `make demo` made it)."""
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name:
        return True
    return "/" in name and (Path(name).parent.is_dir() or name.split("/", 1)[0] == RUNS_ROOT)


def _in_cache(repo_id: str) -> bool:
    def cached(name: str) -> bool:
        return isinstance(try_to_load_from_cache(repo_id, name), str)

    return cached("config.json") and any(cached(name) for name in WEIGHT_FILES)


def probe_hub(repo_id: str, advice: str | None = None) -> None:
    """One HEAD request for config.json, retried once; raises CheckpointError on failure.

    huggingface_hub itself retries a failed download with back-off for ~23 s: probing first keeps
    a machine without network from hanging that long.
    """
    error: Exception | None = None
    for attempt in range(2):
        try:
            get_hf_file_metadata(hf_hub_url(repo_id, "config.json"), timeout=HUB_PROBE_TIMEOUT_S)
            return
        except Exception as exc:  # noqa: BLE001 - network, HTTP and hub errors all end the same way
            error = exc
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status in (401, 403, 404):  # a definite answer: retrying will not change it
                raise CheckpointError(
                    f"the Hub has no accessible model {repo_id!r} (HTTP {status}): {advice or _what_to_do(repo_id)}"
                ) from None
            if attempt == 0:
                time.sleep(1.0)
    raise CheckpointError(
        f"cannot reach the Hugging Face Hub for {repo_id!r} ({first_line(error, 120)}): {advice or _what_to_do(repo_id)}"
    )


def resolve_checkpoint(checkpoint: str, advice: str | None = None) -> tuple[str, bool]:
    """-> (folder or hub id, local_files_only). Order: local folder, HF cache, Hub (one probe + one retry).
    `advice` replaces the default what-to-do of the error messages (which names train.py's flags)."""
    folder = Path(checkpoint).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise CheckpointError(
                f"folder {checkpoint} has no config.json: pass a model folder (e.g. a download_model.py output)"
            )
        return str(folder), True
    if looks_local(checkpoint):
        raise CheckpointError(
            f"checkpoint folder {checkpoint} does not exist: {advice or 'pass an existing model folder, a hub id, or `--from_scratch`'}"
        )
    if _in_cache(checkpoint):
        return checkpoint, True
    if constants.is_offline_mode():
        raise CheckpointError(
            f"checkpoint {checkpoint!r} is not a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE "
            f"is set: {advice or _what_to_do(checkpoint)}"
        )
    probe_hub(checkpoint, advice)
    return checkpoint, False


def _load_config(backbone: Backbone, source: str, local_only: bool, checkpoint: str) -> PretrainedConfig:
    register_models()  # a previous Sentio run's config.json names a Sentio model_type
    try:
        return backbone.read_checkpoint_config(source, local_only)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"cannot read the config of {checkpoint!r} ({first_line(exc, 160)}): {_what_to_do(checkpoint)}"
        ) from None


def _is_sentio_run(backbone: Backbone, config: PretrainedConfig, checkpoint: str) -> bool:
    """True for a previous Sentio run of this backbone, False for a plain backbone checkpoint; else raise."""
    run_backbone = backbone_for_model_type(config.model_type)
    if run_backbone is not None:
        if run_backbone is not backbone:
            raise CheckpointError(
                f"{checkpoint!r} is a Sentio {run_backbone.name} model, not {backbone.name}: "
                f"pass --model {run_backbone.name}"
            )
        return True
    family = backbone.family_config_class
    if not isinstance(config, family):
        raise CheckpointError(
            f"{checkpoint!r} is a {config.model_type!r} checkpoint, but --model {backbone.name} needs a "
            f"{family.model_type!r} one"
        )
    return False


def _sentio_config(backbone: Backbone, base: PretrainedConfig, overrides: dict[str, Any]) -> PretrainedConfig:
    """Our config from a checkpoint's config: its architecture (and head, for a run) + overrides."""
    values = {k: v for k, v in base.to_dict().items() if k not in _DROPPED_CONFIG_KEYS and not k.startswith("_")}
    return backbone.config_class(**{**values, **overrides})


@contextlib.contextmanager
def _quiet_load_report() -> Iterator[None]:
    """transformers prints a table of missing/mismatched keys on every load; a backbone checkpoint
    always lacks our head, so the table would alarm without reason. The checks below say what
    matters in one line instead."""
    report = logging.getLogger("transformers.modeling_utils")
    level = report.level
    report.setLevel(logging.ERROR)
    try:
        yield
    finally:
        report.setLevel(level)


# Parameters of the Sentio head (the rest is the encoder a checkpoint must provide).
_HEAD_PARAMETERS = ("head.", "layer_weights")


def _load_weights(
    backbone: Backbone, source: str, local_only: bool, config: PretrainedConfig, checkpoint: str
) -> PreTrainedModel:
    """from_pretrained (which renames old-style keys) + a check that every encoder weight was loaded.

    A previous run's head is kept when its shapes fit the requested head settings and re-initialised
    otherwise (another hidden size, another number of layers to weigh); an encoder weight of another
    shape is an error.
    """
    try:
        with _quiet_load_report():
            model, info = backbone.model_class.from_pretrained(
                source, config=config, local_files_only=local_only, dtype=torch.float32, output_loading_info=True,
                ignore_mismatched_sizes=True,
            )
    except (OSError, RuntimeError, ValueError, SafetensorError) as exc:
        raise CheckpointError(f"cannot load the weights of {checkpoint!r} ({first_line(exc, 200)})") from None
    mismatched = [key for key, *_ in info.get("mismatched_keys", [])]
    encoder_mismatch = [k for k in mismatched if not k.startswith(_HEAD_PARAMETERS)]
    if encoder_mismatch:
        raise CheckpointError(
            f"the weights of {checkpoint!r} have other shapes than the requested config (e.g. {encoder_mismatch[0]}): "
            "leave architecture fields such as max_length/hidden_size to the checkpoint"
        )
    if mismatched:
        logger.info("%s: the head is new (other head settings than the checkpoint's)", checkpoint)
    # What a plain backbone checkpoint cannot have: our head and the learned layer weights.
    missing = sorted(k for k in info["missing_keys"] if not k.startswith(_HEAD_PARAMETERS))
    if missing:
        raise CheckpointError(
            f"{checkpoint!r} lacks {len(missing)} {backbone.name} encoder weight(s) (e.g. {', '.join(missing[:3])}): "
            f"is it a {backbone.name} checkpoint of the same architecture?"
        )
    dropped = sorted(info["unexpected_keys"])
    if dropped:
        logger.info("Dropped %d checkpoint weights the encoder does not use (%s ...)", len(dropped), dropped[0])
    logger.info("loaded the %s encoder from %s (%s)", backbone.name, checkpoint,
                "a previous run's head" if not info["missing_keys"] and not mismatched else "a new head")
    return model


@dataclass
class ModelSource:
    """Where a model comes from: its backbone, its config, and the weights to load (None: random)."""

    backbone: Backbone
    config: PretrainedConfig
    weights: str | None = None  # a local folder or hub id
    local_only: bool = True
    checkpoint: str = "scratch"  # as the user named it


def resolve_model(
    backbone_name: str,
    checkpoint: str | None = None,
    from_scratch: bool = False,
    config_overrides: dict[str, Any] | None = None,
    head_kwargs: dict[str, Any] | None = None,
) -> ModelSource:
    """The config of the model `build_model` would build, and where its weights are; reads at most
    a checkpoint's config.json, never its weights.

    - from_scratch without checkpoint: the default checkpoint's architecture (full_config, no
      download) + config_overrides, random weights, init_checkpoint="scratch".
    - from_scratch with checkpoint: that checkpoint's config, random weights.
    - otherwise the checkpoint (default: the backbone's) is a previous Sentio run (loaded whole, to
      fine-tune further) or a plain backbone checkpoint (encoder weights, a fresh head).
    config_overrides / head_kwargs set config fields; a run keeps its own head unless told.
    """
    backbone = get_backbone(backbone_name)
    overrides = {**(config_overrides or {}), **(head_kwargs or {})}
    if from_scratch and checkpoint is None:
        return ModelSource(backbone, backbone.fresh_config({**overrides, "init_checkpoint": "scratch"}))
    checkpoint = checkpoint or backbone.default_checkpoint
    source, local_only = resolve_checkpoint(checkpoint)
    base = _load_config(backbone, source, local_only, checkpoint)
    head = {} if _is_sentio_run(backbone, base, checkpoint) else backbone.default_head
    origin = "scratch" if from_scratch else checkpoint
    config = _sentio_config(backbone, base, {**head, **overrides, "init_checkpoint": origin})
    return ModelSource(backbone, config, None if from_scratch else source, local_only, checkpoint)


def build_model(
    backbone_name: str,
    checkpoint: str | None = None,
    from_scratch: bool = False,
    config_overrides: dict[str, Any] | None = None,
    head_kwargs: dict[str, Any] | None = None,
) -> PreTrainedModel:
    """A Sentio regression model of backbone `backbone_name` (see `resolve_model` for the cases)."""
    src = resolve_model(backbone_name, checkpoint, from_scratch, config_overrides, head_kwargs)
    if src.weights is None:
        return src.backbone.model_class(src.config)
    return _load_weights(src.backbone, src.weights, src.local_only, src.config, src.checkpoint)


def download_checkpoint(name_or_id: str, output_dir: str | os.PathLike) -> Path:
    """Download a backbone's checkpoint (a registry name or a hub id) into a plain folder for --checkpoint."""
    repo_id = BACKBONES[name_or_id].default_checkpoint if name_or_id in BACKBONES else name_or_id
    target = Path(output_dir)
    snapshot_download(repo_id, local_dir=target, allow_patterns=["*.json", "*.safetensors"])
    if not any(target.glob("*.safetensors")):  # older repos ship only PyTorch pickles
        snapshot_download(repo_id, local_dir=target, allow_patterns=["*.bin"])
    return target
