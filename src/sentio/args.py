"""Argument dataclasses shared by the command-line scripts (parsed with HfArgumentParser)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .data.sources import DataSourceSpec


@dataclass
class DataArguments(DataSourceSpec):
    """Where the clips and labels come from, how they are split, and where features are cached."""

    cache_dir: str = field(default="data/cache", metadata={"help": "Where computed features are cached."})
    preprocessing_num_workers: int = field(default=1, metadata={"help": "Processes for the one-time feature pass."})
    synthetic: str | None = field(
        default=None, metadata={"help": "Output folder of train_gan.py: its synthetic windows join the TRAIN split only."}
    )
    synthetic_ratio: float | None = field(
        default=None, metadata={"help": "Synthetic windows per real train song (default: all of them)."}
    )


@dataclass
class ModelArguments:
    """Which backbone, where its weights come from, and the regression head."""

    model: str = field(default="ast", metadata={"help": "Backbone: ast, wav2vec2 or vit."})
    checkpoint: str | None = field(
        default=None,
        metadata={"help": "Hub id or local folder of pretrained weights (default: the backbone's standard checkpoint)."},
    )
    from_scratch: bool = field(default=False, metadata={"help": "Random weights with the checkpoint's architecture."})
    pooling: str | None = field(default=None, metadata={"help": "mean, sum, max, cls or cls_dist (default per backbone)."})
    loss: str | None = field(default=None, metadata={"help": "Training loss: mse, ccc or mse+ccc (default mse+ccc)."})
    final_dropout: float | None = field(default=None, metadata={"help": "Dropout before the regression head (default 0.1)."})
    head_hidden_size: int | None = field(default=None, metadata={"help": "Hidden units of the regression head (default 256)."})
    max_length: int | None = field(default=None, metadata={"help": "AST: frames per window (1024 = 10.24 s)."})
    window_seconds: float | None = field(default=None, metadata={"help": "Wav2Vec2/ViT: seconds per window."})
    dataset_stats: bool = field(default=False, metadata={"help": "AST: normalise with the train split's mean/std, not AudioSet's."})
    train_windows: str = field(default="random", metadata={"help": "random: one random window per song per epoch; all: every window."})
    spec_augment: bool = field(default=True, metadata={"help": "SpecAugment-style masks on AST/ViT training inputs."})
    mixup_alpha: float = field(default=0.0, metadata={"help": "mixup of training windows and labels, lam ~ Beta(a, a) (0 = off; 0.2 is usual)."})
    early_stopping_patience: int | None = field(default=None, metadata={"help": "Stop after N evaluations without improvement."})


@dataclass
class EmotionTrainingArguments(TrainingArguments):
    """TrainingArguments with Sentio's defaults: evaluate and save every epoch, keep the best
    checkpoint by validation CCC, log to TensorBoard. Every TrainingArguments flag still works."""

    num_train_epochs: float = field(default=30.0, metadata={"help": "Training epochs (short form: --epochs)."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Batch size per device for training."})
    per_device_eval_batch_size: int = field(default=32, metadata={"help": "Batch size per device for evaluation."})
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_steps: float = field(default=0.1, metadata={"help": "Warm-up: steps, or a fraction of training if < 1."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save a checkpoint: no, steps, epoch or best."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best is always kept)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint after training."})
    metric_for_best_model: str | None = field(default="ccc_mean", metadata={"help": "Validation metric that picks the best model."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Whether a higher metric is better."})
    report_to: None | str | list[str] = field(default="tensorboard", metadata={"help": "Loggers: tensorboard, wandb, none, ..."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep False: the collator needs `length`."})

    def __post_init__(self) -> None:
        import torch

        if not torch.accelerator.is_available():
            # Without use_cpu, `torchrun --nproc_per_node N` on a CPU-only machine silently runs N
            # independent single-process trainings (accelerate only picks MULTI_CPU when told).
            self.use_cpu = True
            # Pinned memory only helps a GPU; on a CPU torch warns on every dataloader.
            self.dataloader_pin_memory = False
        super().__post_init__()


def expand_short_flags(argv: list[str] | None = None) -> list[str]:
    """`--epochs N` is the short name of `--num_train_epochs N`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return ["--num_train_epochs" if a == "--epochs" else a.replace("--epochs=", "--num_train_epochs=", 1) for a in argv]
