"""The one list of backbones. Adding one = a model file that defines BACKBONE + one line here."""

from __future__ import annotations

from transformers import PretrainedConfig, PreTrainedModel

from ..errors import ArgumentError
from . import ast, clap, mert, vit, wav2vec2
from .backbone import Backbone
from .student import StudentEmotionConfig, StudentForEmotionRegression

BACKBONES: dict[str, Backbone] = {
    b.name: b
    for b in (
        ast.BACKBONE,
        wav2vec2.BACKBONE,
        vit.BACKBONE,
        mert.BACKBONE,
        clap.BACKBONE,
    )
}

# Models that load with AutoModel.from_pretrained but are not train.py backbones (no pretrained
# checkpoint, trained by distill.py): (config class, model class).
AUTO_ONLY_MODELS: tuple[tuple[type[PretrainedConfig], type[PreTrainedModel]], ...] = (
    (StudentEmotionConfig, StudentForEmotionRegression),
)


def get_backbone(name: str) -> Backbone:
    """The backbone called `name`; a one-line error lists the valid names otherwise."""
    try:
        return BACKBONES[name]
    except KeyError:
        raise ArgumentError(f"unknown model {name!r}; choose one of: {', '.join(BACKBONES)}") from None


def backbone_for_model_type(model_type: str) -> Backbone | None:
    """The backbone whose Sentio config has this model_type (e.g. 'sentio-ast'), else None."""
    return next((b for b in BACKBONES.values() if b.config_class.model_type == model_type), None)
