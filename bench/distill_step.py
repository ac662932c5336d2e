"""Where a distillation training step's time goes: the student's forward + backward + AdamW step
on a batch of log-mel windows, in several layouts, and the cost of producing that batch.

    python bench/distill_step.py                                   # the demo's shape: 32 x 256 frames x 128 mel
    python bench/distill_step.py --frames 1024 --threads 1,2 --steps 5

Rows (each after one warm-up step; wall and CPU seconds per step, median over --steps):
- the CNN student as distill.py trains it (NCHW), and the same in channels-last memory format;
- each at every --threads count (torch intra-op threads);
- data: one batch drawn from an in-memory window array with SpecAugment and the collator, the
  path a training step's batch takes (the cached features are memory-mapped; this is its CPU part).
Random weights and inputs: the numbers are about cost, not accuracy. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--frames", type=int, default=256)
    p.add_argument("--mel", type=int, default=128)
    p.add_argument("--width_mult", type=float, default=0.4)
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--layouts", default="nchw,channels_last")
    return p.parse_args()


def per_step(fn, steps: int) -> tuple[float, float]:
    """Median wall and CPU seconds per call of `fn`, after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(steps):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    args = parse_args()
    import numpy as np
    import torch

    from sentio.distill.trainer import DistillCollator, distillation_loss
    from sentio.models.student import StudentEmotionConfig, StudentForEmotionRegression
    from sentio.training.augment import SpecAugment

    torch.manual_seed(0)
    b, t, m = args.batch_size, args.frames, args.mel
    x = torch.randn(b, t, m)
    mask = torch.ones(b, t, dtype=torch.int64)
    labels, teacher = torch.rand(b, 2) * 2 - 1, torch.rand(b, 2) * 2 - 1
    print(f"batch {b} x {t} frames x {m} mel, width_mult {args.width_mult}, torch {torch.__version__}")
    print(f"{'row':<34} {'wall s/step':>11} {'cpu s/step':>11}")
    for threads in (int(n) for n in args.threads.split(",")):
        torch.set_num_threads(threads)
        for layout in args.layouts.split(","):
            config = StudentEmotionConfig(architecture="cnn", width_mult=args.width_mult, num_mel_bins=m,
                                          max_length=t, loss="mse")
            model = StudentForEmotionRegression(config).train()
            if layout == "channels_last":
                model = model.to(memory_format=torch.channels_last)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

            def step() -> None:
                optimizer.zero_grad()
                loss = distillation_loss(model(x, mask).predictions, labels, teacher, 0.5)
                loss.backward()
                optimizer.step()

            wall, cpu = per_step(step, args.steps)
            print(f"{f'train step {layout}, {threads} thread(s)':<34} {wall:>11.3f} {cpu:>11.3f}", flush=True)
            with torch.no_grad():
                model.eval()
                wall, cpu = per_step(lambda: model(x, mask), args.steps)
            print(f"{f'  forward only (eval)':<34} {wall:>11.3f} {cpu:>11.3f}", flush=True)

    windows = np.random.default_rng(0).standard_normal((512, t, m)).astype(np.float32)
    augment, collate, rng = SpecAugment(time_axis=0), DistillCollator("input_values"), np.random.default_rng(1)

    def batch() -> None:
        pick = rng.choice(len(windows), size=b, replace=False)
        collate([{"input_values": augment(windows[i].copy(), t), "length": t, "labels": np.zeros(2, np.float32),
                  "teacher_predictions": np.zeros(2, np.float32)} for i in pick])

    wall, cpu = per_step(batch, args.steps)
    print(f"{'data: draw + SpecAugment + collate':<34} {wall:>11.3f} {cpu:>11.3f}")


if __name__ == "__main__":
    main()
