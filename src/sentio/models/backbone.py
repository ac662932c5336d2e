"""What a backbone is, for the rest of Sentio: one object per backbone module answers every
question that used to be settled by comparing backbone names.

Each `models/<name>.py` defines its config, its model and `BACKBONE = Backbone(...)` (or a
subclass where the backbone needs its own behaviour, e.g. reading a foreign checkpoint config);
`registry.py` lists the modules. Data, training, evaluation, GAN, distillation and inference ask
this object (or the feature params it builds) and never test a backbone's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers import AutoConfig, PretrainedConfig, PreTrainedModel

from ..features.extractor import SentioFeatureExtractor
from ..features.params import LEGACY_KINDS, PARAM_CLASSES, FeatureParams
from ..errors import ArgumentError


@dataclass(frozen=True)
class Backbone:
    """One backbone: its classes, its input, its checkpoints and its compact demo variant.

    feature_kind: the data layer's feature kind it reads (fbank | waveform | mel_image).
    feature_defaults: overrides of that kind's default params (e.g. a 24 kHz waveform).
    window_unit: how the user sets the window: "frames" (--max_length, fixed by the model's
      position embeddings) or "seconds" (--window_seconds).
    full_config: the default checkpoint's architecture, used by --from_scratch without a download.
    default_head: head fields a fresh model of this backbone gets (e.g. its pooling).
    demo_config / demo_features: overrides for the compact model `--demo` trains from scratch.
    legacy_feature_kind: the kind name older Sentio versions saved for this backbone's features.
    lora_targets: the encoder's attention projections that get LoRA adapters (names of its
      nn.Linear modules as the INSTALLED transformers spells them; older releases differ).
    encoder_layers: dotted path from the model to the encoder's stack of transformer layers
      (an nn.ModuleList), for --unfreeze_top_layers.
    """

    name: str
    config_class: type[PretrainedConfig]
    model_class: type[PreTrainedModel]
    feature_kind: str
    default_checkpoint: str
    full_config: dict[str, Any]
    default_head: dict[str, Any]
    window_unit: str = "seconds"
    feature_defaults: dict[str, Any] = field(default_factory=dict)
    demo_config: dict[str, Any] = field(default_factory=dict)
    demo_features: dict[str, Any] = field(default_factory=dict)
    legacy_feature_kind: str | None = None
    lora_targets: tuple[str, ...] = ()
    encoder_layers: str = ""

    def __post_init__(self) -> None:
        if self.feature_kind not in PARAM_CLASSES:
            raise ValueError(f"{self.name}: unknown feature kind {self.feature_kind!r}")
        if self.window_unit not in ("frames", "seconds"):
            raise ValueError(f"{self.name}: window_unit must be frames or seconds")
        if self.legacy_feature_kind and LEGACY_KINDS.get(self.legacy_feature_kind) != self.feature_kind:
            raise ValueError(f"{self.name}: legacy feature kind {self.legacy_feature_kind!r} must be listed in "
                             f"features.params.LEGACY_KINDS as {self.feature_kind!r}")

    # ---- the input ----------------------------------------------------------------------------
    @property
    def default_params(self) -> FeatureParams:
        """The feature params of the full-size model."""
        return PARAM_CLASSES[self.feature_kind](**self.feature_defaults)

    @property
    def sampling_rate(self) -> int:
        return self.default_params.sampling_rate

    @property
    def input_name(self) -> str:
        """The model's forward argument the collator fills (input_values or pixel_values)."""
        return PARAM_CLASSES[self.feature_kind].feature_name

    @property
    def is_spectrogram(self) -> bool:
        """Spectrogram-like input: SpecAugment applies and the GAN can imitate it."""
        return PARAM_CLASSES[self.feature_kind].freq_axis is not None

    def features_from_config(self, config: PretrainedConfig) -> dict[str, Any]:
        """Feature params fixed by the model's architecture (none by default)."""
        return {}

    def feature_extractor(self, config: PretrainedConfig, compact: bool = False,
                          window_seconds: float | None = None,
                          start_grid_seconds: float | None = None) -> SentioFeatureExtractor:
        """The features that fit `config`: defaults, the compact demo's settings, what the
        architecture fixes, the user's window, and a start grid for time-resolved labels."""
        params = {**self.feature_defaults, **(self.demo_features if compact else {}),
                  **self.features_from_config(config), "start_grid_seconds": start_grid_seconds}
        if window_seconds is not None:
            self.check_window_flags(None, window_seconds)
            params["window_seconds"] = window_seconds
        return SentioFeatureExtractor(feature_kind=self.feature_kind, **params)

    # ---- configs ------------------------------------------------------------------------------
    @property
    def family_config_class(self) -> type[PretrainedConfig]:
        """The transformers config ours extends (ASTConfig, ...): what a plain checkpoint must have."""
        return next(c for c in self.config_class.__mro__[1:] if issubclass(c, PretrainedConfig))

    def fresh_config(self, overrides: dict[str, Any] | None = None) -> PretrainedConfig:
        """The full-size architecture with this backbone's default head, plus `overrides`."""
        return self.config_class(**{**self.full_config, **self.default_head, **(overrides or {})})

    def read_checkpoint_config(self, source: str, local_only: bool) -> PretrainedConfig:
        """The config of a checkpoint (a Sentio run of this backbone or a plain one); a backbone
        whose checkpoints ship a foreign config format overrides this. Never runs Hub code."""
        return AutoConfig.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)

    def check_window_flags(self, max_length: int | None, window_seconds: float | None) -> None:
        """--max_length belongs to frame-windowed backbones, --window_seconds to the others."""
        if max_length is not None and self.window_unit != "frames":
            raise ArgumentError(f"--max_length: {self.name} windows are set in seconds (use --window_seconds)")
        if max_length is not None and max_length < 1:
            raise ArgumentError(f"--max_length must be positive, got {max_length}")
        if window_seconds is not None and self.window_unit != "seconds":
            raise ArgumentError(f"--window_seconds: {self.name} windows are set in frames by the model (use --max_length)")
        if window_seconds is not None and not window_seconds > 0:
            raise ArgumentError(f"--window_seconds must be positive, got {window_seconds}")
