"""ViT regressor on log-mel images: [B, (C,) 224, 224] -> (valence, arousal), CLS pooling by default."""

from __future__ import annotations

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from transformers import PretrainedConfig, ViTConfig, ViTModel, ViTPreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .backbone import Backbone
from .head import EmotionHeadConfig, EmotionRegressionMixin, EmotionRegressionOutput
from .masking import grid_time_tokens, grid_token_mask, window_token_mask


@strict
class ViTEmotionConfig(EmotionHeadConfig, ViTConfig):
    """ViTConfig plus the Sentio head fields."""

    model_type = "sentio-vit"
    pooling: str = "cls"


def _pair(value: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class ViTForEmotionRegression(EmotionRegressionMixin, ViTPreTrainedModel):
    """ViTModel encoder (under `vit`, no pooler) with the Sentio regression head.

    Inputs: `pixel_values` [B, H, W], [B, 1, H, W] (one normalised log-mel channel, repeated to
    the encoder's channels) or [B, C, H, W]; rows are frequency, columns time. `attention_mask`
    [B, W] over columns (1 = real); `labels` [B, 2].
    """

    config_class = ViTEmotionConfig
    num_special_tokens = 1  # CLS

    def __init__(self, config: ViTEmotionConfig):
        super().__init__(config)
        # ViTForImageClassification drops the pooler too; our head pools itself.
        self.vit = ViTModel(config, add_pooling_layer=False)
        self._init_emotion_head()
        self.post_init()

    def _as_channels(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.dim() == 3:
            pixel_values = pixel_values.unsqueeze(1)
        if pixel_values.shape[1] == 1 and self.config.num_channels > 1:
            # expand is a view: no copy of the image per channel.
            pixel_values = pixel_values.expand(-1, self.config.num_channels, -1, -1)
        return pixel_values

    def _token_mask(self, inputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        (height, width), (patch_h, patch_w) = _pair(self.config.image_size), _pair(self.config.patch_size)
        if attention_mask.shape != (inputs.shape[0], width):
            raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must be [batch, image width {width}]")
        column_mask = window_token_mask(attention_mask, patch_w, patch_w, width // patch_w)
        # ViTPatchEmbeddings flattens the grid row-major: token = row * columns + column.
        return grid_token_mask(column_mask, height // patch_h)

    def _time_tokens(self, hidden, token_mask):
        (height, width), (patch_h, patch_w) = _pair(self.config.image_size), _pair(self.config.patch_size)
        columns = width // patch_w
        tokens, mask = grid_time_tokens(hidden[:, self.num_special_tokens :], token_mask, height // patch_h, columns)
        return tokens, mask, torch.arange(columns, device=hidden.device) * patch_w + patch_w / 2

    def _encode(self, inputs, attention_mask, token_mask, **kwargs) -> BaseModelOutputWithPooling:
        return self.vit(inputs, attention_mask=self._encoder_attention_mask(token_mask), **kwargs)

    def forward(self, pixel_values: torch.Tensor | None = None, **kwargs: Any) -> EmotionRegressionOutput:
        """The shared forward (EmotionRegressionMixin.forward) on the mel image, repeated to the
        encoder's channels; every other argument is the shared one's."""
        inputs = None if pixel_values is None else self._as_channels(pixel_values)
        return super().forward(inputs, **kwargs)


class _VitBackbone(Backbone):
    def features_from_config(self, config: PretrainedConfig) -> dict[str, Any]:
        return {"image_size": _pair(config.image_size)[0]}  # the mel image is square


BACKBONE = _VitBackbone(
    name="vit",
    config_class=ViTEmotionConfig,
    model_class=ViTForEmotionRegression,
    feature_kind="mel_image",
    default_checkpoint="google/vit-base-patch16-224-in21k",
    default_head={"pooling": "cls"},
    full_config=dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        image_size=224, patch_size=16, num_channels=3,
    ),  # fmt: skip
    demo_config=dict(
        hidden_size=192, num_hidden_layers=4, num_attention_heads=4, intermediate_size=768, head_hidden_size=128,
    ),  # fmt: skip
    legacy_feature_kind="vit",
    # transformers 5.23 names ViT's attention projections q/k/v/o_proj (older releases: query/key/value).
    lora_targets=("q_proj", "k_proj", "v_proj", "o_proj"),
    encoder_layers="vit.layers",
)
