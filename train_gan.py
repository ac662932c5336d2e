"""Train a conditional GAN on the train split's spectrogram features and write a synthetic split.

    python train_gan.py --demo --epochs 20 --num_synthetic 500 --output_dir runs/gan-demo
    python train_gan.py --data /path/to/DEAM --model ast --epochs 100 --num_synthetic 3200 --output_dir runs/gan
    python train.py --model ast --demo --synthetic runs/gan-demo --synthetic_ratio 0.5

Writes to --output_dir: gan_checkpoint.pt (resumable), tensorboard/, synthetic/ (a `datasets`
dataset with the real features' schema), synthetic_manifest.csv, audio/*.wav (Griffin-Lim),
spectrogram_grid.png, label_distributions.png, gan_quality.json and gan_report.json.
"""

from __future__ import annotations

import json
import logging
import os
import sys

os.environ.setdefault("SENTIO_DEFER_REGISTRATION", "1")  # --help stays fast: see sentio/__init__.py

from sentio.args import DataArguments  # noqa: E402
from sentio.cli import parse_dataclasses, parser_for, run_cli  # noqa: E402
from sentio.errors import ArgumentError  # noqa: E402
from sentio.gan.args import GanArguments  # noqa: E402

logger = logging.getLogger("train_gan")


def main() -> int:
    parser = parser_for((DataArguments, GanArguments), prog="train_gan.py",
                        description="Train a conditional GAN on train-split spectrograms and write a synthetic split.")
    data_args, args = parse_dataclasses(parser)
    # Heavy imports once the arguments are valid.
    import numpy as np
    import torch

    from sentio.args import ModelArguments
    from sentio.data.feature_cache import build_feature_dataset
    from sentio.data.sources import prepare_manifest
    from sentio.gan.data import SpecLayout, real_features, train_images
    from sentio.gan.models import GanConfig
    from sentio.gan.render import label_distributions, spectrogram_grid, write_audio_samples
    from sentio.gan.report import check_regressor, quality_report, tstr
    from sentio.gan.synthetic import sample_labels, write_synthetic
    from sentio.gan.train import CHECKPOINT, POLICIES, GanTrainer, TrainConfig
    from sentio.metrics import average_by_song
    from sentio.outputs import ensure_writable_dir
    from sentio.training.setup import model_plan

    policy = [] if args.diff_augment.strip().lower() == "none" else [p.strip() for p in args.diff_augment.split(",")]
    if set(policy) - set(POLICIES):
        raise ArgumentError(f"--diff_augment: unknown policy {sorted(set(policy) - set(POLICIES))[0]!r}; "
                            f"use {','.join(POLICIES)}")
    if args.epochs < 0 or args.num_synthetic < 1:
        raise ArgumentError("--epochs must be >= 0 and --num_synthetic >= 1")
    torch.manual_seed(args.seed)
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)

    # The exact features the regressor of this backbone (compact with --demo) is trained on.
    model_args = ModelArguments(model=args.model, checkpoint=args.checkpoint, max_length=args.max_length,
                                window_seconds=args.window_seconds)
    plan = model_plan(model_args, data_args.demo)
    if not plan.backbone.is_spectrogram:
        from sentio.models.registry import BACKBONES

        usable = ", ".join(b.name for b in BACKBONES.values() if b.is_spectrogram)
        raise ArgumentError(f"--model {plan.backbone.name} reads {plan.backbone.feature_kind} features, not spectrograms: "
                            f"the GAN imitates spectrogram features (use --model {usable.replace(', ', ' or ')})")
    config = plan.architecture()  # no weights are read
    extractor = plan.feature_extractor(config)
    layout = SpecLayout.for_extractor(extractor, args.gan_height, args.gan_width)
    out = ensure_writable_dir(args.output_dir)
    gan_config = GanConfig(height=args.gan_height, width=args.gan_width, z_dim=args.z_dim, channels=args.gan_channels)
    regressor = None
    if args.regressor:  # checked before hours of training, not after
        from sentio.inference.run import load_run

        regressor = load_run(args.regressor)
        check_regressor(extractor, regressor, args.regressor)

    manifest, _ = prepare_manifest(data_args, out, progress=args.progress)
    features, feature_report = build_feature_dataset(manifest, extractor, data_args.cache_dir,
                                                     num_proc=data_args.preprocessing_num_workers)
    images, labels, song_ids = train_images(features, layout)  # split == "train" only
    images = layout.fit(images)
    logger.info("GAN data: %d full train windows of %d songs, %s -> %dx%d", len(images), len(set(song_ids)),
                list(layout.feature_shape), layout.height, layout.width)

    # Train (or resume), one checkpoint per epoch.
    train_config = TrainConfig(batch_size=args.batch_size, lr_g=args.lr_g, lr_d=args.lr_d,
                               betas=(args.adam_beta1, args.adam_beta2), ema_decay=args.ema_decay,
                               diff_augment=policy, seed=args.seed)
    trainer = GanTrainer(gan_config, train_config, device="cuda" if torch.cuda.is_available() else "cpu")
    trainer.extra = {"layout": layout.to_dict(), "feature_extractor": extractor.to_dict()}
    if args.resume and (out / CHECKPOINT).is_file():
        trainer.load(str(out / CHECKPOINT))
        logger.info("resumed from %s at epoch %d", out / CHECKPOINT, trainer.epoch)
    trainer.fit(images, torch.from_numpy(labels), args.epochs, str(out), progress=args.progress)

    # The synthetic split: labels drawn from the train songs' label distribution.
    song_labels, _ = average_by_song(labels, song_ids)
    syn_labels = sample_labels(song_labels, args.num_synthetic, seed=args.seed, jitter=args.label_jitter)
    synthetic = write_synthetic(out, trainer.G_ema, layout, extractor, syn_labels, seed=args.seed)

    # Listen and look.
    limit = max(args.quality_samples, args.num_grid, args.num_audio)
    real, real_labels, real_songs = real_features(features, layout, "train", limit=limit, seed=args.seed)
    syn = np.asarray(synthetic.select(range(min(limit, len(synthetic)))).with_format("numpy")[layout.feature_name])
    syn_lab = syn_labels[: len(syn)]
    # Real windows for comparison: the ones whose labels are nearest the synthetic ones.
    nearest = [int(np.argmin(((real_labels - y) ** 2).sum(1))) for y in syn_lab[: args.num_audio]]
    write_audio_samples(out / "audio", syn[: args.num_audio], syn_lab[: args.num_audio], extractor, "synthetic")
    write_audio_samples(out / "audio", real[nearest], real_labels[nearest], extractor, "real")
    spectrogram_grid(out / "spectrogram_grid.png", real, real_labels, syn[: args.num_grid], syn_lab[: args.num_grid],
                     layout.freq_axis)
    label_distributions(out / "label_distributions.png", song_labels, syn_labels)

    # Quality, always beside real vs real.
    test = real_features(features, layout, "test", limit=args.quality_samples, seed=args.seed)[:2]
    quality = quality_report(layout, real, real_labels, real_songs, syn, syn_lab, regressor, test, seed=args.seed)
    if args.tstr_epochs > 0:
        quality["tstr"] = tstr(lambda: plan.backbone.model_class(config), synthetic, features, extractor,
                               args.tstr_epochs, seed=args.seed)
    else:
        quality["tstr"] = "skipped: --tstr_epochs 0"
    (out / "gan_quality.json").write_text(json.dumps(quality, indent=2) + "\n")

    seconds = [h["seconds"] for h in trainer.history]
    report = {"backbone": plan.backbone.name, "features": extractor.to_dict(), "layout": layout.to_dict(),
              "gan": gan_config.to_dict(), "train": vars(args), "train_windows": len(images),
              "train_songs": len(set(song_ids)), "epochs_done": trainer.epoch, "steps": trainer.step,
              "seconds_per_epoch": float(np.mean(seconds)) if seconds else None, "history": trainer.history,
              "num_synthetic": len(synthetic), "failed_clips": feature_report["failed"]}
    (out / "gan_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"GAN: {trainer.epoch} epochs, {len(synthetic)} synthetic windows -> {out / 'synthetic'}")
    return 0


if __name__ == "__main__":
    run_cli(main, os.path.basename(sys.argv[0]))
