"""MERT regressor: 24 kHz waveform [B, S] -> (valence, arousal), loaded without remote code.

MERT-v1 (m-a-p/MERT-v1-95M, -330M) is a HuBERT: its checkpoints load into transformers' own
HubertModel. Its Hub config is MERT's own format (`model_type: mert_model`, an `auto_map` to
modeling_MERT.py, MERT-only keys); that code crashes on recent transformers and returns no hidden
states on 5.x, so it is never run: the config is read as a dict, checked, and turned into a
HubertConfig. The weights (`feature_extractor.*`, `feature_projection.*`, `encoder.*`, with the
old weight-norm names `weight_g`/`weight_v`) are renamed by transformers on load.

MARBLE's recipe is the default: 5 s windows, a softmax-weighted sum of all layers (`layer`
"weighted"), the 95M model on normalised waveforms and the 330M one on raw ones.
"""

from __future__ import annotations

from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import (
    HubertConfig,
    HubertModel,
    HubertPreTrainedModel,
    PretrainedConfig,
)

from ..errors import CheckpointError
from ..choices import LAYER_WEIGHTED
from .backbone import Backbone
from .head import EmotionHeadConfig, EmotionRegressionMixin
from .wav2vec2 import BACKBONE as WAV2VEC2
from .wav2vec2 import WaveformEncoderMixin

MERT_MODEL_TYPE = "mert_model"  # what MERT's Hub config.json says
# MERT features that HubertModel does not implement: a checkpoint that uses them is refused.
UNSUPPORTED = ("feature_extractor_cqt", "deepnorm")


@strict
class MertEmotionConfig(EmotionHeadConfig, HubertConfig):
    """HubertConfig (MERT's architecture) plus the Sentio head fields."""

    model_type = "sentio-mert"
    pooling: str = "mean"
    layer: str | int = LAYER_WEIGHTED


class MertForEmotionRegression(WaveformEncoderMixin, EmotionRegressionMixin, HubertPreTrainedModel):
    """HubertModel encoder (under `hubert`, so MERT's unprefixed weights load into it) with the
    Sentio regression head.

    Inputs: `input_values` [B, S] zero-padded 24 kHz waveform; `attention_mask` [B, S] (1 = real);
    `labels` [B, 2].
    """

    config_class = MertEmotionConfig
    num_special_tokens = 0

    def __init__(self, config: MertEmotionConfig):
        super().__init__(config)
        self.hubert = HubertModel(config)
        self._init_emotion_head()
        self.post_init()


class _MertBackbone(Backbone):
    def features_from_config(self, config: PretrainedConfig) -> dict[str, Any]:
        # MARBLE feeds the pretrained 95M model (post-norm encoder) normalised waveforms and the
        # 330M one (stable layer norm) raw ones; the Hub preprocessor files disagree with each
        # other. A model trained from scratch sees normalised waveforms, as Wav2Vec2 does here.
        return {"do_normalize": not config.do_stable_layer_norm or config.init_checkpoint == "scratch"}

    def read_checkpoint_config(self, source: str, local_only: bool) -> PretrainedConfig:
        """MERT's own config.json as a checked HubertConfig; any other config (a Sentio run, a
        plain HuBERT) as transformers reads it."""
        values, _ = HubertConfig.get_config_dict(source, local_files_only=local_only)
        if values.get("model_type") != MERT_MODEL_TYPE:
            return super().read_checkpoint_config(source, local_only)
        used = [key for key in UNSUPPORTED if values.get(key)]
        if used:
            raise CheckpointError(f"{source}: MERT with {' and '.join(used)} is not supported (HuBERT has no such "
                                  f"layer); use a MERT-v1 checkpoint such as {self.default_checkpoint}")
        known = HubertConfig().to_dict()  # drops MERT-only keys (auto_map, sample_rate, attention_relax, ...)
        return HubertConfig(**{k: v for k, v in values.items() if k in known and k != "model_type"})


BACKBONE = _MertBackbone(
    name="mert",
    config_class=MertEmotionConfig,
    model_class=MertForEmotionRegression,
    feature_kind="waveform",
    default_checkpoint="m-a-p/MERT-v1-95M",
    default_head={"pooling": "mean", "layer": LAYER_WEIGHTED},
    # MERT-v1-95M: HuBERT-base sizes, 7 conv layers (stride 320: 75 frames/s at 24 kHz), group norm.
    full_config=dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        feat_extract_norm="group", do_stable_layer_norm=False, feat_proj_layer_norm=True,
        conv_bias=False, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
    ),  # fmt: skip
    feature_defaults={"sampling_rate": 24000, "window_seconds": 5.0},
    # The compact demo Wav2Vec2's encoder (the same conv + transformer family): 5 narrow conv layers
    # keep the 320-sample hop.
    demo_config=dict(WAV2VEC2.demo_config),
    demo_features={"window_seconds": 4.0},
    # HuBERT's attention projections (transformers 5.23); MARBLE v2 adapts q_proj and v_proj only.
    lora_targets=("q_proj", "k_proj", "v_proj", "out_proj"),
    encoder_layers="hubert.encoder.layers",
)
