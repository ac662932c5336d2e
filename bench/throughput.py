"""Throughput of the full-size backbones with random weights: what a fine-tune, a probe and
prediction cost per window, and peak memory.

    python bench/throughput.py                      # AST-base, MERT-95M, MERT-330M on this machine
    python bench/throughput.py --models mert-95m --batch_size 8 --steps 20 --bf16   # on a GPU

For each model, in a process of its own (so peak memory is its own):
- fine-tune: training samples/s (forward + backward + AdamW step, batch --batch_size);
- probe head: training samples/s of the head alone on cached layer embeddings (batch 64);
- embedding pass: windows/s of the frozen encoder computing every layer's pooled output;
- inference: real-time factor (seconds of audio per wall second) of the forward pass;
- peak resident memory of the process, and model FLOPs per window (torch's FlopCounterMode on
  one forward: matrix multiplies and convolutions, 2 FLOPs per multiply-add). On a GPU, MFU =
  achieved FLOP/s / the card's dense bf16 peak (--peak_tflops; 989 for an H100 SXM).
Weights are random: the numbers are about cost, not accuracy. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# name -> (backbone, config overrides of the backbone's full config)
MODELS = {
    "ast-base": ("ast", {}),
    "mert-95m": ("mert", {}),
    "mert-330m": ("mert", dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                               feat_extract_norm="layer", do_stable_layer_norm=True)),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batch_size", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement (after one warm-up)")
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (on a GPU)")
    p.add_argument("--peak_tflops", type=float, default=989.0, help="the accelerator's dense bf16 peak, for MFU")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: measure one model in this process
    return p.parse_args()


def timed(fn, steps: int) -> float:
    """Seconds per call of `fn` (one warm-up call first), synchronising an accelerator."""
    import torch

    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def measure(name: str, args: argparse.Namespace) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sentio.models import build_model, get_backbone

    if args.threads:
        torch.set_num_threads(args.threads)
    backbone_name, overrides = MODELS[name]
    backbone = get_backbone(backbone_name)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(backbone_name, from_scratch=True, config_overrides=overrides).to(device)
    extractor = backbone.feature_extractor(model.config)
    params = extractor.params
    window_s = params.window_duration
    x = torch.randn(args.batch_size, *params.feature_shape, device=device)
    labels = torch.rand(args.batch_size, 2, device=device) * 2 - 1
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def train_step() -> None:
        with autocast:
            loss = model(x, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    finetune = timed(train_step, args.steps)
    model.eval()
    with torch.inference_mode():
        infer = timed(lambda: model(x), args.steps)
        with autocast:
            embed = timed(lambda: model(x, output_layer_embeddings=True), args.steps)
            layers = model(x[:1], output_layer_embeddings=True).layer_embeddings
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad(), autocast:
            model(x[:1])
    flops = counter.get_total_flops()

    probe = build_model(backbone_name, from_scratch=True, config_overrides=overrides,
                        head_kwargs={"probe": True, "layer": "weighted", "pooling": "mean", "head_hidden_size": 512,
                                     "final_dropout": 0.2}).to(device).train()
    cached = layers.float().expand(64, *layers.shape[1:]).contiguous()
    probe_labels = torch.rand(64, 2, device=device) * 2 - 1
    head_optimizer = torch.optim.AdamW([p for p in probe.parameters() if p.requires_grad], lr=1e-3)

    def head_step() -> None:
        probe(layer_embeddings=cached, labels=probe_labels).loss.backward()
        head_optimizer.step()
        head_optimizer.zero_grad(set_to_none=True)

    head = timed(head_step, max(args.steps, 10))
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    row = {"model": name, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "threads": torch.get_num_threads(), "dtype": "bf16" if args.bf16 else "fp32", "batch": args.batch_size,
           "window_s": round(window_s, 3), "parameters_m": round(model.num_parameters() / 1e6, 1),
           "gflops_per_window": round(flops / 1e9, 1),
           "finetune_samples_s": round(args.batch_size / finetune, 2),
           "probe_head_samples_s": round(64 / head, 1),
           "embedding_windows_s": round(args.batch_size / embed, 2),
           "inference_rtf": round(args.batch_size * window_s / infer, 1),
           "peak_memory_mb": round(peak_mb)}
    if device.type == "cuda":
        row["mfu_inference"] = round(flops * args.batch_size / infer / (args.peak_tflops * 1e12), 4)
        row["mfu_finetune"] = round(3 * flops * args.batch_size / finetune / (args.peak_tflops * 1e12), 4)  # fwd + 2x bwd
    return row


def main() -> int:
    args = parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args)))
        return 0
    rows = []
    settings = ["--batch_size", str(args.batch_size), "--steps", str(args.steps), "--threads", str(args.threads),
                "--peak_tflops", str(args.peak_tflops), *(["--bf16"] if args.bf16 else [])]
    for name in args.models.split(","):
        done = subprocess.run([sys.executable, __file__, *settings, "--one", name], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    keys = [k for k in rows[0] if k not in ("model",)]
    print("\n| model | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for row in rows:
        print(f"| {row['model']} | " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
