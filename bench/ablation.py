"""Does GAN data help? Arms with EQUAL optimisation steps, several seeds, a paired comparison.

    python bench/ablation.py --demo --gan runs/gan-demo --seeds 3 --max_steps 300 --output_dir runs/ablation

Arms (compact AST from scratch on --demo, or the backbone's pretrained checkpoint otherwise):
  real            real train songs only, no augmentation
  classic         real + SpecAugment masks + mixup of spectrograms and labels
  gan_0.5, gan_1  real + synthetic windows at 0.5 / 1 synthetic windows per real train song
Every arm runs exactly --max_steps steps with the same batch size and learning-rate schedule, so
extra data cannot win by extra compute; the model after the last step is scored on the real test
songs (no best-checkpoint selection, which would use the validation songs differently per arm).
Seed s fixes the model's initialisation and data order in every arm, so arms are paired by seed:
the table gives test CCC mean +- sd per arm, and for each arm the mean paired difference to
`real` with a paired t-test (scipy) over seeds. Results are appended to results.jsonl as they
come (a rerun skips finished arm/seed pairs); the table goes to ablation.md. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

ARMS = ("real", "classic", "gan_0.5", "gan_1")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", action="store_true", help="use the demo corpus (compact AST)")
    p.add_argument("--data", default=None, help="DEAM folder or label CSV instead of --demo")
    p.add_argument("--label_scale", default=None)
    p.add_argument("--model", default="ast", choices=["ast", "vit"])
    p.add_argument("--checkpoint", default=None, help="local model folder (architecture; weights unless --from_scratch)")
    p.add_argument("--gan", default="runs/gan-demo", help="train_gan.py output folder (GAN arms)")
    p.add_argument("--arms", default=",".join(ARMS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max_steps", type=int, default=300)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--mixup_alpha", type=float, default=0.2)
    p.add_argument("--num_threads", type=int, default=1, help="torch threads (1: best on shared cores)")
    p.add_argument("--cache_dir", default="data/cache")
    p.add_argument("--output_dir", default="runs/ablation")
    return p.parse_args()


def run_arm(arm: str, seed: int, ctx: dict, args: argparse.Namespace) -> dict:
    from transformers import set_seed

    from sentio.args import ModelArguments
    from sentio.gan.report import train_and_test
    from sentio.gan.synthetic import with_synthetic
    from sentio.models import build_model
    from sentio.training.augment import Mixup
    from sentio.training.setup import training_datasets

    plan, spec, extractor, features = ctx["plan"], ctx["spec"], ctx["extractor"], ctx["features"]
    name = extractor.feature_name
    train, _, test = training_datasets(features, extractor, ModelArguments(model=spec.name, spec_augment=arm == "classic"))
    info = {}
    if arm == "classic":
        train = Mixup(train, name, alpha=args.mixup_alpha)
    elif arm.startswith("gan_"):
        train, info = with_synthetic(train, args.gan, float(arm.split("_")[1]), extractor, seed=seed)
    set_seed(seed)  # same initial weights for every arm of this seed
    model = build_model(spec.name, plan["checkpoint"], plan["from_scratch"], plan["config_overrides"], plan["head_kwargs"])
    t0 = time.perf_counter()
    metrics = train_and_test(model, train, test, name, args.max_steps, seed, args.learning_rate, args.batch_size)
    return {"arm": arm, "seed": seed, "steps": args.max_steps, "seconds": round(time.perf_counter() - t0, 1),
            "train_items": len(train), **{k: info[k] for k in ("synthetic_rows",) if k in info},
            **{k: float(metrics[k]) for k in ("test_ccc_mean", "test_ccc_valence", "test_ccc_arousal", "test_num_songs")}}


def table(rows: list[dict], args: argparse.Namespace) -> str:
    from scipy import stats

    by = {(r["arm"], r["seed"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"Test CCC (song level, [-1, 1] labels) after exactly {args.max_steps} steps of batch {args.batch_size}, "
             f"lr {args.learning_rate}; {len(seeds)} seed(s): {seeds}. Paired by seed against `real`.", "",
             "| arm | seeds | CCC mean ± sd | valence | arousal | Δ vs real (mean ± sd) | paired t p |",
             "|---|---|---|---|---|---|---|"]
    for arm in [a for a in ARMS if any(r["arm"] == a for r in rows)]:
        mine = [by[(arm, s)] for s in seeds if (arm, s) in by]
        ccc = np.array([r["test_ccc_mean"] for r in mine])
        val = np.mean([r["test_ccc_valence"] for r in mine])
        aro = np.mean([r["test_ccc_arousal"] for r in mine])
        sd = ccc.std(ddof=1) if len(ccc) > 1 else float("nan")
        paired = [(by[(arm, s)]["test_ccc_mean"], by[("real", s)]["test_ccc_mean"]) for s in seeds
                  if (arm, s) in by and ("real", s) in by]
        if arm == "real" or not paired:
            delta, p = "—", "—"
        else:
            diff = np.array([a - b for a, b in paired])
            delta = f"{diff.mean():+.4f} ± {diff.std(ddof=1):.4f}" if len(diff) > 1 else f"{diff.mean():+.4f}"
            p = f"{stats.ttest_rel([a for a, _ in paired], [b for _, b in paired]).pvalue:.3f}" if len(diff) > 1 else "n/a"
        lines.append(f"| {arm} | {len(mine)} | {ccc.mean():.4f} ± {sd:.4f} | {val:.4f} | {aro:.4f} | {delta} | {p} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    import torch

    torch.set_num_threads(args.num_threads)
    logging.basicConfig(level=logging.WARNING)
    from sentio.args import DataArguments, ModelArguments
    from sentio.data.feature_cache import build_feature_dataset
    from sentio.data.sources import prepare_manifest
    from sentio.models import build_model, get_backbone
    from sentio.training.setup import feature_extractor_for, model_init_plan

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_args = DataArguments(data=args.data, demo=args.demo, label_scale=args.label_scale, cache_dir=args.cache_dir)
    manifest, _ = prepare_manifest(data_args, out, progress=False)
    spec = get_backbone(args.model)
    model_args = ModelArguments(model=args.model, checkpoint=args.checkpoint)
    plan = model_init_plan(spec, model_args, data_args)
    probe = build_model(spec.name, plan["checkpoint"], plan["from_scratch"], plan["config_overrides"], plan["head_kwargs"])
    extractor = feature_extractor_for(spec, probe.config, model_args, plan["compact"])
    features, _ = build_feature_dataset(manifest, extractor, args.cache_dir)
    ctx = {"plan": plan, "spec": spec, "extractor": extractor, "features": features}

    results_path = out / "results.jsonl"
    rows = [json.loads(line) for line in results_path.read_text().splitlines()] if results_path.is_file() else []
    done = {(r["arm"], r["seed"], r["steps"]) for r in rows}
    for arm in args.arms.split(","):
        if arm not in ARMS:
            raise SystemExit(f"ablation.py: error: unknown arm {arm!r}; choose from {', '.join(ARMS)}")
        for seed in range(args.seeds):
            if (arm, seed, args.max_steps) in done:
                continue
            row = run_arm(arm, seed, ctx, args)
            print(json.dumps(row), flush=True)
            rows.append(row)
            with results_path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
    rows = [r for r in rows if r["steps"] == args.max_steps and r["seed"] < args.seeds]
    markdown = "# GAN augmentation ablation\n\n" + table(rows, args)
    (out / "ablation.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
