"""Generator and projection discriminator conditioned on continuous (valence, arousal).

Both work on one-channel spectrogram images [B, 1, freq, time] at the GAN's own (reduced)
resolution. Choices, for small data and continuous labels:

- Generator: BigGAN-style residual up-blocks with conditional batch norm (gain/bias from a learned
  label embedding), and squeeze-and-excitation channel attention in every block, as in the seeds.
- Discriminator: residual down-blocks with spectral norm on every weight (Miyato et al. 2018),
  global sum pooling, and a projection head (Miyato & Koyama 2018): the label enters as the inner
  product of a learned label embedding with the pooled features. For continuous labels the
  embedding is a small MLP rather than a lookup table.
- Optional auxiliary regression head on the discriminator (AC-GAN style, Odena et al. 2017, for
  continuous labels): a linear map of the same pooled features to (valence, arousal), trained on
  real windows only; the generator is asked to make windows it reads as their conditioning label.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from ..errors import ArgumentError

LABEL_DIM = 2  # (valence, arousal) on [-1, 1]


@dataclass
class GanConfig:
    """Architecture of both networks; saved in checkpoints so generation needs nothing else."""

    height: int = 64  # frequency bins at GAN resolution
    width: int = 64  # time frames at GAN resolution
    z_dim: int = 128
    channels: int = 32  # width of the last generator / first discriminator block (doubles per level)
    embed_dim: int = 64  # label embedding width
    aux_head: bool = False  # the discriminator also regresses (valence, arousal) (AC-GAN style)

    def __post_init__(self) -> None:
        if min(self.height, self.width) < 8:
            raise ArgumentError(f"GAN image {self.height}x{self.width} is too small (8x8 at least)")
        step = 2**self.levels
        if self.height % step or self.width % step:
            raise ArgumentError(f"GAN height and width must be multiples of {step}, got {self.height}x{self.width}")

    @property
    def levels(self) -> int:
        """Up/down-sampling levels: the smaller side goes down to 4."""
        return int(math.log2(min(self.height, self.width) // 4))

    def to_dict(self) -> dict:
        return asdict(self)


class SqueezeExcite(nn.Module):
    """Channel attention: rescale channels by a gate computed from their global average."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.fc1, self.fc2 = nn.Linear(channels, hidden), nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * gate[:, :, None, None]


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose gain and bias come from the label embedding (gain starts at 1)."""

    def __init__(self, channels: int, embed_dim: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain, self.bias = nn.Linear(embed_dim, channels), nn.Linear(embed_dim, channels)
        for layer in (self.gain, self.bias):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * (1 + self.gain(e))[:, :, None, None] + self.bias(e)[:, :, None, None]


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, embed_dim: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(cin, embed_dim), ConditionalBatchNorm(cout, embed_dim)
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)
        self.attention = SqueezeExcite(cout)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, e)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), e)))
        return self.attention(h) + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


def _label_mlp(embed_dim: int, out: int, sn: bool) -> nn.Sequential:
    wrap = spectral_norm if sn else (lambda m: m)
    return nn.Sequential(wrap(nn.Linear(LABEL_DIM, embed_dim)), nn.ReLU(), wrap(nn.Linear(embed_dim, out)))


class Generator(nn.Module):
    """(z [B, z_dim], labels [B, 2]) -> spectrogram image [B, 1, height, width] (standardised scale)."""

    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        c, n = config.channels, config.levels
        widths = [c * 2 ** (n - i) for i in range(n + 1)]  # e.g. 256 128 64 32 16 ... -> last = c
        self.h0, self.w0 = config.height // 2**n, config.width // 2**n
        self.embed = _label_mlp(config.embed_dim, config.embed_dim, sn=False)
        self.fc = nn.Linear(config.z_dim + config.embed_dim, widths[0] * self.h0 * self.w0)
        self.blocks = nn.ModuleList(GBlock(widths[i], widths[i + 1], config.embed_dim) for i in range(n))
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], 1, 3, padding=1))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        e = self.embed(labels)
        x = self.fc(torch.cat([z, e], dim=1)).view(z.shape[0], -1, self.h0, self.w0)
        for block in self.blocks:
            x = block(x, e)
        # No tanh: the data are standardised, not bounded, and a squashed range would clip loud frames.
        return self.out(x)


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool):
        super().__init__()
        self.first = first  # the first block sees the raw image: no activation before its conv
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        return h + F.avg_pool2d(self.skip(x), 2)


class Discriminator(nn.Module):
    """Projection discriminator: D(x, y) = w . phi(x) + <embed(y), phi(x)>, spectral norm throughout;
    with `aux_head`, also a regression of (valence, arousal) from phi(x)."""

    def __init__(self, config: GanConfig):
        super().__init__()
        c, n = config.channels, config.levels
        widths = [1] + [c * 2**i for i in range(n + 1)]
        self.blocks = nn.Sequential(*(DBlock(widths[i], widths[i + 1], first=i == 0) for i in range(n + 1)))
        self.linear = spectral_norm(nn.Linear(widths[-1], 1))
        self.embed = _label_mlp(config.embed_dim, widths[-1], sn=True)
        # No spectral norm: the head is a regressor, not part of the critic whose slope SN bounds.
        self.aux = nn.Linear(widths[-1], LABEL_DIM) if config.aux_head else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features phi(x) [B, C] (global sum pooling, as in the projection discriminator)."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def score(self, phi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The critic's output [B] for pooled features `phi` and their labels."""
        return self.linear(phi).squeeze(1) + (self.embed(labels) * phi).sum(dim=1)

    def regress(self, phi: torch.Tensor) -> torch.Tensor:
        """The auxiliary head's (valence, arousal) [B, 2] for pooled features `phi`."""
        if self.aux is None:
            raise ValueError("this discriminator has no auxiliary head (GanConfig.aux_head is False)")
        return self.aux(phi)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.score(self.features(x), labels)
