"""Peak memory of one training step (forward, backward, AdamW step) per backbone and mode, and what
it would take on a GPU.

    python bench/memory.py                                   # the GPU estimate, batch 8 (seconds)
    python bench/memory.py --measure_cpu --batch_size 2      # + each step run and measured on the CPU

Models: AST-base, MERT-95M and MERT-330M at their full sizes, random weights (no download), one
window per sample (AST 1024 frames = 10.24 s; MERT 5 s at 24 kHz). Modes: full fine-tuning, full
+ activation checkpointing, LoRA (r 8 on the attention projections, head trained), probe (the
head on cached layer embeddings; the encoder is loaded but does not run).

Measured (--measure_cpu): each configuration runs one real step in its own process; its peak
resident memory (ru_maxrss) and its resident memory once the model and optimiser exist. On a CPU
that is the whole story (fp32).

GPU estimate (computed, not measured), for a batch of `--gpu_batch_size` under bf16/fp16 autocast:
    weights 4 B x all parameters (fp32 master weights)
  + autocast's half copies of the weights it multiplies, 2 B x encoder parameters (not for a probe)
  + gradients 4 B and AdamW moments 8 B x trainable parameters
  + activations: the bytes autograd saves for the backward pass, counted with
    torch.autograd.graph.saved_tensors_hooks over an fp32 forward at the GPU batch run on the meta
    device (shapes only: seconds, no memory; parameters excluded, shared tensors once), halved
    for half precision (the
    matmul inputs it saves are bf16/fp16; norms and softmax stay fp32 for some of them: an
    estimate); with activation checkpointing the hook sees what the checkpoints keep (each layer's
    input and what is saved outside the layers), and one layer's saved tensors are added (the one
    being recomputed in the backward pass)
  + 1 GiB for the CUDA context and cuBLAS/cuDNN workspaces.
Allocator fragmentation comes on top; treat a fit within 10% of a card's memory as a maybe.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Full-size architectures: (backbone, config overrides of its full config, input shape per sample).
MODELS = {
    "ast-base": ("ast", {}, (1024, 128)),
    "mert-95m": ("mert", {}, (120000,)),
    # MERT-v1-330M: 24 x 1024, stable layer norm, layer-norm conv feature encoder with bias (its Hub config)
    "mert-330m": ("mert", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                               do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True), (120000,)),
}
MODES = ("full", "checkpointing", "lora", "probe")
GIB = 1024**3
# GPUs people train on, by memory (GiB usable, roughly).
GPUS = (("T4 / P100 (Kaggle, Colab)", 15.0), ("RTX 3060 / 4070", 12.0), ("A10G / L4 / RTX 4090", 24.0),
        ("A100 40 GB", 40.0), ("A100 / H100 80 GB", 80.0))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--measure_cpu", action="store_true", help="Also run each step on the CPU, in its own process, "
                   "and measure its peak RSS (heavy: minutes and GBs per configuration).")
    p.add_argument("--batch_size", type=int, default=8, help="Batch of the measured CPU step.")
    p.add_argument("--gpu_batch_size", type=int, default=8, help="Batch of the GPU estimate.")
    p.add_argument("--output", default=None, help="Also write the rows as JSON lines here.")
    p.add_argument("--child", nargs=3, metavar=("MODEL", "MODE", "BATCH"), help=argparse.SUPPRESS)
    return p.parse_args()


def _rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(model_name: str, mode: str, batch: int, device: str = "cpu") -> dict:
    """One training step of one configuration, in this process. On the meta device nothing is
    computed: only the forward's shapes, which give the saved activations (fast, no memory)."""
    import torch

    from sentio.models.registry import get_backbone
    from sentio.training.freeze import count_parameters

    torch.manual_seed(0)
    name, overrides, shape = MODELS[model_name]
    backbone = get_backbone(name)
    head = {"probe": True, "layer": "weighted"} if mode == "probe" else {}
    config = backbone.fresh_config({**overrides, **head})
    with torch.device(device):
        model = backbone.model_class(config).train()
        if mode == "lora":
            from sentio.training.lora import LoraSettings, apply_lora

            apply_lora(model, backbone.lora_targets, LoraSettings())
    if mode == "checkpointing":
        model.activation_checkpointing_enable()
    trainable, total = count_parameters(model)
    encoder = sum(p.numel() for n, p in model.named_parameters() if n.startswith(model.base_model_prefix + "."))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    with torch.device(device):
        labels = torch.rand(batch, 2) * 2 - 1
        if mode == "probe":  # what a probe trains on: each window's pooled layers, cached
            inputs = {"layer_embeddings": torch.randn(batch, config.num_hidden_layers + 1, config.hidden_size)}
        else:
            inputs = {backbone.input_name: torch.randn(batch, *shape)}
    rss_loaded = _rss_bytes()
    meta = device == "meta"

    # Bytes autograd keeps for the backward pass: every saved tensor once (by storage), parameters
    # excluded; and how much of it is saved inside the encoder layers.
    # Meta tensors have no addresses: there a saved tensor is known by its base tensor's identity, and
    # the [.., tokens, tokens] attention matrices of the unfused attention that runs on the meta device
    # are left out (fused attention, what SDPA runs on a GPU and on this CPU, keeps none; with that
    # rule the meta count of AST-base at batch 2 matched the CPU count to 0.1%).
    parameters = {id(p) if meta else p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()
    counts = {"total": 0, "layers": 0}
    inside = [0]

    def pack(tensor):
        base = tensor._base if tensor._base is not None else tensor
        if meta and base.dim() == 4 and base.shape[-1] == base.shape[-2] > 1:
            return tensor
        ptr = id(base) if meta else tensor.untyped_storage().data_ptr()
        if ptr not in parameters and ptr not in seen:
            seen.add(ptr)
            size = base.numel() * base.element_size() if meta else tensor.untyped_storage().nbytes()
            counts["total"] += size
            if inside[0]:
                counts["layers"] += size
        return tensor

    layers = model.get_submodule(backbone.encoder_layers)
    layer_input = [0]

    def enter(module, args):
        inside[0] += 1
        layer_input[0] = args[0].numel() * args[0].element_size() if args and torch.is_tensor(args[0]) else 0

    def leave(module, args, output):
        inside[0] -= 1

    hooks = [h for layer in layers for h in (layer.register_forward_pre_hook(enter), layer.register_forward_hook(leave))]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**inputs, labels=labels).loss
    for h in hooks:
        h.remove()
    if not meta:
        loss.backward()
        optimizer.step()
    return {"model": model_name, "mode": mode, "batch_size": batch, "parameters": total, "trainable": trainable,
            "encoder_parameters": encoder, "num_layers": len(layers), "layer_input_bytes": layer_input[0],
            "saved_bytes": counts["total"], "saved_in_layers_bytes": counts["layers"],
            "rss_loaded_bytes": None if meta else rss_loaded,
            "rss_peak_bytes": None if meta else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def gpu_estimate(row: dict, full: dict | None, gpu_batch: int) -> float:
    """GiB for one step at `gpu_batch` under half-precision autocast (see the module docstring)."""
    scale = gpu_batch / row["batch_size"]
    weights = 4 * row["parameters"] + (0 if row["mode"] == "probe" else 2 * row["encoder_parameters"])
    states = 12 * row["trainable"]
    activations = row["saved_bytes"]
    if row["mode"] == "checkpointing" and full is not None:  # + the layer being recomputed in the backward pass
        activations += full["saved_in_layers_bytes"] / row["num_layers"]
    return (weights + states + 0.5 * scale * activations) / GIB + 1.0


def largest_batch(row: dict, full: dict | None, gpu_batch: int, memory_gib: float) -> int:
    """The largest batch whose estimate fits `memory_gib` (activations grow linearly with the batch)."""
    fixed = gpu_estimate({**row, "saved_bytes": 0}, None, gpu_batch)
    per_sample = (gpu_estimate(row, full, gpu_batch) - fixed) / gpu_batch
    return int((memory_gib - fixed) / per_sample) if per_sample > 0 else 10**6


def fits(gib: float) -> str:
    ok = [name for name, memory in sorted(GPUS, key=lambda g: g[1]) if gib <= memory]
    return ok[0] if ok else "more than 80 GB"


def main() -> int:
    args = parse_args()
    if args.child:
        model, mode, batch = args.child
        print(json.dumps(measure(model, mode, int(batch))))
        return 0
    models, modes = args.models.split(","), args.modes.split(",")
    measured = {}
    if args.measure_cpu:  # each configuration in its own process: its peak RSS is its own
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        for model in models:
            for mode in modes:
                done = subprocess.run([sys.executable, __file__, "--child", model, mode, str(args.batch_size)],
                                      capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    print(f"{model} {mode} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                measured[model, mode] = json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps(measured[model, mode]), flush=True)
    estimated = {(model, mode): measure(model, mode, args.gpu_batch_size, "meta") for model in models for mode in modes}
    if args.output:
        Path(args.output).write_text("".join(json.dumps({**r, "measured": key in measured}) + "\n"
                                             for key, r in {**estimated, **measured}.items()))
    cpu = f"CPU peak RSS (batch {args.batch_size}, fp32, measured)"
    print(f"\n| model | mode | trained parameters | saved activations (batch {args.gpu_batch_size}, fp32) | {cpu} | "
          f"GPU estimate (batch {args.gpu_batch_size}, bf16/fp16) | smallest GPU that fits | largest batch on a 16 GB T4 |")
    print("|---|---|---|---|---|---|---|---|")
    for (model, mode), row in estimated.items():
        gib = gpu_estimate(row, estimated.get((model, "full")), args.gpu_batch_size)
        rss = measured.get((model, mode), {}).get("rss_peak_bytes")
        t4 = largest_batch(row, estimated.get((model, "full")), args.gpu_batch_size, 15.0)
        print(f"| {model} | {mode} | {row['trainable'] / 1e6:.1f} M of {row['parameters'] / 1e6:.1f} M | "
              f"{row['saved_bytes'] / GIB:.2f} GiB | {f'{rss / GIB:.2f} GiB' if rss else '-'} | {gib:.1f} GiB | "
              f"{fits(gib)} | {t4 if t4 < 10**4 else 'thousands (the head on cached embeddings)'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
