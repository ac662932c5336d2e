"""The one place that names each backbone. Adding one = a model file + one entry in BACKBONES."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformers import PretrainedConfig, PreTrainedModel

from .ast import ASTEmotionConfig, ASTForEmotionRegression
from .student import StudentEmotionConfig, StudentForEmotionRegression
from .vit import ViTEmotionConfig, ViTForEmotionRegression
from .wav2vec2 import Wav2Vec2EmotionConfig, Wav2Vec2ForEmotionRegression


@dataclass(frozen=True)
class BackboneSpec:
    """Everything the CLIs, data layer and loader need to know about one backbone.

    full_config: the default checkpoint's architecture, used by --from_scratch without a download.
    demo_config: overrides of full_config for a compact model that trains in minutes on a CPU.
    demo_feature_overrides: feature settings that must change with demo_config.
    """

    name: str
    config_class: type[PretrainedConfig]
    model_class: type[PreTrainedModel]
    feature_kind: str  # "ast" | "wav2vec2" | "vit": which feature function the data layer runs
    input_name: str  # the model's forward argument the collator fills
    sample_rate: int
    default_checkpoint: str
    default_head: dict[str, Any]
    full_config: dict[str, Any]
    demo_config: dict[str, Any] = field(default_factory=dict)
    demo_feature_overrides: dict[str, Any] = field(default_factory=dict)


_AST_BASE = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    patch_size=16, frequency_stride=10, time_stride=10, max_length=1024, num_mel_bins=128,
)  # fmt: skip
_VIT_BASE = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    image_size=224, patch_size=16, num_channels=3,
)  # fmt: skip
# transformers' Wav2Vec2Config defaults are wav2vec2-base: 7 conv layers (stride 320), 12 x 768.
_W2V2_BASE = dict(
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    feat_extract_norm="group", do_stable_layer_norm=False,
)  # fmt: skip

BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec(
            name="ast",
            config_class=ASTEmotionConfig,
            model_class=ASTForEmotionRegression,
            feature_kind="ast",
            input_name="input_values",
            sample_rate=16000,
            default_checkpoint="MIT/ast-finetuned-audioset-10-10-0.4593",
            default_head={"pooling": "cls_dist"},
            full_config=_AST_BASE,
            # 2.56 s windows; non-overlapping 16x16 patches give 8 x 16 = 128 tokens instead of 12 x 25.
            demo_config=dict(
                hidden_size=192, num_hidden_layers=4, num_attention_heads=4, intermediate_size=768,
                max_length=256, frequency_stride=16, time_stride=16, head_hidden_size=128,
            ),  # fmt: skip
            demo_feature_overrides={"max_length": 256},
        ),
        BackboneSpec(
            name="wav2vec2",
            config_class=Wav2Vec2EmotionConfig,
            model_class=Wav2Vec2ForEmotionRegression,
            feature_kind="wav2vec2",
            input_name="input_values",
            sample_rate=16000,
            default_checkpoint="facebook/wav2vec2-base",
            default_head={"pooling": "mean"},
            full_config=_W2V2_BASE,
            # 5 narrow conv layers keep the 320-sample hop (50 frames/s); the convolutions cost more than
            # the transformer here. Layer norm lets the encoder see the padding mask.
            demo_config=dict(
                conv_dim=(32, 64, 128, 128, 192), conv_stride=(5, 4, 4, 2, 2), conv_kernel=(10, 8, 4, 4, 4),
                feat_extract_norm="layer", do_stable_layer_norm=True,
                hidden_size=192, num_hidden_layers=3, num_attention_heads=4, intermediate_size=768,
                num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=8, layerdrop=0.0,
                head_hidden_size=128,
            ),  # fmt: skip
            demo_feature_overrides={"window_seconds": 4.0},
        ),
        BackboneSpec(
            name="vit",
            config_class=ViTEmotionConfig,
            model_class=ViTForEmotionRegression,
            feature_kind="vit",
            input_name="pixel_values",
            sample_rate=22050,
            default_checkpoint="google/vit-base-patch16-224-in21k",
            default_head={"pooling": "cls"},
            full_config=_VIT_BASE,
            demo_config=dict(
                hidden_size=192, num_hidden_layers=4, num_attention_heads=4, intermediate_size=768,
                head_hidden_size=128,
            ),  # fmt: skip
        ),
    )
}


# Models that load with AutoModel.from_pretrained but are not train.py backbones (no pretrained
# checkpoint, trained by distill.py): (config class, model class).
AUTO_ONLY_MODELS: tuple[tuple[type[PretrainedConfig], type[PreTrainedModel]], ...] = (
    (StudentEmotionConfig, StudentForEmotionRegression),
)


def get_backbone(name: str) -> BackboneSpec:
    """The spec for `name`; a one-line error lists the valid names otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(BACKBONES)}") from None


def backbone_for_model_type(model_type: str) -> BackboneSpec | None:
    """The spec whose Sentio config has this model_type (e.g. 'sentio-ast'), else None."""
    return next((s for s in BACKBONES.values() if s.config_class.model_type == model_type), None)
