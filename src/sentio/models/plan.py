"""Which model a script means: the backbone, the weights (a checkpoint, a previous run, or none) and
the config and head overrides its flags ask for. train.py, prepare.py and train_gan.py all start here,
so they build (or cache features for) the same model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel

from ..choices import TARGET_STATIC
from ..data.dynamic import FRAME_SECONDS
from ..errors import ArgumentError
from ..features.extractor import SentioFeatureExtractor
from ..features.params import FbankParams
from .backbone import Backbone
from .hub import ModelSource, build_model, resolve_model
from .registry import get_backbone

if TYPE_CHECKING:
    from ..args import ModelArguments

# Head fields a user may set from the command line; the rest come from the run or the backbone.
_HEAD_FLAGS = ("loss", "final_dropout", "head_hidden_size", "pooling", "layer")
# MARBLE's probe: the pooled layers feed one hidden layer of 512 with dropout 0.2 (trained with
# Adam at 1e-3 on batches of 64 windows: training.setup.PROBE_TRAINING). Each applies unless the user set it.
PROBE_HEAD = {"pooling": "mean", "head_hidden_size": 512, "final_dropout": 0.2}
@dataclass
class ModelPlan:
    """Which model train.py (and prepare.py, train_gan.py) means: weights and config overrides.

    `--demo` without `--checkpoint` means the backbone's compact config from scratch: it trains in
    minutes on a CPU and needs no download. Anything else uses the pretrained checkpoint unless
    --from_scratch.
    """

    backbone: Backbone
    checkpoint: str | None
    from_scratch: bool
    compact: bool
    window_seconds: float | None = None
    config_overrides: dict[str, Any] = field(default_factory=dict)
    head_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def probe(self) -> bool:
        return bool(self.head_kwargs.get("probe"))

    @property
    def time_resolved(self) -> bool:
        """A dynamic (or both) target: windows start on the 2 Hz label grid."""
        return self.head_kwargs.get("target", TARGET_STATIC) != TARGET_STATIC

    def source(self) -> ModelSource:
        """The model's config and weight location, reading no weights."""
        return resolve_model(self.backbone.name, self.checkpoint, self.from_scratch, self.config_overrides,
                             self.head_kwargs)

    def architecture(self) -> Any:
        """The model's config without any download: the backbone's own (full or compact) architecture
        when no checkpoint is named (it mirrors the default checkpoint), else the checkpoint's config."""
        if self.checkpoint is None:
            return self.backbone.fresh_config({**self.config_overrides, **self.head_kwargs})
        return self.source().config

    def build(self) -> PreTrainedModel:
        return build_model(self.backbone.name, self.checkpoint, self.from_scratch, self.config_overrides,
                           self.head_kwargs)

    def feature_extractor(self, config: Any) -> SentioFeatureExtractor:
        """The features that fit the model's config (AST frames, ViT image size, ...)."""
        grid = FRAME_SECONDS if self.time_resolved else None
        return self.backbone.feature_extractor(config, self.compact, self.window_seconds, grid)


def model_plan(model_args: ModelArguments, demo: bool) -> ModelPlan:
    """The plan for the parsed model flags; flag values that cannot work fail here, before any data work."""
    backbone = get_backbone(model_args.model)
    backbone.check_window_flags(model_args.max_length, model_args.window_seconds)
    if model_args.dataset_stats and not isinstance(backbone.default_params, FbankParams):
        raise ArgumentError(f"--dataset_stats: {backbone.name} reads {backbone.feature_kind} features; train-split "
                            "statistics apply to fbank features only")
    compact = demo and model_args.checkpoint is None
    overrides = dict(backbone.demo_config) if compact else {}
    if model_args.max_length is not None:
        overrides["max_length"] = model_args.max_length
    head = {k: getattr(model_args, k) for k in _HEAD_FLAGS if getattr(model_args, k, None) is not None}
    # Set only when asked for: a previous run given as --checkpoint keeps its own otherwise.
    if model_args.target != TARGET_STATIC:
        head["target"] = model_args.target
    if model_args.uncertainty:
        head.update(uncertainty=True, disagreement_weight=model_args.disagreement_weight)
    if model_args.probe:
        head = {**PROBE_HEAD, **head, "probe": True}
    return ModelPlan(backbone, model_args.checkpoint, model_args.from_scratch or compact, compact,
                     model_args.window_seconds, overrides, head)
