"""GAN training: hinge loss, EMA generator, DiffAugment, checkpoints with resume, TensorBoard, tqdm.

- Hinge loss (Lim & Ye 2017; SNGAN, BigGAN): D minimises relu(1 - D(real)) + relu(1 + D(fake)),
  G minimises -D(fake).
- DiffAugment (Zhao et al. 2020): the same differentiable augmentation is applied to real AND
  fake images before D, in both the D and the G step, so D cannot memorise ~1,000 real windows
  and the augmentation does not leak into what G generates. Policies suited to spectrograms:
  gain (a constant offset in log-mel = loudness), time shift, and time/frequency cutout. No
  frequency shift: moving a spectrum up or down changes pitch and timbre, not just position.
- EMA of the generator weights (Karras et al.; Yazici et al. 2019) is what samples are drawn from.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..errors import DataError
from .models import Discriminator, GanConfig, Generator

logger = logging.getLogger(__name__)
CHECKPOINT = "gan_checkpoint.pt"
POLICIES = ("gain", "translation", "cutout")


@dataclass
class TrainConfig:
    """Optimisation settings (saved with the checkpoint; resume requires the same ones)."""

    batch_size: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    # SNGAN's setting for one D step per G step. Measured on the demo corpus: with beta1 = 0 and
    # lr 2e-4, D's output swings in common mode for real and fake and it never separates them
    # (d_loss stays at 2.0); with beta1 = 0.5 the same D separates them within ~30 steps.
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float = 0.999
    diff_augment: list[str] = field(default_factory=lambda: list(POLICIES))
    seed: int = 0


def diff_augment(x: torch.Tensor, policy: list[str], generator: torch.Generator | None = None) -> torch.Tensor:
    """Differentiable augmentation of standardised [B, 1, freq, time] images."""
    b, _, h, w = x.shape
    opts = {"generator": generator, "device": x.device}
    if "gain" in policy:
        x = x + (torch.rand(b, 1, 1, 1, **opts) - 0.5) * 0.5
    if "translation" in policy:  # shift in time by up to 1/8 of the window, edge frames repeated
        shift = torch.randint(-(w // 8), w // 8 + 1, (b, 1), **opts)
        index = (torch.arange(w, device=x.device)[None] - shift).clamp(0, w - 1)
        x = torch.gather(x, 3, index[:, None, None, :].expand(b, 1, h, w))
    if "cutout" in policy:  # one time band and one frequency band of 1/4 of the axis set to the mean (0)
        keep = torch.ones(b, 1, h, w, device=x.device, dtype=x.dtype)
        for axis, size in ((3, w), (2, h)):
            width = max(1, size // 4)
            start = torch.randint(0, size - width + 1, (b,), **opts)
            pos = torch.arange(size, device=x.device)[None]
            band = (pos >= start[:, None]) & (pos < start[:, None] + width)
            keep = keep * (~band).to(x.dtype).view(b, 1, *((1, size) if axis == 3 else (size, 1)))
        x = x * keep
    return x


def d_hinge_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def g_hinge_loss(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


class GanTrainer:
    """Owns G, D, the EMA generator and their optimisers; trains epoch by epoch with checkpoints."""

    def __init__(self, gan: GanConfig, train: TrainConfig, device: str = "cpu"):
        torch.manual_seed(train.seed)
        self.gan, self.train_config, self.device = gan, train, torch.device(device)
        self.G, self.D = Generator(gan).to(self.device), Discriminator(gan).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval()
        for p in self.G_ema.parameters():
            p.requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=train.lr_g, betas=train.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=train.lr_d, betas=train.betas)
        self.epoch, self.step = 0, 0
        self.rng = torch.Generator().manual_seed(train.seed)
        self.history: list[dict[str, float]] = []
        self.extra: dict[str, Any] = {}  # saved with the checkpoint: the data layout, for generation

    # ---- one step ---------------------------------------------------------------------------
    def d_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        policy = self.train_config.diff_augment
        z = torch.randn(real.shape[0], self.gan.z_dim, generator=self.rng).to(self.device)
        with torch.no_grad():
            fake = self.G(z, labels)
        d_real = self.D(diff_augment(real, policy, self.rng), labels)
        d_fake = self.D(diff_augment(fake, policy, self.rng), labels)
        loss = d_hinge_loss(d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"d_loss": float(loss.detach()), "d_real": float(d_real.detach().mean()),
                "d_fake": float(d_fake.detach().mean())}

    def g_step(self, labels: torch.Tensor) -> dict[str, float]:
        z = torch.randn(labels.shape[0], self.gan.z_dim, generator=self.rng).to(self.device)
        loss = g_hinge_loss(self.D(diff_augment(self.G(z, labels), self.train_config.diff_augment, self.rng), labels))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self._update_ema()
        return {"g_loss": float(loss.detach())}

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Short runs: ramp the decay up so the EMA does not stay near the random initial weights.
        decay = min(self.train_config.ema_decay, (1 + self.step) / (10 + self.step))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)  # batch-norm running statistics follow the live generator

    # ---- epochs -----------------------------------------------------------------------------
    def fit(self, images: torch.Tensor, labels: torch.Tensor, epochs: int, output_dir: str,
            progress: bool = True) -> list[dict[str, float]]:
        """Train up to `epochs` (counting epochs already done), checkpointing after every epoch."""
        from torch.utils.tensorboard import SummaryWriter

        n, bs = len(images), min(self.train_config.batch_size, len(images))
        if n < 2:
            raise DataError(f"the GAN needs at least 2 training windows, got {n}")
        writer = SummaryWriter(os.path.join(output_dir, "tensorboard"))
        label_pool = labels  # G steps draw labels from the train label distribution
        try:
            while self.epoch < epochs:
                t0 = time.perf_counter()
                order = torch.randperm(n, generator=self.rng)
                batches = [order[i : i + bs] for i in range(0, n - bs + 1, bs)]  # drop the partial batch (batch norm)
                bar = tqdm(batches, desc=f"GAN epoch {self.epoch + 1}/{epochs}", disable=not progress, leave=False)
                sums: dict[str, float] = {}
                for idx in bar:
                    real, y = images[idx].to(self.device), labels[idx].to(self.device)
                    stats = self.d_step(real, y)
                    y_g = label_pool[torch.randint(n, (bs,), generator=self.rng)].to(self.device)
                    stats.update(self.g_step(y_g))
                    self.step += 1
                    for k, v in stats.items():
                        writer.add_scalar(f"gan/{k}", v, self.step)
                        sums[k] = sums.get(k, 0.0) + v
                    bar.set_postfix(d=f"{stats['d_loss']:.3f}", g=f"{stats['g_loss']:.3f}")
                self.epoch += 1
                record = {k: v / len(batches) for k, v in sums.items()}
                record.update(epoch=self.epoch, step=self.step, seconds=time.perf_counter() - t0)
                self.history.append(record)
                writer.add_scalar("gan/epoch_seconds", record["seconds"], self.epoch)
                logger.info("GAN epoch %d: d_loss %.4f g_loss %.4f (%.1f s)", self.epoch, record["d_loss"],
                            record["g_loss"], record["seconds"])
                self.save(output_dir)
        finally:
            writer.close()
        return self.history

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
        """EMA-generator images for `labels` [N, 2], reproducible from `seed`."""
        rng = torch.Generator().manual_seed(seed)
        out = [self.G_ema(torch.randn(len(y), self.gan.z_dim, generator=rng).to(self.device), y.to(self.device)).cpu()
               for y in labels.split(batch_size)]
        return torch.cat(out) if out else torch.zeros(0, 1, self.gan.height, self.gan.width)

    # ---- checkpoints ------------------------------------------------------------------------
    def save(self, output_dir: str, extra: dict[str, Any] | None = None) -> str:
        """All state in one file, written atomically: a crash mid-write leaves the previous one."""
        path = os.path.join(output_dir, CHECKPOINT)
        state = {"gan": self.gan.to_dict(), "train": asdict(self.train_config), "epoch": self.epoch, "step": self.step,
                 "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "rng": self.rng.get_state(),
                 "torch_rng": torch.get_rng_state(), "history": self.history, "extra": extra or self.extra}
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)
        return path

    def load(self, path: str) -> None:
        """Restore everything saved by `save`; the configs must match this trainer's."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        mine = {"gan": self.gan.to_dict(), "train": json.loads(json.dumps(asdict(self.train_config)))}
        theirs = {"gan": state["gan"], "train": json.loads(json.dumps(state["train"]))}
        if mine != theirs:
            raise DataError(f"{path}: saved with other GAN settings ({theirs}); use another --output_dir or --no_resume")
        for name in ("G", "D", "G_ema", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(state[name])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        self.extra = state.get("extra", {})


def load_generator(path: str, device: str = "cpu") -> tuple[Generator, dict[str, Any]]:
    """The EMA generator of a checkpoint (eval mode) and the checkpoint's `extra` (layout, ...)."""
    state = torch.load(path, map_location=device, weights_only=False)
    G = Generator(GanConfig(**state["gan"])).to(device)
    G.load_state_dict(state["G_ema"])
    return G.eval(), state.get("extra", {})
