"""Audio Spectrogram Transformer (AST) regressor: Kaldi fbank frames [B, T, 128] -> (valence, arousal)."""

from __future__ import annotations

from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from transformers import ASTConfig, ASTModel, ASTPreTrainedModel, PretrainedConfig
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .backbone import Backbone
from .head import EmotionHeadConfig, EmotionRegressionMixin
from .masking import grid_time_tokens, grid_token_mask, window_token_mask


@strict
class ASTEmotionConfig(EmotionHeadConfig, ASTConfig):
    """ASTConfig plus the Sentio head fields; pools CLS + distillation tokens by default."""

    model_type = "sentio-ast"
    pooling: str = "cls_dist"


class ASTForEmotionRegression(EmotionRegressionMixin, ASTPreTrainedModel):
    """ASTModel encoder (kept under `audio_spectrogram_transformer`, as in transformers' AST
    checkpoints) with the Sentio regression head.

    Inputs: `input_values` [B, T=config.max_length, num_mel_bins]; `attention_mask` [B, T] over
    frames (1 = real, padding at the end); `labels` [B, 2].
    """

    config_class = ASTEmotionConfig
    num_special_tokens = 2  # CLS, distillation

    def __init__(self, config: ASTEmotionConfig):
        super().__init__(config)
        self.audio_spectrogram_transformer = ASTModel(config)
        self._init_emotion_head()
        self.post_init()
        # transformers zero-initialises the CLS/distillation tokens and position embeddings (AST always
        # starts from a checkpoint there). From scratch, a zero token meets LayerNorm (eps 1e-12) and
        # gets ~1e3x the gradient of any other weight. DeiT, which AST derives from, uses a truncated
        # normal; loading a checkpoint overwrites these values anyway.
        embeddings = self.audio_spectrogram_transformer.embeddings
        for param in (embeddings.cls_token, embeddings.distillation_token, embeddings.position_embeddings):
            init.trunc_normal_(param, mean=0.0, std=config.initializer_range)

    def _token_mask(self, inputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        config = self.config
        if attention_mask.shape != inputs.shape[:2]:
            raise ValueError(
                f"attention_mask {tuple(attention_mask.shape)} must be [batch, frames] = {tuple(inputs.shape[:2])}"
            )
        freq_patches, time_patches = self.audio_spectrogram_transformer.embeddings.get_shape(config)
        time_mask = window_token_mask(attention_mask, config.patch_size, config.time_stride, time_patches)
        # ASTEmbeddings flattens the conv grid frequency-major: token = freq_index * time_patches + time_index.
        return grid_token_mask(time_mask, freq_patches)

    def _time_tokens(self, hidden, token_mask):
        freq_patches, time_patches = self.audio_spectrogram_transformer.embeddings.get_shape(self.config)
        tokens, mask = grid_time_tokens(hidden[:, self.num_special_tokens :], token_mask, freq_patches, time_patches)
        centers = torch.arange(time_patches, device=hidden.device) * self.config.time_stride + self.config.patch_size / 2
        return tokens, mask, centers

    def _input_steps(self, inputs: torch.Tensor) -> int:
        return int(inputs.shape[1])  # [B, frames, mel bins]

    def _encode(self, inputs, attention_mask, token_mask, **kwargs) -> BaseModelOutputWithPooling:
        return self.audio_spectrogram_transformer(
            inputs, attention_mask=self._encoder_attention_mask(token_mask), **kwargs
        )



class _AstBackbone(Backbone):
    def features_from_config(self, config: PretrainedConfig) -> dict[str, Any]:
        # Position embeddings fix the frames per window; the mel bins are the patch grid's height.
        return {"max_length": config.max_length, "num_mel_bins": config.num_mel_bins}


BACKBONE = _AstBackbone(
    name="ast",
    config_class=ASTEmotionConfig,
    model_class=ASTForEmotionRegression,
    feature_kind="fbank",
    window_unit="frames",
    default_checkpoint="MIT/ast-finetuned-audioset-10-10-0.4593",
    default_head={"pooling": "cls_dist"},
    full_config=dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        patch_size=16, frequency_stride=10, time_stride=10, max_length=1024, num_mel_bins=128,
    ),  # fmt: skip
    # 2.56 s windows; non-overlapping 16x16 patches give 8 x 16 = 128 tokens instead of 12 x 25.
    demo_config=dict(
        hidden_size=192, num_hidden_layers=4, num_attention_heads=4, intermediate_size=768,
        max_length=256, frequency_stride=16, time_stride=16, head_hidden_size=128,
    ),  # fmt: skip
    legacy_feature_kind="ast",
    # transformers 5.23 names AST's attention projections q/k/v/o_proj (older releases: query/key/value).
    lora_targets=("q_proj", "k_proj", "v_proj", "o_proj"),
    encoder_layers="audio_spectrogram_transformer.layers",
)
