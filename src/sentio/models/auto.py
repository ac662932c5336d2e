"""Sentio's configs, models and feature extractor in transformers' Auto classes (by model_type, no
remote code), so a run folder loads with `AutoConfig`/`AutoModel`/`AutoFeatureExtractor.from_pretrained`.

Called explicitly (by the loaders, and by `sentio.registration.register`): importing the model
package registers nothing.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from ..features.extractor import SentioFeatureExtractor
from .registry import AUTO_ONLY_MODELS, BACKBONES

_registered = False


def register_models() -> None:
    """Register every Sentio config/model with AutoConfig/AutoModel and the feature extractor with
    AutoFeatureExtractor; idempotent."""
    global _registered
    if _registered:
        return
    pairs = [(b.config_class, b.model_class) for b in BACKBONES.values()] + list(AUTO_ONLY_MODELS)
    for config_class, model_class in pairs:
        AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        AutoFeatureExtractor.register(config_class, SentioFeatureExtractor, exist_ok=True)
    _registered = True
