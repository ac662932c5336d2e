"""train_gan.py's work as one call: features -> GAN (resumable) -> synthetic split -> reports.

The augmentation study (bench/augmentation_curve.py) calls `train_gan` in-process, once per train
fraction, with `train_songs` naming that fraction's songs.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset

from ..args import DataArguments, ModelArguments
from ..features.cache import build_feature_dataset, torch_threads
from ..features.extractor import SentioFeatureExtractor
from ..data.sources import prepare_manifest
from ..errors import ArgumentError, DataError, MissingFileError
from ..inference.loading import Run, load_run
from ..metrics import average_by_song
from ..models.plan import ModelPlan, model_plan
from ..cli import ensure_writable_dir
from .args import GanArguments
from .data import SpecLayout, keep_train_songs, real_features, train_images
from .guide import FilterReport, FrozenRegressor
from .models import GanConfig
from .render import label_distributions, spectrogram_grid, write_audio_samples
from .report import QualityTracker, check_regressor, quality_report, regressor_outputs, tstr
from .synthetic import filtered_blocks, generated_blocks, sample_labels, write_synthetic
from .train import BEST_CHECKPOINT, CHECKPOINT, GanTrainer, TrainConfig, load_generator

logger = logging.getLogger(__name__)


def read_song_list(path: str) -> list[str]:
    """Song ids of a text file, one a line (blank lines ignored)."""
    if not os.path.isfile(path):
        raise MissingFileError(f"--train_songs {path}: no such file; pass a text file of song ids, one a line")
    songs = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not songs:
        raise DataError(f"--train_songs {path} lists no song id")
    return songs


def spectrogram_plan(args: GanArguments, demo: bool) -> ModelPlan:
    """The model plan whose features the GAN imitates; a backbone without spectrograms is refused."""
    plan = model_plan(ModelArguments(model=args.model, checkpoint=args.checkpoint, max_length=args.max_length,
                                     window_seconds=args.window_seconds), demo)
    if not plan.backbone.is_spectrogram:
        from ..models.registry import BACKBONES

        usable = " or ".join(b.name for b in BACKBONES.values() if b.is_spectrogram)
        raise ArgumentError(f"--model {plan.backbone.name} reads {plan.backbone.feature_kind} features, not "
                            f"spectrograms: the GAN imitates spectrogram features (use --model {usable})")
    return plan


def _load_checked(path: str | None, flag: str, extractor: SentioFeatureExtractor) -> Run | None:
    if not path:
        return None
    run = load_run(path)
    check_regressor(extractor, run, f"{flag} {path}")
    return run


def train_gan(data_args: DataArguments, args: GanArguments) -> dict[str, Any]:
    """train_gan.py: the manifest and cached features of `data_args`, then `train_gan_on`."""
    torch.manual_seed(args.seed)
    with torch_threads(args.num_threads):  # --num_threads for this run only
        return _train_gan(data_args, args)


def _train_gan(data_args: DataArguments, args: GanArguments) -> dict[str, Any]:
    # The exact features the regressor of this backbone (compact with --demo) is trained on.
    plan = spectrogram_plan(args, data_args.demo)
    extractor = plan.feature_extractor(plan.architecture())  # no weights are read
    out = ensure_writable_dir(args.output_dir)
    train_songs = read_song_list(args.train_songs) if args.train_songs else None
    # Runs are checked before any data work, not after hours of training.
    for path, flag in ((args.regressor, "--regressor"), (args.guide_regressor, "--guide_regressor")):
        _load_checked(path, flag, extractor)
    manifest, _ = prepare_manifest(data_args, out, progress=args.progress)
    features, feature_report = build_feature_dataset(manifest, extractor, data_args.cache_dir,
                                                     num_proc=data_args.preprocessing_num_workers)
    return train_gan_on(features, plan, extractor, args, train_songs, feature_report.failed)


def train_gan_on(features: Dataset, plan: ModelPlan, extractor: SentioFeatureExtractor, args: GanArguments,
                 train_songs: list[str] | None = None, failed_clips: list | tuple = ()) -> dict[str, Any]:
    """Train (or resume) the GAN on the train windows of `features` (only `train_songs`' when given),
    write the synthetic split and the reports into args.output_dir; returns gan_report.json's dict."""
    layout = SpecLayout.for_extractor(extractor, args.gan_height, args.gan_width)
    out = ensure_writable_dir(args.output_dir)
    gan_config = GanConfig(height=args.gan_height, width=args.gan_width, z_dim=args.z_dim, channels=args.gan_channels,
                           aux_head=args.aux_weight > 0)
    regressor = _load_checked(args.regressor, "--regressor", extractor)
    guide = _load_checked(args.guide_regressor, "--guide_regressor", extractor)
    if train_songs is not None:  # e.g. one fraction of a learning curve: other train songs are never seen
        features = keep_train_songs(features, train_songs)
    images, labels, song_ids = train_images(features, layout)  # split == "train" only
    images = layout.fit(images)
    logger.info("GAN data: %d full train windows of %d songs, %s -> %dx%d", len(images), len(set(song_ids)),
                list(layout.feature_shape), layout.height, layout.width)
    limit = max(args.quality_samples, args.num_grid, args.num_audio)
    real = _RealWindows(*real_features(features, layout, "train", limit=limit, seed=args.seed))

    trainer = _fit(args, gan_config, layout, extractor, images, labels, guide,
                   QualityTracker.build(layout, real.values, real.labels, regressor, args.track_samples, args.seed)
                   if args.track_every > 0 else None, out)
    generator, sampled = _sampling_generator(trainer, args, out)
    song_labels, _ = average_by_song(labels, song_ids)
    synthetic, filter_report = _synthetic_split(generator, layout, extractor, song_labels, guide, args, out)
    syn, syn_lab = _listen_and_look(out, synthetic, real, song_labels, layout, extractor, args, limit)
    _write_quality(out, plan, features, synthetic, layout, extractor, real, syn, syn_lab, regressor, sampled,
                   filter_report, args)

    seconds = [h["seconds"] for h in trainer.history]
    report = {"backbone": plan.backbone.name, "features": extractor.to_dict(), "layout": layout.to_dict(),
              "gan": gan_config.to_dict(), "train": vars(args), "train_windows": len(images),
              "train_songs": len(set(song_ids)), "epochs_done": trainer.epoch, "steps": trainer.step,
              "seconds_per_epoch": float(np.mean(seconds)) if seconds else None, "history": trainer.history,
              "best": trainer.best, "sampled_from": sampled, "num_synthetic": len(synthetic),
              "filter_consistency": filter_report.to_dict() if filter_report is not None else None,
              "failed_clips": [f.to_dict() for f in failed_clips]}
    (out / "gan_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return report


@dataclass
class _RealWindows:
    """Real train windows to compare the synthetic ones with: features, labels, song ids."""

    values: np.ndarray
    labels: np.ndarray
    songs: list[str]


def _sampling_generator(trainer: GanTrainer, args: GanArguments, out: Path) -> tuple[Any, str]:
    """The generator that draws the synthetic split (the EMA one, or --sample_from best) and how to say which."""
    if args.sample_from == "best" and trainer.best is not None:
        generator = load_generator(str(out / BEST_CHECKPOINT), device=str(trainer.device))[0]
        return generator, f"best (epoch {trainer.best['epoch']}, FD {trainer.best['fd']:.4g})"
    return trainer.G_ema, "last"


def _synthetic_split(generator: Any, layout: SpecLayout, extractor: SentioFeatureExtractor, song_labels: np.ndarray,
                     guide: Run | None, args: GanArguments, out: Path) -> tuple[Dataset, FilterReport | None]:
    """The synthetic split, written into `out`: labels drawn from the train songs' label distribution,
    kept only where the guide agrees with --filter_consistency."""
    syn_labels = sample_labels(song_labels, args.num_synthetic, seed=args.seed, jitter=args.label_jitter)
    filter_report: FilterReport | None = None
    if args.filter_consistency is not None:
        blocks, filter_report = filtered_blocks(generator, layout, syn_labels, lambda x: regressor_outputs(guide, x)[1],
                                                args.filter_consistency, args.filter_tries, seed=args.seed)
    else:
        blocks = generated_blocks(generator, layout, syn_labels, seed=args.seed)
    synthetic = write_synthetic(out, blocks, layout, extractor)
    if filter_report is not None:
        logger.info("--filter_consistency %.3g: %d of %d windows passed (%d of %d labels dropped)",
                    filter_report.threshold, filter_report.windows_kept, filter_report.windows_generated,
                    filter_report.labels_dropped, filter_report.labels_requested)
    return synthetic, filter_report


def _listen_and_look(out: Path, synthetic: Dataset, real: _RealWindows, song_labels: np.ndarray, layout: SpecLayout,
                     extractor: SentioFeatureExtractor, args: GanArguments, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Audio samples, the spectrogram grid and the label distributions; returns the first `limit`
    synthetic windows and their labels."""
    syn_view = synthetic.select(range(min(limit, len(synthetic)))).with_format("numpy")
    syn, syn_lab = np.asarray(syn_view[layout.feature_name]), np.asarray(syn_view["labels"], np.float32)
    # Real windows for comparison: the ones whose labels are nearest the synthetic ones.
    nearest = [int(np.argmin(((real.labels - y) ** 2).sum(1))) for y in syn_lab[: args.num_audio]]
    write_audio_samples(out / "audio", syn[: args.num_audio], syn_lab[: args.num_audio], extractor, "synthetic")
    write_audio_samples(out / "audio", real.values[nearest], real.labels[nearest], extractor, "real")
    spectrogram_grid(out / "spectrogram_grid.png", real.values, real.labels, syn[: args.num_grid],
                     syn_lab[: args.num_grid], layout.freq_axis)
    label_distributions(out / "label_distributions.png", song_labels,
                        np.asarray(synthetic.with_format("numpy", columns=["labels"])["labels"]))
    return syn, syn_lab


def _write_quality(out: Path, plan: ModelPlan, features: Dataset, synthetic: Dataset, layout: SpecLayout,
                   extractor: SentioFeatureExtractor, real: _RealWindows, syn: np.ndarray, syn_lab: np.ndarray,
                   regressor: Run | None, sampled: str, filter_report: FilterReport | None, args: GanArguments) -> None:
    """gan_quality.json: the synthetic windows' quality, always beside real vs real, and TSTR."""
    test = real_features(features, layout, "test", limit=args.quality_samples, seed=args.seed)[:2]
    quality = quality_report(layout, real.values, real.labels, real.songs, syn, syn_lab, regressor, test,
                             seed=args.seed)
    quality["sampled_from"] = sampled
    if filter_report is not None:
        quality["filter_consistency"] = filter_report.to_dict()
    if args.tstr_epochs > 0:
        config = plan.architecture()
        quality["tstr"] = tstr(lambda: plan.backbone.model_class(config), synthetic, features, extractor,
                               args.tstr_epochs, seed=args.seed)
    else:
        quality["tstr"] = "skipped: --tstr_epochs 0"
    (out / "gan_quality.json").write_text(json.dumps(quality, indent=2) + "\n")


def _fit(args: GanArguments, gan_config: GanConfig, layout: SpecLayout, extractor: Any, images: torch.Tensor,
         labels: np.ndarray, guide: Run | None, tracker: QualityTracker | None, out: Path) -> GanTrainer:
    """A trainer resumed from `out` when allowed, trained to --epochs (or --max_steps)."""
    train_config = TrainConfig(batch_size=args.batch_size, lr_g=args.lr_g, lr_d=args.lr_d,
                               betas=(args.adam_beta1, args.adam_beta2), ema_decay=args.ema_decay,
                               diff_augment=args.diff_augment_policy(), seed=args.seed,
                               aux_weight=args.aux_weight, consistency_weight=args.consistency_weight)
    consistency = FrozenRegressor(guide.model, layout, extractor) if args.consistency_weight > 0 else None
    trainer = GanTrainer(gan_config, train_config, device="cuda" if torch.cuda.is_available() else "cpu",
                         consistency=consistency)
    trainer.extra = {"layout": layout.to_dict(), "feature_extractor": extractor.to_dict()}
    if args.resume and (out / CHECKPOINT).is_file():
        trainer.load(str(out / CHECKPOINT))
        logger.info("resumed from %s at epoch %d", out / CHECKPOINT, trainer.epoch)
    elif (out / BEST_CHECKPOINT).is_file():
        (out / BEST_CHECKPOINT).unlink()  # left by an earlier run that this one starts over from
    steps_per_epoch = len(images) // min(args.batch_size, len(images))
    epochs = -(-args.max_steps // steps_per_epoch) if args.max_steps else args.epochs
    trainer.fit(images, torch.from_numpy(labels), epochs, str(out), progress=args.progress, tracker=tracker,
                track_every=args.track_every)
    return trainer
