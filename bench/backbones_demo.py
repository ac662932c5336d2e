"""Fine-tune vs probe for every backbone on the demo corpus: test CCC, its share of the ceiling, time.

    python bench/backbones_demo.py --epochs 30 --output_dir runs/bench-backbones

Each backbone (ast, wav2vec2, vit, mert, clap) is its compact `--demo` config trained from scratch, once
fine-tuned (train.py's defaults) and once as a probe (`--probe`: the frozen, randomly initialised
encoder's pooled layers cached once, only the head trained). A random encoder carries no knowledge:
the probe rows measure the mechanics and the cost of probe mode, not what a pretrained MERT probe
reaches. `--modes lora` adds a LoRA row (`--lora`: adapters r 8 on the encoder's attention
projections, the head trained in full; on a random encoder too, so it measures the mechanics and
cost of LoRA). Wall and CPU seconds are of the whole train.py process (demo corpus and feature cache
already built by the first run; the probe's encoder pass included). Results are appended to
results.jsonl as they finish (a rerun skips finished rows); the table goes to backbones.md.
Trainable parameters are counted on the saved run as train.py built it (a probe: the head and layer
weights only). A benchmark, not a test.

The CLAP rows alone: python bench/backbones_demo.py --backbones clap --epochs 30
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
BACKBONES = ("ast", "wav2vec2", "vit", "mert", "clap")
MODES = ("finetune", "probe", "lora")
MODE_FLAGS = {"finetune": [], "probe": ["--probe"], "lora": ["--lora"]}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbones", default=",".join(BACKBONES))
    p.add_argument("--modes", default="finetune,probe", help=f"any of {', '.join(MODES)}")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--cache_dir", default="data/cache")
    p.add_argument("--output_dir", default="runs/bench-backbones")
    return p.parse_args()


def run_one(backbone: str, mode: str, args: argparse.Namespace, out: Path) -> dict:
    run_dir = out / f"{backbone}-{mode}"
    command = [sys.executable, "train.py", "--model", backbone, "--demo", "--epochs", str(args.epochs),
               "--seed", str(args.seed), "--output_dir", str(run_dir), "--cache_dir", args.cache_dir,
               "--report_to", "none", "--disable_tqdm", "true", "--overwrite_output_dir", *MODE_FLAGS[mode]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{backbone} {mode} failed:\n{done.stderr[-3000:]}")
    results = json.loads((run_dir / "all_results.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    return {"backbone": backbone, "mode": mode, "epochs": args.epochs, "wall_s": round(wall, 1),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "layer": config.get("layer"), "trainable_parameters": results.get("trainable_parameters"),
            **{k: results[k] for k in (
                "test_ccc_valence", "test_ccc_arousal", "test_ccc_mean", "test_ceiling_ccc_mean",
                "test_ccc_mean_of_ceiling", "train_runtime")}}


def table(rows: list[dict]) -> str:
    lines = ["| backbone | mode | test CCC mean (valence, arousal) | of ceiling | train time | wall | CPU | trained parameters |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        trained = f"{r['trainable_parameters']:,}" if r.get("trainable_parameters") else "-"  # older rows lack it
        lines.append(f"| {r['backbone']} | {r['mode']} | {r['test_ccc_mean']:.3f} ({r['test_ccc_valence']:.3f}, "
                     f"{r['test_ccc_arousal']:.3f}) | {r['test_ccc_mean_of_ceiling']:.2f} | {r['train_runtime']:.0f} s | "
                     f"{r['wall_s']:.0f} s | {r['cpu_s']:.0f} s | {trained} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    args = parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    done = {(r["backbone"], r["mode"], r["epochs"]) for r in rows}
    for backbone in args.backbones.split(","):
        for mode in args.modes.split(","):
            if (backbone, mode, args.epochs) in done:
                continue
            row = run_one(backbone, mode, args, out)
            print(json.dumps(row), flush=True)
            rows.append(row)
            with path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
    rows = [r for r in rows if r["epochs"] == args.epochs]
    markdown = f"# Backbones on the demo corpus ({args.epochs} epochs)\n\n" + table(rows)
    (out / "backbones.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
