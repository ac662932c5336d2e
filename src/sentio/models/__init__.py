"""Sentio's regression models: AST, Wav2Vec2 and ViT encoders (and the small distillation students)
with a shared (valence, arousal) head.

Importing this package registers the Sentio configs and models with AutoConfig/AutoModel, so a
saved run loads with `AutoModel.from_pretrained(folder)` (no remote code involved).
"""

from .ast import ASTEmotionConfig, ASTForEmotionRegression
from .head import (
    POOLING_MODES,
    TARGETS,
    EmotionHead,
    EmotionHeadConfig,
    EmotionRegressionMixin,
    EmotionRegressionOutput,
    pool_tokens,
)
from .hub import CheckpointError, build_model, download_checkpoint, register_auto_classes, resolve_checkpoint
from .loss import LOSSES, ccc_loss, emotion_loss, torch_concordance_cc
from .registry import BACKBONES, BackboneSpec, backbone_for_model_type, get_backbone
from .student import StudentEmotionConfig, StudentForEmotionRegression
from .vit import ViTEmotionConfig, ViTForEmotionRegression
from .wav2vec2 import Wav2Vec2EmotionConfig, Wav2Vec2ForEmotionRegression

register_auto_classes()

__all__ = [
    "ASTEmotionConfig",
    "ASTForEmotionRegression",
    "BACKBONES",
    "BackboneSpec",
    "CheckpointError",
    "EmotionHead",
    "EmotionHeadConfig",
    "EmotionRegressionMixin",
    "EmotionRegressionOutput",
    "LOSSES",
    "POOLING_MODES",
    "StudentEmotionConfig",
    "StudentForEmotionRegression",
    "TARGETS",
    "ViTEmotionConfig",
    "ViTForEmotionRegression",
    "Wav2Vec2EmotionConfig",
    "Wav2Vec2ForEmotionRegression",
    "backbone_for_model_type",
    "build_model",
    "ccc_loss",
    "torch_concordance_cc",
    "download_checkpoint",
    "emotion_loss",
    "get_backbone",
    "pool_tokens",
    "register_auto_classes",
    "resolve_checkpoint",
]
