"""Small students for distillation: log-mel frames [B, T, 128] -> (valence, arousal).

Two architectures behind one config (`architecture`):

- cnn: an EfficientAT-style MobileNetV3 (inverted residuals, depthwise convolutions, squeeze-and-
  excitation, hard-swish) in plain torch, scaled by `width_mult` (0.4 ~ EfficientAT's mn04).
- mobilevit: transformers' MobileViTModel with one input channel and mobilevit-xx-small sizes,
  built from the config (random weights, nothing downloaded).

Both take the AST-kind features (the normalised Kaldi fbank), see them as a one-channel image
[freq, time], average the final feature map over frequency and pool over the real time steps with
the shared `pool_tokens`, then the shared head. Both downsample time by 32 with five stride-2
stages, so any window length works.
"""

from __future__ import annotations

import math

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import MobileViTConfig, MobileViTModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput

from ..choices import STUDENT_ARCHITECTURES
from .head import EmotionHeadConfig, EmotionRegressionMixin

TIME_STRIDE = 32  # five stride-2 stages in both architectures
# MobileNetV3-Large blocks as EfficientAT uses them: (kernel, expanded, out, squeeze-excite, hard-swish, stride).
_MOBILENET_V3 = (
    (3, 16, 16, False, False, 1), (3, 64, 24, False, False, 2), (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2), (5, 120, 40, True, False, 1), (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2), (3, 200, 80, False, True, 1), (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1), (3, 480, 112, True, True, 1), (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2), (5, 960, 160, True, True, 1), (5, 960, 160, True, True, 1),
)  # fmt: skip


@strict
class StudentEmotionConfig(EmotionHeadConfig, MobileViTConfig):
    """MobileViTConfig (xx-small sizes, one channel) plus the CNN's width and the Sentio head fields.

    architecture: cnn | mobilevit. width_mult: CNN channel multiplier. num_mel_bins / max_length:
    the feature window the student was trained on. hint_size: width of the teacher embedding a
    feature hint regresses to (0 = no hint; the projection is used by distillation only).
    """

    model_type = "sentio-student"
    architecture: str = "cnn"
    width_mult: float = 0.4
    num_mel_bins: int = 128
    max_length: int = 1024
    hint_size: int = 0
    pooling: str = "mean"
    head_hidden_size: int = 128
    # apple/mobilevit-xx-small sizes; one channel: the spectrogram
    num_channels: int = 1
    hidden_sizes: list[int] | tuple[int, ...] = (64, 80, 96)
    neck_hidden_sizes: list[int] | tuple[int, ...] = (16, 16, 24, 48, 64, 80, 320)
    expand_ratio: float = 2.0
    hidden_dropout_prob: float | int = 0.05

    def validate_architecture(self) -> None:
        if self.architecture not in STUDENT_ARCHITECTURES:
            raise ValueError(f"architecture={self.architecture!r}; choose one of {', '.join(STUDENT_ARCHITECTURES)}")
        if not 0 < self.width_mult <= 4:
            raise ValueError(f"width_mult must be in (0, 4], got {self.width_mult}")


def _divisible(channels: float, divisor: int = 8) -> int:
    """Round to a multiple of 8 (as MobileNet does: fast kernels) without losing more than 10%."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: type | None = nn.ReLU) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act is not None else nn.Sequential(*layers)


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        hidden = _divisible(channels / 4)
        self.fc1, self.fc2 = nn.Conv2d(channels, hidden, 1), nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))
        return x * nn.functional.hardsigmoid(scale)


class _InvertedResidual(nn.Module):
    """1x1 expand -> k x k depthwise (stride) -> squeeze-excite -> 1x1 project, residual when shapes allow."""

    def __init__(self, cin: int, expanded: int, cout: int, kernel: int, se: bool, hswish: bool, stride: int):
        super().__init__()
        act = nn.Hardswish if hswish else nn.ReLU
        layers = [] if expanded == cin else [_conv_bn(cin, expanded, 1, act=act)]
        layers += [_conv_bn(expanded, expanded, kernel, stride, groups=expanded, act=act)]
        layers += [_SqueezeExcite(expanded)] if se else []
        layers += [_conv_bn(expanded, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetEncoder(nn.Module):
    """MobileNetV3-Large trunk scaled by `width_mult`: [B, 1, F, T] -> [B, C, F/32, T/32]."""

    def __init__(self, width_mult: float, in_channels: int = 1):
        super().__init__()
        stem = _divisible(16 * width_mult)
        layers: list[nn.Module] = [_conv_bn(in_channels, stem, 3, 2, act=nn.Hardswish)]
        cin = stem
        for kernel, expanded, out, se, hswish, stride in _MOBILENET_V3:
            cout = _divisible(out * width_mult)
            layers.append(_InvertedResidual(cin, _divisible(expanded * width_mult), cout, kernel, se, hswish, stride))
            cin = cout
        self.out_channels = _divisible(6 * cin)  # the 1x1 "last conv" of MobileNetV3 (960 at width 1)
        layers.append(_conv_bn(cin, self.out_channels, 1, act=nn.Hardswish))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def time_steps(frames: int) -> int:
    """Output time steps for `frames` input frames: five stride-2 convs with 'same' padding, ceil each."""
    for _ in range(int(math.log2(TIME_STRIDE))):
        frames = (frames + 1) // 2
    return frames


class StudentForEmotionRegression(EmotionRegressionMixin, PreTrainedModel):
    """A compact Sentio regressor on AST-kind features.

    Inputs: `input_values` [B, T, num_mel_bins]; `attention_mask` [B, T] over frames (1 = real,
    padding at the end); `labels` [B, 2]. A time step of the final map counts as real when its
    first frame is real (the convolutions' receptive fields span many frames, so the stricter
    "whole receptive field real" rule of the transformer backbones would drop most steps).
    """

    config_class = StudentEmotionConfig
    base_model_prefix = "student"
    main_input_name = "input_values"

    def __init__(self, config: StudentEmotionConfig):
        super().__init__(config)
        if config.architecture == "cnn":
            self.encoder = MobileNetEncoder(config.width_mult, config.num_channels)
            width = self.encoder.out_channels
        else:
            self.encoder = MobileViTModel(config, expand_output=True)
            # MobileViTModel initialised itself with its own scheme and marked its modules done, and
            # post_init dispatches a sub-model to its own _init_weights: unmark the modules and hand
            # it ours, so that the whole student starts from the scheme below.
            for module in self.encoder.modules():
                module.__dict__.pop("_is_hf_initialized", None)
            self.encoder._init_weights = self._init_weights
            width = config.neck_hidden_sizes[-1]
        self.embedding_size = width
        self.hint_proj = nn.Linear(width, config.hint_size) if config.hint_size > 0 else None
        self._init_emotion_head(width)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # From scratch (a student is never fine-tuned from a checkpoint): He init for the ReLU /
        # hard-swish convolutions, unit BatchNorm. fan_in, not MobileNet's usual fan_out: for a
        # depthwise conv fan_out counts every channel, and the signal then shrinks ~10x per block
        # until BatchNorm statistics are learnt (an untrained model would predict ~1e-8 everywhere).
        # MobileViT's own scheme draws BatchNorm scales from N(0, 0.02), which has the same effect.
        if isinstance(module, nn.Conv2d):
            init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            if module.bias is not None:
                init.zeros_(module.bias)

    def _token_mask(self, inputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if attention_mask.shape != inputs.shape[:2]:
            raise ValueError(
                f"attention_mask {tuple(attention_mask.shape)} must be [batch, frames] = {tuple(inputs.shape[:2])}"
            )
        steps = torch.arange(time_steps(inputs.shape[1]), device=inputs.device)
        lengths = attention_mask.to(torch.int64).sum(dim=1, keepdim=True)
        # the first step always counts, so a (degenerate) empty window still pools something
        return (steps[None, :] * TIME_STRIDE < lengths) | (steps[None, :] == 0)

    def _time_tokens(self, hidden, token_mask):
        centers = torch.arange(hidden.shape[1], device=hidden.device) * TIME_STRIDE + TIME_STRIDE / 2
        return hidden, token_mask, centers

    def _input_steps(self, inputs: torch.Tensor) -> int:
        return int(inputs.shape[1])  # [B, frames, mel bins]

    def _encode(self, inputs, attention_mask, token_mask, output_hidden_states=None, **kwargs) -> BaseModelOutput:
        image = inputs.transpose(1, 2).unsqueeze(1)  # [B, 1, freq, time]
        if self.config.architecture == "cnn":
            # channels-last: oneDNN's depthwise and 1x1 convolutions run ~1.8x cheaper in NHWC than
            # in NCHW on a CPU (a demo training step, 1 thread: 0.38 vs 0.67 CPU s; bench/distill_step.py).
            # Only the input is converted: the weights stay contiguous, so checkpoints save as before.
            maps, hidden = self.encoder(image.contiguous(memory_format=torch.channels_last)), None
        else:
            out = self.encoder(image, output_hidden_states=output_hidden_states, return_dict=True)
            maps, hidden = out.last_hidden_state, out.hidden_states
        # [B, C, F', T'] -> mean over frequency -> [B, T', C]: one token per time step
        return BaseModelOutput(last_hidden_state=maps.mean(dim=2).transpose(1, 2), hidden_states=hidden)

