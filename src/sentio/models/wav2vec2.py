"""Wav2Vec2 regressor: 16 kHz waveform [B, S] -> (valence, arousal), masked mean pooling."""

from __future__ import annotations

import torch
from huggingface_hub.dataclasses import strict
from transformers import Wav2Vec2Config, Wav2Vec2Model, Wav2Vec2PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .backbone import Backbone
from .head import EmotionHeadConfig, EmotionRegressionMixin
from .masking import conv_frame_centers


@strict
class Wav2Vec2EmotionConfig(EmotionHeadConfig, Wav2Vec2Config):
    """Wav2Vec2Config plus the Sentio head fields.

    freeze_feature_encoder: keep the convolutional feature encoder fixed, the usual recipe when
    fine-tuning pre-trained weights; ignored when init_checkpoint is "scratch" (random
    convolutions have to learn).
    SpecAugment-style masking (mask_time_prob, ...) applies in training as configured.
    """

    model_type = "sentio-wav2vec2"
    pooling: str = "mean"
    freeze_feature_encoder: bool = True


class WaveformEncoderMixin:
    """Token mask, time tokens and encoder call of a transformer over a convolutional feature encoder
    on raw audio (Wav2Vec2, and HuBERT: MERT), kept under `base_model_prefix`. Pooling always uses
    the padding mask; the encoder sees it only with a layer-norm feature encoder (group-norm models
    such as wav2vec2-base or MERT-95M were pre-trained on zero-padded input without one)."""

    def _token_mask(self, inputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if attention_mask.shape != inputs.shape:
            raise ValueError(
                f"attention_mask {tuple(attention_mask.shape)} must match input_values {tuple(inputs.shape)}"
            )
        encoder = getattr(self, self.base_model_prefix)
        num_frames = int(encoder._get_feat_extract_output_lengths(inputs.shape[-1]))
        return encoder._get_feature_vector_attention_mask(num_frames, attention_mask)

    def _time_tokens(self, hidden, token_mask):
        centers = conv_frame_centers(hidden.shape[1], self.config.conv_kernel, self.config.conv_stride, hidden.device)
        return hidden, token_mask, centers

    def _encode(self, inputs, attention_mask, token_mask, **kwargs) -> BaseModelOutput:
        pass_mask = self.config.mask_attention and self.config.feat_extract_norm == "layer"
        encoder = getattr(self, self.base_model_prefix)
        return encoder(inputs, attention_mask=attention_mask if pass_mask else None, **kwargs)


class Wav2Vec2ForEmotionRegression(WaveformEncoderMixin, EmotionRegressionMixin, Wav2Vec2PreTrainedModel):
    """Wav2Vec2Model encoder (under `wav2vec2`) with the Sentio regression head.

    Inputs: `input_values` [B, S] zero-padded waveform; `attention_mask` [B, S] (1 = real);
    `labels` [B, 2].
    """

    config_class = Wav2Vec2EmotionConfig
    num_special_tokens = 0

    def __init__(self, config: Wav2Vec2EmotionConfig):
        super().__init__(config)
        self.wav2vec2 = Wav2Vec2Model(config)
        # With an adapter the encoder's output width is output_hidden_size, not hidden_size.
        self._init_emotion_head(config.output_hidden_size if config.add_adapter else config.hidden_size)
        self.post_init()
        if config.freeze_feature_encoder and config.init_checkpoint != "scratch":
            self.wav2vec2.freeze_feature_encoder()


BACKBONE = Backbone(
    name="wav2vec2",
    config_class=Wav2Vec2EmotionConfig,
    model_class=Wav2Vec2ForEmotionRegression,
    feature_kind="waveform",
    default_checkpoint="facebook/wav2vec2-base",
    default_head={"pooling": "mean"},
    # transformers' Wav2Vec2Config defaults are wav2vec2-base: 7 conv layers (stride 320), 12 x 768.
    full_config=dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        feat_extract_norm="group", do_stable_layer_norm=False,
    ),  # fmt: skip
    feature_defaults={"sampling_rate": 16000, "window_seconds": 10.0},
    # 5 narrow conv layers keep the 320-sample hop (50 frames/s); the convolutions cost more than
    # the transformer here. Layer norm lets the encoder see the padding mask.
    demo_config=dict(
        conv_dim=(32, 64, 128, 128, 192), conv_stride=(5, 4, 4, 2, 2), conv_kernel=(10, 8, 4, 4, 4),
        feat_extract_norm="layer", do_stable_layer_norm=True,
        hidden_size=192, num_hidden_layers=3, num_attention_heads=4, intermediate_size=768,
        num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=8, layerdrop=0.0,
        head_hidden_size=128,
    ),  # fmt: skip
    demo_features={"window_seconds": 4.0},
    legacy_feature_kind="wav2vec2",
    # Wav2Vec2's attention projections (transformers 5.23).
    lora_targets=("q_proj", "k_proj", "v_proj", "out_proj"),
    encoder_layers="wav2vec2.encoder.layers",
)
