"""Train a conditional GAN on the train split's spectrogram features and write a synthetic split.

    python train_gan.py --demo --epochs 20 --num_synthetic 500 --output_dir runs/gan-demo
    python train_gan.py --data /path/to/DEAM --model ast --epochs 100 --num_synthetic 3200 --output_dir runs/gan
    python train.py --model ast --demo --synthetic runs/gan-demo --synthetic_ratio 0.5

Writes to --output_dir: gan_checkpoint.pt (the last epoch; a rerun resumes from it), gan_best.pt
(the lowest FD tracked so far), tensorboard/ (losses; FD/KID under quality/), synthetic/ (a
`datasets` dataset with the real features' schema), synthetic_manifest.csv, audio/*.wav
(Griffin-Lim), spectrogram_grid.png, label_distributions.png, gan_quality.json and gan_report.json.
"""

from __future__ import annotations

import os
import sys

from sentio.args import DataArguments
from sentio.cli import parse_dataclasses, parser_for, run_cli
from sentio.gan.args import GanArguments


def main() -> int:
    parser = parser_for((DataArguments, GanArguments), prog="train_gan.py",
                        description="Train a conditional GAN on train-split spectrograms and write a synthetic split.")
    data_args, args = parse_dataclasses(parser)
    from sentio.gan.study import train_gan  # heavy imports once the flags parse

    report = train_gan(data_args, args)
    print(f"GAN: {report['epochs_done']} epochs, {report['num_synthetic']} synthetic windows (from the "
          f"{report['sampled_from']} generator) -> {os.path.join(args.output_dir, 'synthetic')}")
    return 0


if __name__ == "__main__":
    run_cli(main, os.path.basename(sys.argv[0]))
