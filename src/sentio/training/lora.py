"""LoRA (`--lora`): low-rank adapters on the encoder's attention projections, through peft.

The backbone names its projections (`Backbone.lora_targets`, as the installed transformers
spells them); `--lora_target_modules` overrides. Adapters go on the encoder only (the head also
has an `out_proj`, and it trains in full, as do the learned layer weights).

What is saved where:
- a checkpoint during training: the base weights under their plain names (a from_pretrained
  folder, head included) + the adapter in `adapter/` (`adapter_config.json`,
  `adapter_model.safetensors`, peft's format), so a resume reloads both strictly and continues
  exactly;
- the finished run: the adapters merged into the encoder, one plain from_pretrained folder that
  loads without peft; `--save_adapter` adds the adapter files in `adapter/` (with the trained head,
  as peft's `modules_to_save`) for people who share adapters over the same base checkpoint.
The adapter lives in a subfolder because transformers' from_pretrained, when peft is installed,
applies an `adapter_config.json` it finds beside `config.json`: on a merged run that would add the
adapters a second time.
peft is imported only here, and only by a LoRA run.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from ..errors import ArgumentError, CheckpointError
from ..models.backbone import Backbone

logger = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_NAME = "default"
# Keys of peft's adapter files start with the PeftModel wrapper's prefix.
_PEFT_PREFIX = "base_model.model."
# A LoRA weight in the model's state dict: `<module>.lora_A.default.weight` (also lora_B, DoRA's magnitude).
_LORA_KEY = re.compile(r"\.lora_[A-Za-z_]+\.")
_HEAD_MODULE = "head"


@dataclass(frozen=True)
class LoraSettings:
    """The --lora flags."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.1
    target_modules: tuple[str, ...] | None = None  # None: the backbone's own


def import_peft() -> Any:
    """peft, or one line saying how to install it."""
    try:
        import peft
    except ImportError:
        raise ArgumentError("--lora needs the peft package: pip install peft==0.21.2") from None
    return peft


def encoder_linear_names(backbone: Backbone, config: PretrainedConfig) -> set[str]:
    """Short names of the encoder's nn.Linear modules, read from the architecture built on the meta
    device (no memory, no weights)."""
    with torch.device("meta"):
        model = backbone.model_class(config)
    prefix = model.base_model_prefix + "."
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
            if name.startswith(prefix) and isinstance(module, nn.Linear)}


def target_modules(backbone: Backbone, settings: LoraSettings, config: PretrainedConfig) -> tuple[str, ...]:
    """The projections that get adapters; one line when the backbone has none of that name."""
    targets = tuple(settings.target_modules or backbone.lora_targets)
    if not targets:
        raise ArgumentError(f"--lora: {backbone.name} names no modules for adapters; pass --lora_target_modules")
    present = encoder_linear_names(backbone, config)
    missing = [t for t in targets if t not in present]
    if missing:
        raise ArgumentError(f"--lora_target_modules: the {backbone.name} encoder has no linear layer named "
                            f"{', '.join(missing)}; its linear layers are {', '.join(sorted(present))}")
    return targets


def lora_config(model: PreTrainedModel, targets: tuple[str, ...], settings: LoraSettings) -> Any:
    """peft's LoraConfig for `targets` inside the encoder only (a regex anchored at the encoder's prefix)."""
    peft = import_peft()
    names = "|".join(re.escape(t) for t in targets)
    return peft.LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, bias="none",
                           target_modules=rf"^{re.escape(model.base_model_prefix)}\..*\.({names})$")


def apply_lora(model: PreTrainedModel, targets: tuple[str, ...], settings: LoraSettings) -> Any:
    """Inject the adapters into `model` in place (it stays its own class, so Trainer, checkpoints
    and the strict reloads see the same model); only the adapters, the head and the layer weights
    train afterwards. Returns the LoraConfig."""
    peft = import_peft()
    config = lora_config(model, targets, settings)
    peft.tuners.lora.LoraModel(model, config, ADAPTER_NAME)  # wraps the matched nn.Linear modules in place
    for name, param in model.named_parameters():
        if name.startswith((_HEAD_MODULE + ".", "layer_weights")):
            param.requires_grad_(True)
    return config


def has_adapters(model: nn.Module) -> bool:
    """Whether `model` carries (unmerged) LoRA adapters; needs no peft."""
    return any(_LORA_KEY.search(name) for name, _ in model.named_parameters())


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The base weights under the names a model without adapters has (`q_proj.base_layer.weight`
    -> `q_proj.weight`), adapters left out: what a from_pretrained folder holds."""
    return {key.replace(".base_layer.", "."): value for key, value in model.state_dict().items()
            if not _LORA_KEY.search(key)}


def adapter_dir(folder: str) -> str:
    """Where a run or checkpoint keeps its adapter files."""
    return os.path.join(folder, ADAPTER_DIR)


def save_adapter(model: PreTrainedModel, folder: str) -> None:
    """FOLDER/adapter/: adapter_config.json + adapter_model.safetensors in peft's format (keys of a
    PeftModel over this model), the head included as a `modules_to_save` module."""
    from safetensors.torch import save_file

    output_dir = adapter_dir(folder)

    config = model.peft_config[ADAPTER_NAME]
    state = {}
    for key, value in model.state_dict().items():
        if _LORA_KEY.search(key):
            state[_PEFT_PREFIX + key.replace(f".{ADAPTER_NAME}.", ".")] = value
        elif key.startswith(_HEAD_MODULE + "."):
            state[_PEFT_PREFIX + key] = value
    os.makedirs(output_dir, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, os.path.join(output_dir, ADAPTER_WEIGHTS),
              metadata={"format": "pt"})
    values = config.to_dict()
    values.update(modules_to_save=[_HEAD_MODULE], base_model_name_or_path=getattr(model.config, "init_checkpoint", None))
    for key, value in values.items():  # sets and enums are not JSON
        if isinstance(value, set):
            values[key] = sorted(value)
    with open(os.path.join(output_dir, ADAPTER_CONFIG), "w") as fh:
        json.dump(values, fh, indent=2, default=str)


def adapter_state(model: nn.Module, checkpoint: str) -> dict[str, torch.Tensor]:
    """The adapter weights of a checkpoint under `model`'s state-dict names; every adapter of the
    model must be there and nothing else (a strict load)."""
    from safetensors.torch import load_file

    path = os.path.join(adapter_dir(checkpoint), ADAPTER_WEIGHTS)
    if not os.path.isfile(path):
        raise CheckpointError(f"{checkpoint}: has {ADAPTER_DIR}/{ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS}")
    saved = {k[len(_PEFT_PREFIX):] if k.startswith(_PEFT_PREFIX) else k: v for k, v in load_file(path).items()}
    wanted = [k for k in model.state_dict() if _LORA_KEY.search(k)]
    state, missing = {}, []
    for key in wanted:
        name = key.replace(f".{ADAPTER_NAME}.", ".")
        if name in saved:
            state[key] = saved.pop(name)
        else:
            missing.append(key)
    extra = [k for k in saved if _LORA_KEY.search(k)]
    if missing or extra:
        raise CheckpointError(f"{checkpoint}: its adapters do not match this model's (missing {missing[:2]}, "
                              f"unexpected {extra[:2]}): resume with the run's own --lora settings")
    return state


def with_adapters(model: nn.Module, plain: dict[str, torch.Tensor], checkpoint: str) -> dict[str, torch.Tensor]:
    """A full state dict for `model` (with adapters) from a plain one plus the checkpoint's adapters."""
    adapters = adapter_state(model, checkpoint)
    return {key: adapters[key] if key in adapters else plain[key.replace(".base_layer.", ".")]
            for key in model.state_dict()}


def merge_adapters(model: nn.Module) -> int:
    """Fold every adapter into its base layer and put the plain nn.Linear back, in place: the model
    is then exactly its class without peft. Returns how many layers were merged."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    wrapped = [(name, module) for name, module in model.named_modules() if isinstance(module, BaseTunerLayer)]
    for name, module in wrapped:
        module.merge(safe_merge=True)  # safe_merge: refuses (raises) if a merged weight is not finite
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    return len(wrapped)
