"""Sentio's regression models: one self-describing module per backbone (see backbone.py and
registry.py), the small distillation students, and the shared (valence, arousal) head.

Importing this package registers nothing: `register_models` (auto.py) puts the Sentio configs and
models in AutoConfig/AutoModel, so a saved run loads with `AutoModel.from_pretrained(folder)` (no
remote code involved); `import sentio` or any loader of a run does it.
"""

from ..choices import LOSSES, POOLING_MODES
from .ast import ASTEmotionConfig, ASTForEmotionRegression
from .auto import register_models
from .backbone import Backbone
from .head import (
    TARGETS,
    EmotionHead,
    EmotionHeadConfig,
    EmotionRegressionMixin,
    EmotionRegressionOutput,
    pool_tokens,
)
from .hub import (
    CheckpointError,
    ModelSource,
    build_model,
    download_checkpoint,
    resolve_checkpoint,
    resolve_model,
)
from .loss import ccc_loss, emotion_loss, torch_concordance_cc
from .registry import BACKBONES, backbone_for_model_type, get_backbone
from .student import StudentEmotionConfig, StudentForEmotionRegression
from .vit import ViTEmotionConfig, ViTForEmotionRegression
from .wav2vec2 import Wav2Vec2EmotionConfig, Wav2Vec2ForEmotionRegression


__all__ = [
    "ASTEmotionConfig",
    "ASTForEmotionRegression",
    "BACKBONES",
    "Backbone",
    "CheckpointError",
    "EmotionHead",
    "EmotionHeadConfig",
    "EmotionRegressionMixin",
    "EmotionRegressionOutput",
    "LOSSES",
    "ModelSource",
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
    "register_models",
    "resolve_checkpoint",
    "resolve_model",
]
