"""Which part of the model trains: all of it, the head only (--probe), LoRA adapters + head
(--lora), or the top N encoder layers + head (--unfreeze_top_layers N)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from transformers import PretrainedConfig, PreTrainedModel

from ..errors import ArgumentError
from ..models.backbone import Backbone

logger = logging.getLogger(__name__)
# The head and the learned layer weights always train (the probe freezes the rest in the model itself).
HEAD_PARAMETERS = ("head.", "layer_weights")


@dataclass
class TrainedPart:
    """What a run trains: a sentence for the log and the model card, and the parameter counts."""

    description: str
    trainable: int
    total: int
    lora: Any = None  # the peft LoraConfig of a --lora run

    @property
    def share(self) -> float:
        return self.trainable / max(self.total, 1)

    def summary(self) -> str:
        return f"{self.description}: {self.trainable:,} of {self.total:,} parameters train ({100 * self.share:.2f}%)"


def count_parameters(model: PreTrainedModel) -> tuple[int, int]:
    """(trainable, total) parameters; a LoRA layer's base weight counts once, in the total."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def check_top_layers(count: int, config: PretrainedConfig, backbone: Backbone) -> None:
    """--unfreeze_top_layers N must name 1..num_hidden_layers layers of a backbone that says where they are."""
    if not backbone.encoder_layers:
        raise ArgumentError(f"--unfreeze_top_layers: {backbone.name} does not say where its encoder layers are")
    if not 1 <= count <= config.num_hidden_layers:
        raise ArgumentError(f"--unfreeze_top_layers {count}: the {backbone.name} encoder has "
                            f"{config.num_hidden_layers} layers; pass 1..{config.num_hidden_layers}")


def unfreeze_top_layers(model: PreTrainedModel, backbone: Backbone, count: int) -> None:
    """Freeze everything but the top `count` encoder layers, the head and the layer weights."""
    check_top_layers(count, model.config, backbone)
    layers = model.get_submodule(backbone.encoder_layers)
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(HEAD_PARAMETERS))
    for layer in list(layers)[len(layers) - count:]:
        for param in layer.parameters():
            param.requires_grad_(True)


def select_trained(model: PreTrainedModel, backbone: Backbone, model_args: Any) -> TrainedPart:
    """Set which parameters train, as the flags say, and describe it."""
    lora = None
    if model_args.lora:
        from .lora import LoraSettings, apply_lora, target_modules

        settings = LoraSettings(model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout,
                                model_args.lora_target_list)
        targets = target_modules(backbone, settings, model.config)
        lora = apply_lora(model, targets, settings)
        what = (f"LoRA adapters (r {settings.r}, alpha {settings.alpha:g}, dropout {settings.dropout:g}) on the encoder's "
                f"{', '.join(targets)} + the head")
    elif model_args.unfreeze_top_layers:
        unfreeze_top_layers(model, backbone, model_args.unfreeze_top_layers)
        what = f"the top {model_args.unfreeze_top_layers} encoder layers + the head"
    elif model.config.probe:
        what = "the head only (frozen encoder, embeddings cached once: probe mode)"
    else:
        what = "the whole model"
    trainable, total = count_parameters(model)
    return TrainedPart(what, trainable, total, lora)


def check_trained_part(model_args: Any, backbone: Backbone, config: PretrainedConfig) -> None:
    """The --lora / --unfreeze_top_layers flags against the architecture, before any data work."""
    if model_args.lora:
        from .lora import LoraSettings, target_modules

        target_modules(backbone, LoraSettings(target_modules=model_args.lora_target_list), config)
    if model_args.unfreeze_top_layers:
        check_top_layers(model_args.unfreeze_top_layers, config, backbone)


def finish_training(trainer: Any, save_adapter: bool = False) -> None:
    """After training: a LoRA model's adapters are merged into the encoder in place (the run is then
    one plain from_pretrained folder); with `save_adapter` the adapter files are written first."""
    from .lora import has_adapters, merge_adapters, save_adapter as write_adapter

    model = trainer.accelerator.unwrap_model(trainer.model)
    if not has_adapters(model):
        return
    if save_adapter and trainer.args.should_save:
        write_adapter(model, trainer.args.output_dir)
    merged = merge_adapters(model)
    logger.info("merged the LoRA adapters of %d layers into the encoder", merged)
