"""Activation checkpointing changes nothing but memory, and half-precision autocast stays finite and
close to float32, for every registered backbone (tiny configs, dropout and random masking off)."""

from __future__ import annotations

import copy

import pytest
import torch

from sentio.models.registry import BACKBONES
from tests.tiny import tiny_inputs
from tests.tiny import TINY

NAMES = sorted(BACKBONES)
WINDOW_SECONDS = 3.2  # a dynamic model's window: 6 half-second frames
HEADS = {"static": {}, "dynamic": {"target": "dynamic"}, "uncertainty": {"uncertainty": True}}
# Half-precision predictions (in (-1, 1)) against float32, on these tiny random models: bfloat16
# keeps 8 bits of mantissa (~0.4% relative), float16 11 bits.
TOLERANCE = {torch.float16: 0.01, torch.bfloat16: 0.05}


def quiet_model(name: str, **head) -> torch.nn.Module:
    """A tiny model of backbone `name` in training mode with every dropout and random mask off, so
    two forwards of the same batch are the same computation."""
    backbone = BACKBONES[name]
    config = backbone.fresh_config({**TINY[name], **head})
    for key, value in config.to_dict().items():
        if isinstance(value, float) and ("dropout" in key or key in ("layerdrop", "mask_time_prob", "mask_feature_prob")):
            setattr(config, key, 0.0)
    return backbone.model_class(config).train()


def batch_for(model: torch.nn.Module, name: str, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = tiny_inputs(name, batch=4, seed=seed)
    batch = {"labels": torch.rand(4, 2, generator=g) * 2 - 1}
    if model.config.target != "static":
        model.config.input_step_seconds = WINDOW_SECONDS / model._input_steps(x)
        frames = torch.rand(4, 6, 2, generator=g) * 2 - 1
        frames[0, :2] = float("nan")  # unlabelled half-seconds
        batch["frame_labels"] = frames
    return {BACKBONES[name].input_name: x, **batch}


def with_lora(model: torch.nn.Module, name: str) -> torch.nn.Module:
    from sentio.training.lora import LoraSettings, apply_lora

    apply_lora(model, BACKBONES[name].lora_targets, LoraSettings(r=4, alpha=8, dropout=0.0))
    # peft starts lora_B at zero (the adapted model equals the base); nudge it so adapters carry gradient paths that matter
    with torch.no_grad():
        for key, param in model.named_parameters():
            if "lora_B" in key:
                param.normal_(0.0, 0.02)
    return model


MODES = {
    "finetune": lambda name: quiet_model(name),
    "lora": lambda name: with_lora(quiet_model(name), name),
    "weighted": lambda name: quiet_model(name, layer="weighted"),
    "dynamic": lambda name: quiet_model(name, target="dynamic", uncertainty=True),
}


def loss_and_grads(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", NAMES)
def test_activation_checkpointing_keeps_loss_and_gradients(name, mode):
    torch.manual_seed(0)
    plain = MODES[mode](name)
    if not plain.supports_gradient_checkpointing:
        pytest.skip(f"{name} refuses activation checkpointing (train.py says so in one line)")
    checkpointed = copy.deepcopy(plain)
    checkpointed.activation_checkpointing_enable()  # what --activation_checkpointing (or --gradient_checkpointing) calls
    batch = batch_for(plain, name)
    batch_for(checkpointed, name)  # the same config fields (a dynamic model's time step)

    # Checkpointing really happens: each encoder layer runs again in the backward pass (a hook inside
    # the layer sees it; the layer's own hooks stay outside the checkpoint).
    calls = []
    top = checkpointed.get_submodule(BACKBONES[name].encoder_layers)[-1]
    inner = next(m for m in top.modules() if m is not top and not isinstance(m, torch.nn.ModuleList))  # CLAP: a stage's first block
    handle = inner.register_forward_hook(lambda *args: calls.append(1))
    loss, grads = loss_and_grads(checkpointed, batch)
    handle.remove()
    assert len(calls) == 2, f"the top layer ran {len(calls)} time(s): activation checkpointing is not active"

    reference_loss, reference_grads = loss_and_grads(plain, batch)
    torch.testing.assert_close(loss, reference_loss, rtol=1e-6, atol=1e-7)
    assert grads.keys() == reference_grads.keys() and grads
    if mode == "lora":  # only adapters, head (and layer weights) get gradients
        assert all("lora_" in k or k.startswith(("head.", "layer_weights")) for k in grads)
    for key, grad in grads.items():
        torch.testing.assert_close(grad, reference_grads[key], rtol=1e-5, atol=1e-7, msg=key)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("name", NAMES)
def test_autocast_half_precision_is_finite_and_close_to_float32(name, head, dtype):
    torch.manual_seed(0)
    model = quiet_model(name, **HEADS[head])
    batch = batch_for(model, name)
    with torch.no_grad():
        reference = model(**batch)
    with torch.autocast("cpu", dtype=dtype):
        out = model(**batch)
    # Losses and outputs stay float32 whatever the autocast dtype (a batch CCC in half precision
    # loses its variance; a half softplus rounds the smallest spreads).
    assert out.loss.dtype == torch.float32 and out.predictions.dtype == torch.float32
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert (out.predictions - reference.predictions).abs().max() < TOLERANCE[dtype]
    assert abs(out.loss.item() - reference.loss.item()) < 4 * TOLERANCE[dtype]
    if out.spread is not None:
        assert out.spread.dtype == torch.float32 and (out.spread > 0).all()
        assert (out.spread - reference.spread).abs().max() < TOLERANCE[dtype]


@pytest.mark.parametrize("flag", ["--activation_checkpointing", "--gradient_checkpointing"])
def test_both_flag_names_turn_checkpointing_on(flag, tmp_path):
    """transformers 5.23 owns the flag (--gradient_checkpointing is its deprecated name); its Trainer
    calls model.activation_checkpointing_enable() when training starts (tested above)."""
    from sentio.args import EmotionTrainingArguments
    from sentio.cli import parse_dataclasses, parser_for

    (args,) = parse_dataclasses(parser_for((EmotionTrainingArguments,)),
                                ["--output_dir", str(tmp_path), "--report_to", "none", flag])
    assert args.activation_checkpointing is True
