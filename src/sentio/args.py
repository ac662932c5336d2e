"""Argument dataclasses shared by the command-line scripts (parsed with HfArgumentParser)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainingArguments

from .data.sources import DataSourceSpec
from .errors import ArgumentError
from .choices import LAYER_LAST, LAYER_WEIGHTED, LOSSES, POOLING_MODES, TARGET_STATIC, TRAIN_WINDOWS, TRAINING_TARGETS

logger = logging.getLogger(__name__)


@dataclass
class DataArguments(DataSourceSpec):
    """Where the clips and labels come from, how they are split, and where features are cached."""

    cache_dir: str = field(
        default="data/cache", metadata={"help": "Where computed features are cached (relative to the working directory; "
                                         "evaluate.py defaults to the cache its run recorded)."})
    preprocessing_num_workers: int = field(default=1, metadata={"help": "Processes for the one-time feature pass."})

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fractions()  # a malformed --split_fractions fails at parse time, before any data work
        if self.preprocessing_num_workers < 1:
            raise ArgumentError(f"--preprocessing_num_workers must be >= 1, got {self.preprocessing_num_workers}")


@dataclass
class SyntheticArguments:
    """GAN-made training windows (train.py only)."""

    synthetic: str | None = field(
        default=None, metadata={"help": "Output folder of train_gan.py: its synthetic windows join the TRAIN split only."}
    )
    synthetic_ratio: float | None = field(
        default=None, metadata={"help": "Synthetic windows per real train song (default: all of them)."}
    )

    def __post_init__(self) -> None:
        if self.synthetic_ratio is not None and not self.synthetic_ratio >= 0:
            raise ArgumentError(f"--synthetic_ratio must be >= 0, got {self.synthetic_ratio}")


@dataclass
class SearchArguments:
    """Hyperparameter search (train.py only; see sentio.training.search)."""

    hp_search: int | None = field(
        default=None, metadata={"help": "Search N trials with Optuna (objective: validation --metric_for_best_model, "
                                "maximised); the best trial becomes the run. Trials live in OUTPUT_DIR/trials/NNN, the "
                                "study in OUTPUT_DIR/hp_search.db: rerunning the command resumes a stopped search."})
    hp_space: str | None = field(
        default=None, metadata={"help": "JSON file replacing the default search space: {setting: {\"type\": \"float\"|"
                                "\"int\", \"low\", \"high\", \"log\", \"step\"} or {\"type\": \"categorical\", "
                                "\"choices\": [...]}} (see the README)."})

    def __post_init__(self) -> None:
        if self.hp_search is not None and self.hp_search < 1:
            raise ArgumentError(f"--hp_search must be a positive number of trials, got {self.hp_search}")
        if self.hp_space is not None and self.hp_search is None:
            raise ArgumentError("--hp_space needs --hp_search N (the number of trials)")


@dataclass
class FeatureArguments:
    """The model flags that decide which features (and cached embeddings) a run computes: train.py
    and prepare.py share them, so prepare.py caches exactly what a later train.py reuses."""

    checkpoint: str | None = field(
        default=None,
        metadata={"help": "Hub id or local folder of pretrained weights (default: the backbone's standard checkpoint; "
                  "with --demo: the backbone's compact config from scratch)."},
    )
    from_scratch: bool = field(default=False, metadata={"help": "Random weights with the checkpoint's architecture."})
    max_length: int | None = field(
        default=None, metadata={"help": "Frames per window for frame-windowed backbones (AST: 1024 = 10.24 s; "
                                "default: the checkpoint's)."})
    window_seconds: float | None = field(
        default=None, metadata={"help": "Seconds per window for the other backbones (default: the backbone's)."})
    dataset_stats: bool = field(
        default=False, metadata={"help": "Normalise fbank features (AST) with the train split's mean/std, not AudioSet's."})
    target: str = field(
        default="static", metadata={"help": "What the model learns: static (a value per song, as the static labels), "
                                    "dynamic (a value per half-second, from 2 Hz annotations) or both.",
                                    "choices": list(TRAINING_TARGETS)})
    probe: bool = field(
        default=False,
        metadata={"help": "Frozen encoder: its pooled layers are computed once per window and cached, and only the "
                  "head trains (MARBLE's recipe: defaults mean pooling, a 512-unit hidden layer, dropout 0.2, "
                  "learning rate 1e-3, batch 64, every window)."})


@dataclass
class ModelArguments(FeatureArguments):
    """Which backbone, where its weights come from, and the regression head."""

    model: str = field(default="ast", metadata={"help": "Backbone: {backbones} (one file each in "
                                                "src/sentio/models/, listed in its registry)."})
    pooling: str | None = field(
        default=None, metadata={"help": "How the head pools the encoder's tokens (default: per backbone).",
                                "choices": list(POOLING_MODES)})
    layer: str | None = field(
        default=None, metadata={"help": "Encoder layer the head reads: last, weighted (a learned softmax-weighted sum of "
                                "all hidden states) or an index into the hidden states (0 = embeddings; default: "
                                "weighted for MERT, last for the others)."})
    loss: str | None = field(default=None, metadata={"help": "Training loss (default: mse+ccc).", "choices": list(LOSSES)})
    uncertainty: bool = field(
        default=False, metadata={"help": "The head also predicts a spread per dimension, trained by the Gaussian "
                                 "negative log-likelihood (with --loss mse+ccc: likelihood + CCC)."})
    disagreement_weight: float = field(
        default=0.0, metadata={"help": "With --uncertainty: weight of a term pulling the predicted spread's song-to-song "
                               "pattern toward the raters' spread where the data has it (DEAM, EmoMusic, the demo; "
                               "its level stays the likelihood's; 0 = off)."})
    final_dropout: float | None = field(default=None, metadata={"help": "Dropout before the regression head (default: 0.1)."})
    head_hidden_size: int | None = field(default=None, metadata={"help": "Hidden units of the regression head (default: 256)."})
    train_windows: str = field(
        default="random", metadata={"help": "random: one random window per song per epoch; all: every window "
                                    "(the default with --probe).", "choices": list(TRAIN_WINDOWS)})
    spec_augment: bool = field(default=True, metadata={"help": "SpecAugment-style masks on spectrogram training inputs (AST, ViT)."})
    mixup_alpha: float = field(default=0.0, metadata={"help": "mixup of training windows and labels, lam ~ Beta(a, a) (0 = off; 0.2 is usual)."})
    early_stopping_patience: int | None = field(default=None, metadata={"help": "Stop after N evaluations without improvement (default: never)."})
    # Which part trains (besides --probe): LoRA adapters or the top encoder layers, each with the head.
    lora: bool = field(
        default=False, metadata={"help": "LoRA adapters (through peft) on the encoder's attention projections; the head "
                                 "trains in full. The saved run has them merged: it loads without peft."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling alpha (the update is scaled by alpha / r)."})
    lora_dropout: float = field(default=0.1, metadata={"help": "Dropout on the LoRA adapters' input."})
    lora_target_modules: str | None = field(
        default=None, metadata={"help": "Comma-separated encoder linear layers that get adapters (default: the "
                                "backbone's attention projections, e.g. q_proj,k_proj,v_proj,out_proj)."})
    save_adapter: bool = field(
        default=False, metadata={"help": "With --lora: also write the PEFT adapter (adapter_config.json, "
                                 "adapter_model.safetensors, the head included) into the run."})
    unfreeze_top_layers: int | None = field(
        default=None, metadata={"help": "Train only the top N encoder layers and the head (the rest stays frozen)."})

    def __post_init__(self) -> None:
        if self.layer is not None:
            if self.layer.isdigit():
                self.layer = int(self.layer)
            elif self.layer not in (LAYER_LAST, LAYER_WEIGHTED):
                raise ArgumentError(f"--layer must be {LAYER_LAST}, {LAYER_WEIGHTED} or a hidden-state index, "
                                    f"got {self.layer!r}")
        if self.final_dropout is not None and not 0 <= self.final_dropout < 1:
            raise ArgumentError(f"--final_dropout must be in [0, 1), got {self.final_dropout}")
        if self.head_hidden_size is not None and self.head_hidden_size < 0:
            raise ArgumentError(f"--head_hidden_size must be >= 0, got {self.head_hidden_size}")
        if not self.disagreement_weight >= 0:
            raise ArgumentError(f"--disagreement_weight must be >= 0, got {self.disagreement_weight}")
        if self.disagreement_weight > 0 and not self.uncertainty:
            raise ArgumentError("--disagreement_weight needs --uncertainty (it supervises the predicted spread)")
        if not self.mixup_alpha >= 0:  # also refuses NaN
            raise ArgumentError(f"--mixup_alpha must be >= 0, got {self.mixup_alpha}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ArgumentError(f"--early_stopping_patience must be >= 1, got {self.early_stopping_patience}")
        self._check_trained_part()

    @property
    def lora_target_list(self) -> tuple[str, ...] | None:
        """--lora_target_modules as names, or None for the backbone's own."""
        if self.lora_target_modules is None:
            return None
        return tuple(name.strip() for name in self.lora_target_modules.split(",") if name.strip())

    def _check_trained_part(self) -> None:
        modes = [flag for flag, on in (("--probe", self.probe), ("--lora", self.lora),
                                       ("--unfreeze_top_layers", self.unfreeze_top_layers is not None)) if on]
        if len(modes) > 1:
            raise ArgumentError(f"{' and '.join(modes)} cannot be combined: each says which part of the model trains")
        if self.unfreeze_top_layers is not None and self.unfreeze_top_layers < 1:
            raise ArgumentError(f"--unfreeze_top_layers must be >= 1, got {self.unfreeze_top_layers}")
        if not self.lora:
            if self.save_adapter or self.lora_target_modules is not None:
                raise ArgumentError("--save_adapter and --lora_target_modules need --lora")
            return
        if self.lora_r < 1:
            raise ArgumentError(f"--lora_r must be >= 1, got {self.lora_r}")
        if not self.lora_alpha > 0:
            raise ArgumentError(f"--lora_alpha must be positive, got {self.lora_alpha}")
        if not 0 <= self.lora_dropout < 1:
            raise ArgumentError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.lora_target_modules is not None and not self.lora_target_list:
            raise ArgumentError("--lora_target_modules names no module; give comma-separated names such as q_proj,v_proj")
        from .training.lora import import_peft

        import_peft()  # one line now, before any data work, if peft is missing


@dataclass
class EmotionTrainingArguments(TrainingArguments):
    """TrainingArguments with Sentio's defaults: evaluate and save every epoch, keep the best
    checkpoint by validation CCC, log to TensorBoard. Every TrainingArguments flag still works."""

    output_dir: str | None = field(
        default=None, metadata={"help": "Where the run is written (default: runs/<model>, or runs/<model>-demo with --demo)."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train into an --output_dir that already holds a run (refused otherwise; its "
                                 "old files stay beside the new run's)."})
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

        # The scripts fill in their own default after parsing, when the model is known.
        self.output_dir_given = self.output_dir is not None
        if not (self.max_steps > 0 or self.num_train_epochs > 0):  # "not >" also refuses NaN
            raise ArgumentError(f"--epochs must be positive (or --max_steps set), got {self.num_train_epochs:g}")
        if not self.learning_rate > 0:
            raise ArgumentError(f"--learning_rate must be positive, got {self.learning_rate}")
        if not torch.accelerator.is_available():
            # Without use_cpu, `torchrun --nproc_per_node N` on a CPU-only machine silently runs N
            # independent single-process trainings (accelerate only picks MULTI_CPU when told).
            self.use_cpu = True
            # Pinned memory only helps a GPU; on a CPU torch warns on every dataloader.
            self.dataloader_pin_memory = False
            if self.fp16:  # accelerate has no fp16 autocast on a CPU: it would train in float32 anyway
                logger.warning("--fp16 needs a GPU; on this CPU training runs in float32 (--fp16 is ignored)")
                self.fp16 = False
            if self.bf16:
                logger.warning("--bf16 on a CPU runs through autocast and is much slower than float32 on most "
                               "CPUs (18x measured on a 2-core x86 machine); drop it unless this CPU has fast bf16")
        super().__post_init__()


# train.py's rules across its argument groups. Each group checks its own flags in __post_init__;
# the rules that join two groups live here, and those that ask the chosen backbone right after them.


def check_train_flags(model_args: ModelArguments, synthetic_args: SyntheticArguments,
                      training_args: EmotionTrainingArguments, search_args: SearchArguments) -> None:
    """The flags of train.py's groups that cannot go together: refused at parse time."""
    if synthetic_args.synthetic and model_args.target != TARGET_STATIC:
        raise ArgumentError("--synthetic cannot be combined with --target dynamic/both: GAN windows have no 2 Hz labels")
    if synthetic_args.synthetic and model_args.probe:
        raise ArgumentError("--synthetic cannot be combined with --probe: GAN windows are features, and a probe "
                            "trains on cached encoder embeddings")
    if search_args.hp_search and (model_args.lora or model_args.unfreeze_top_layers):
        raise ArgumentError("--hp_search searches head and training settings of a fine-tune or a probe: drop --lora / "
                            "--unfreeze_top_layers, or search without them")
    if search_args.hp_search:
        if training_args.resume_from_checkpoint:
            raise ArgumentError("--hp_search resumes on its own (rerun the same command); drop --resume_from_checkpoint")
        if training_args.world_size > 1:
            raise ArgumentError("--hp_search runs in one process: start train.py without torchrun/accelerate launch")
        if training_args.eval_strategy == "no" or not training_args.metric_for_best_model:
            raise ArgumentError("--hp_search scores each trial on the validation split: keep --eval_strategy and "
                                "--metric_for_best_model")


def check_train_backbone(plan: Any, model_args: ModelArguments, synthetic_args: SyntheticArguments,
                         training_args: EmotionTrainingArguments) -> None:
    """train.py's flags against the backbone they chose (`plan`, a models.plan.ModelPlan), before
    any data work. Reads the architecture's config, no weights."""
    backbone = plan.backbone
    if synthetic_args.synthetic and not backbone.is_spectrogram:
        raise ArgumentError(f"--synthetic: --model {backbone.name} reads {backbone.feature_kind} features, "
                            "and GAN windows exist only for spectrogram backbones; drop --synthetic")
    if (training_args.activation_checkpointing or training_args.gradient_checkpointing) and \
            not backbone.model_class.supports_gradient_checkpointing:
        raise ArgumentError(f"--activation_checkpointing: the {backbone.name} encoder does not support it; "
                            "drop the flag (or lower the batch size / use --gradient_accumulation_steps)")
    if model_args.lora or model_args.unfreeze_top_layers:  # their flags against the architecture
        from .training.freeze import check_trained_part

        check_trained_part(model_args, backbone, plan.architecture())
