"""CLAP regressor: CLAP's own log-mel windows [B, frames, mel] -> (valence, arousal), through
transformers' ClapAudioModel (the HTSAT Swin audio tower of a CLAP checkpoint; no remote code).

Checkpoint: a CLAP repo (default laion/larger_clap_music) holds the WHOLE ClapModel: config.json
with `audio_config` and `text_config`, model.safetensors with the text tower, the projections and
the audio tower under `audio_model.`. Only the audio tower is built and loaded; every one of its
weights must load (hub.py refuses a missing one) and the text tower, both projections and the
logit scales are ignored by name (`_keys_to_ignore_on_load_unexpected`), so any other stray key
still shows. The checkpoint's preprocessor_config.json (its ClapFeatureExtractor: 48 kHz, mel
bins, hop, truncation, padding) is read into the config (`clap_features`), and features are
computed by transformers' ClapFeatureExtractor itself, window by window, and cached like every
other feature kind (kind `clap_mel`, defined here and registered with the data layer).

Windows and fusion: Sentio cuts a song into windows of the extractor's `max_length_s` (10 s), so
no window is ever longer than CLAP's input and its "fusion" path (a global view plus 3 local crops
of a LONGER clip) never triggers: for such input the extractor stacks 4 copies of the one mel and
the model reads only the first (is_longer False). A window keeps that one channel; a fused
checkpoint still gets `is_longer` and loads its fusion weights. The truncation setting still
matters: "fusion" checkpoints use HTK mel filters, the others Slaney ones (the extractor decides).
A clip shorter than a window is padded as CLAP pads (`repeatpad`: the clip repeated).

Tokens in time: HTSAT interpolates the mel to spec_size * freq_ratio frames (1024 for 10 s), cuts
them into freq_ratio (4) consecutive chunks and stacks the chunks along the frequency axis of a
square image; row r of any stage's token grid [H, W] is chunk r // (H / 4), column c is the
c-th time step inside that chunk. So every stage's tokens keep time order once regrouped (the
encoder itself regroups its last state the same way: [C, 2, 32] for 10 s, 32 time tokens of
0.3125 s). Each hidden state is turned into time-major tokens here ((chunk * W + c) * F + f), a
time token is the mean over its frequency rows, and its centre is mapped back through the
interpolation to the mel frames of the window (10 ms each): a 2 Hz target works.

Layers: the hidden states are the patch embedding and the output of each Swin stage (widths 128,
256, 512, 1024, 1024 for larger_clap_music, num_hidden_layers = the number of stages), the last
one after the encoder's final norm. A narrower state is zero-padded to the last width so that the
states stack: `--layer N` reads state N in its first features, `weighted` sums them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from transformers import ClapAudioConfig, ClapAudioModel, ClapConfig, ClapFeatureExtractor, PretrainedConfig
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.clap.modeling_clap import ClapPreTrainedModel

from ..features.params import PARAM_CLASSES, FeatureParams
from ..errors import CheckpointError
from .backbone import Backbone
from .head import EmotionHeadConfig, EmotionRegressionMixin

CLAP_MODEL_TYPES = ("clap", "clap_audio_model")  # a whole CLAP checkpoint, or its audio tower alone
# The preprocessor_config.json keys of ClapFeatureExtractor that shape the features -> our names.
_EXTRACTOR_KEYS = {
    "sampling_rate": "sampling_rate", "feature_size": "feature_size", "hop_length": "hop_length",
    "fft_window_size": "fft_window_size", "frequency_min": "frequency_min", "frequency_max": "frequency_max",
    "top_db": "top_db", "truncation": "clap_truncation", "padding": "clap_padding", "max_length_s": "window_seconds",
}  # fmt: skip


@dataclass
class ClapMelParams(FeatureParams):
    """CLAP's log-mel windows, made by transformers' ClapFeatureExtractor with these settings.
    One window is [frames, mel bins] (frames = window samples / hop + 1: 1001 for 10 s)."""

    kind: ClassVar[str] = "clap_mel"
    freq_axis: ClassVar[int | None] = 1
    sampling_rate: int = 48000
    window_seconds: float = 10.0
    feature_size: int = 64
    hop_length: int = 480
    fft_window_size: int = 1024
    frequency_min: float = 50.0
    frequency_max: float = 14000.0
    top_db: float | None = None
    clap_truncation: str = "rand_trunc"
    clap_padding: str = "repeatpad"

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sampling_rate))

    @property
    def num_frames(self) -> int:
        return self.window_samples // self.hop_length + 1

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return (self.num_frames, self.feature_size)

    @property
    def step_seconds(self) -> float:
        return self.hop_length / self.sampling_rate

    def extractor(self) -> ClapFeatureExtractor:
        return _extractor(tuple(sorted(dataclasses.asdict(self).items())))

    def compute(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"expected a mono waveform, got shape {wave.shape}")
        if wave.size == 0:
            wave = np.zeros(1, np.float32)
        starts = self.starts(len(wave))
        span = self.window_samples
        clips = [wave[s : s + span] for s in starts]
        out = self.extractor()(clips, sampling_rate=self.sampling_rate, return_tensors="np")["input_features"]
        # [windows, channels, frames, mel]: 4 equal channels with fusion for input no longer than a
        # window (the model reads the first), 1 otherwise.
        features = np.ascontiguousarray(out[:, 0], dtype=np.float32)
        lengths = np.array([min(self.num_frames, len(c) // self.hop_length + 1) for c in clips], np.int64)
        return {"input_values": features, "length": lengths,
                "start": (np.asarray(starts) / self.sampling_rate).astype(np.float32)}


@lru_cache(maxsize=8)
def _extractor(items: tuple) -> ClapFeatureExtractor:
    p = dict(items)
    return ClapFeatureExtractor(
        feature_size=p["feature_size"], sampling_rate=p["sampling_rate"], hop_length=p["hop_length"],
        max_length_s=p["window_seconds"], fft_window_size=p["fft_window_size"], frequency_min=p["frequency_min"],
        frequency_max=p["frequency_max"], top_db=p["top_db"], truncation=p["clap_truncation"],
        padding=p["clap_padding"],
    )


PARAM_CLASSES.setdefault(ClapMelParams.kind, ClapMelParams)  # the data layer computes and caches it like its own


@strict
class ClapEmotionConfig(EmotionHeadConfig, ClapAudioConfig):
    """ClapAudioConfig (the HTSAT audio tower) plus the Sentio head fields and the checkpoint's
    feature extractor settings (`clap_features`, in ClapMelParams' names)."""

    model_type = "sentio-clap"
    pooling: str = "mean"
    clap_features: dict | None = None


def _time_major(state: torch.Tensor, freq_ratio: int) -> torch.Tensor:
    """A stage's grid [B, C, H, W] (rows: freq_ratio time chunks of H / freq_ratio frequency rows)
    -> tokens [B, T * Fq, C] ordered by time (T = freq_ratio * W), then frequency."""
    b, c, h, w = state.shape
    x = state.reshape(b, c, freq_ratio, h // freq_ratio, w).permute(0, 2, 4, 3, 1)  # chunk, time, freq, C
    return x.reshape(b, freq_ratio * w * (h // freq_ratio), c)


class ClapForEmotionRegression(EmotionRegressionMixin, ClapPreTrainedModel):
    """ClapAudioModel (under `audio_model`, as in a whole ClapModel's weights) with the Sentio head.

    Inputs: `input_values` [B, frames, mel bins] (ClapFeatureExtractor's log-mel, one channel);
    `attention_mask` [B, frames] (unused: a short clip is repeat-padded, so every frame is audio);
    `labels` [B, 2].
    """

    config_class = ClapEmotionConfig
    main_input_name = "input_values"
    input_modalities = ("audio",)
    num_special_tokens = 0
    # The encoder lives under `audio_model` (a whole ClapModel's key prefix), so that is the base
    # model here (LoRA and the trainer find the encoder through it). Activation checkpointing: with
    # transformers 5.23 HTSAT's stages are flagged but never recomputed in the backward pass (a test
    # hook sees one forward), so it is refused rather than silently a no-op.
    base_model_prefix = "audio_model"
    supports_gradient_checkpointing = False
    # A CLAP checkpoint is the whole ClapModel: the text side and the joint-space projections are
    # not used here (the head reads the audio tower's hidden states).
    _keys_to_ignore_on_load_unexpected = [r"^text_model\.", r"^text_projection\.", r"^audio_projection\.",
                                          r"^logit_scale_[at]$"]

    def __init__(self, config: ClapEmotionConfig):
        super().__init__(config)
        if config.num_hidden_layers != len(config.depths):
            raise ValueError(f"num_hidden_layers={config.num_hidden_layers} must be the number of Swin stages "
                             f"({len(config.depths)})")
        self.audio_model = ClapAudioModel(config)
        self.freq_ratio = config.spec_size // config.num_mel_bins
        self.width = self.audio_model.audio_encoder.num_features
        self._init_emotion_head(self.width)
        self.post_init()

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any):
        # from_pretrained gives the loaded weights new, trainable parameters, undoing the freeze
        # of a probe's encoder done in __init__: freeze it again.
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        if model.config.probe:
            for name, param in model.named_parameters():
                if not name.startswith(("head.", "layer_weights")):
                    param.requires_grad_(False)
        return loaded

    def _token_mask(self, inputs: torch.Tensor, attention_mask: torch.Tensor) -> None:
        return None  # repeat-padded windows: every token covers audio (see the class docstring)

    def _input_steps(self, inputs: torch.Tensor) -> int:
        return int(inputs.shape[1])  # [B, frames, mel bins]

    def _encode(self, inputs, attention_mask, token_mask, output_hidden_states=None, output_attentions=None):
        features = inputs.unsqueeze(1)  # [B, 1, frames, mel]
        is_longer = torch.zeros(inputs.shape[0], 1, dtype=torch.bool, device=inputs.device) \
            if self.config.enable_fusion else None
        out = self.audio_model(input_features=features, is_longer=is_longer, output_hidden_states=output_hidden_states,
                               output_attentions=output_attentions, return_dict=True)
        last = out.last_hidden_state  # [B, C, Fq, T], regrouped in time by the encoder
        b, c, fq, t = last.shape
        last = last.permute(0, 3, 2, 1).reshape(b, t * fq, c)
        states = None
        if out.hidden_states is not None:
            states = tuple(F.pad(_time_major(h, self.freq_ratio), (0, self.width - h.shape[1]))
                           for h in out.hidden_states)
        return BaseModelOutput(last_hidden_state=last, hidden_states=states, attentions=out.attentions)

    def _time_tokens(self, hidden, token_mask):
        """Time tokens [B, T, C] (the mean of each time step's frequency rows) and their centres
        in mel frames of the window."""
        b, n, c = hidden.shape
        side = math.isqrt(n)  # the HTSAT image is square: every stage's grid is side x side
        steps, rows = self.freq_ratio * side, side // self.freq_ratio
        tokens = hidden.reshape(b, steps, rows, c).mean(dim=2)
        spec_width = self.config.spec_size * self.freq_ratio  # frames after the encoder's interpolation
        centres = (torch.arange(steps, device=hidden.device, dtype=torch.float32) + 0.5) * spec_width / steps - 0.5
        frames = self._frames
        if frames < spec_width:  # bicubic with align_corners: interpolated frame i sits at i (frames - 1) / (width - 1)
            centres = centres * (frames - 1) / (spec_width - 1)
        return tokens, None, centres

    def _embed(self, inputs, attention_mask, all_layers, flags):
        self._frames = int(inputs.shape[1])
        return super()._embed(inputs, attention_mask, all_layers, flags)


class _ClapBackbone(Backbone):
    def features_from_config(self, config: PretrainedConfig) -> dict[str, Any]:
        # The checkpoint's own extractor settings; the mel bins are the encoder's.
        return {**(config.clap_features or {}), "feature_size": config.num_mel_bins}

    def read_checkpoint_config(self, source: str, local_only: bool) -> PretrainedConfig:
        """A CLAP checkpoint's audio_config as a ClapAudioConfig, with its preprocessor's feature
        settings attached; any other config (a Sentio run) as transformers reads it."""
        values, _ = ClapConfig.get_config_dict(source, local_files_only=local_only)
        if values.get("model_type") not in CLAP_MODEL_TYPES:
            return super().read_checkpoint_config(source, local_only)
        audio = values.get("audio_config", values) if values.get("model_type") == "clap" else values
        known = ClapAudioConfig().to_dict()
        config = ClapAudioConfig(**{k: v for k, v in audio.items() if k in known and k != "model_type"})
        try:
            extractor, _ = ClapFeatureExtractor.get_feature_extractor_dict(source, local_files_only=local_only)
        except OSError:
            raise CheckpointError(f"{source}: a CLAP checkpoint needs its preprocessor_config.json (its "
                                  "ClapFeatureExtractor settings); download the whole repo with download_model.py") from None
        config.clap_features = {ours: extractor[theirs] for theirs, ours in _EXTRACTOR_KEYS.items() if theirs in extractor}
        config.num_hidden_layers = len(config.depths)
        return config


BACKBONE = _ClapBackbone(
    name="clap",
    config_class=ClapEmotionConfig,
    model_class=ClapForEmotionRegression,
    feature_kind=ClapMelParams.kind,
    default_checkpoint="laion/larger_clap_music",
    default_head={"pooling": "mean"},
    # HTSAT as in laion/larger_clap_music: 4 Swin stages (2, 2, 12, 2) from 128 to 1024 wide, a
    # 256 x 256 image of 64 mel bins x 1024 frames.
    full_config=dict(
        patch_embeds_hidden_size=128, hidden_size=1024, depths=(2, 2, 12, 2), num_attention_heads=(4, 8, 16, 32),
        num_hidden_layers=4, spec_size=256, num_mel_bins=64, window_size=8, enable_fusion=False,
    ),  # fmt: skip
    feature_defaults={"sampling_rate": 48000, "window_seconds": 10.0},
    # 5 s windows of 32 mel bins (501 frames) in a 128 x 128 image: 3 narrow stages, 32 x 32 tokens first.
    demo_config=dict(
        patch_embeds_hidden_size=48, hidden_size=192, depths=(2, 2, 2), num_attention_heads=(2, 4, 8),
        num_hidden_layers=3, spec_size=128, num_mel_bins=32, window_size=8, head_hidden_size=128,
    ),  # fmt: skip
    demo_features={"window_seconds": 5.0},
    # Swin window attention as transformers 5.23 names it (ClapAudioSelfAttention), and its 4
    # stages as the layers --unfreeze_top_layers counts (num_hidden_layers is the stage count).
    lora_targets=("query", "key", "value"),
    encoder_layers="audio_model.audio_encoder.layers",
)
