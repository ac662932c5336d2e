"""GAN training: hinge loss, EMA generator, DiffAugment, checkpoints with resume, TensorBoard, tqdm.

- Hinge loss (Lim & Ye 2017; SNGAN, BigGAN): D minimises relu(1 - D(real)) + relu(1 + D(fake)),
  G minimises -D(fake).
- DiffAugment (Zhao et al. 2020): the same differentiable augmentation is applied to real AND
  fake images before D, in both the D and the G step, so D cannot memorise ~1,000 real windows
  and the augmentation does not leak into what G generates. Policies suited to spectrograms:
  gain (a constant offset in log-mel = loudness), time shift, and time/frequency cutout. No
  frequency shift: moving a spectrum up or down changes pitch and timbre, not just position.
- EMA of the generator weights (Karras et al.; Yazici et al. 2019) is what samples are drawn from.
- Conditioning aids, each off by default (their weights are 0): an auxiliary regression head on D
  (`aux_weight`: D learns (valence, arousal) of real windows, G is asked for it on fakes) and a
  consistency loss through a frozen trained regressor (`consistency_weight`: MSE between what the
  regressor reads in G's window and the label G was given; its gradient reaches G only).
- Quality tracking: every few epochs a tracker measures FD/KID of EMA samples on a fixed embedding;
  the checkpoint with the lowest FD is kept beside the last one (`gan_best.pt`).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..errors import ArgumentError, DataError
from .args import POLICIES
from .models import Discriminator, GanConfig, Generator

logger = logging.getLogger(__name__)
CHECKPOINT = "gan_checkpoint.pt"
BEST_CHECKPOINT = "gan_best.pt"  # the lowest tracked FD so far


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
    aux_weight: float = 0.0  # auxiliary regression loss of D (real) and G (fake); needs GanConfig.aux_head
    consistency_weight: float = 0.0  # frozen-regressor consistency loss of G; needs a `consistency` model


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


Tracker = Callable[["GanTrainer"], dict[str, float]]  # quality of the current EMA generator; must give "fd"


class GanTrainer:
    """Owns G, D, the EMA generator and their optimisers; trains epoch by epoch with checkpoints."""

    def __init__(self, gan: GanConfig, train: TrainConfig, device: str = "cpu",
                 consistency: torch.nn.Module | None = None):
        if train.aux_weight > 0 and not gan.aux_head:
            raise ArgumentError("an auxiliary loss weight needs a discriminator with an auxiliary head (aux_head)")
        if train.consistency_weight > 0 and consistency is None:
            raise ArgumentError("a consistency loss weight needs a regressor to read the generated windows")
        torch.manual_seed(train.seed)
        self.gan, self.train_config, self.device = gan, train, torch.device(device)
        self.G, self.D = Generator(gan).to(self.device), Discriminator(gan).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval()
        for p in self.G_ema.parameters():
            p.requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=train.lr_g, betas=train.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=train.lr_d, betas=train.betas)
        # images -> (valence, arousal); frozen (see FrozenRegressor), never saved with the GAN
        self.consistency = consistency.to(self.device) if consistency is not None else None
        self.epoch, self.step = 0, 0
        self.best: dict[str, float] | None = None  # {"epoch", "step", "fd"} of gan_best.pt
        self.rng = torch.Generator().manual_seed(train.seed)
        self.history: list[dict[str, float]] = []
        self.extra: dict[str, Any] = {}  # saved with the checkpoint: the data layout, for generation

    # ---- one step ---------------------------------------------------------------------------
    def d_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        policy = self.train_config.diff_augment
        z = torch.randn(real.shape[0], self.gan.z_dim, generator=self.rng).to(self.device)
        with torch.no_grad():
            fake = self.G(z, labels)
        phi_real = self.D.features(diff_augment(real, policy, self.rng))
        d_real = self.D.score(phi_real, labels)
        d_fake = self.D(diff_augment(fake, policy, self.rng), labels)
        loss = d_hinge_loss(d_real, d_fake)
        stats = {"d_real": float(d_real.detach().mean()), "d_fake": float(d_fake.detach().mean())}
        if self.train_config.aux_weight > 0:  # D learns the labels of REAL windows only
            aux = F.mse_loss(self.D.regress(phi_real), labels)
            loss = loss + self.train_config.aux_weight * aux
            stats["d_aux"] = float(aux.detach())
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        return {"d_loss": float(loss.detach()), **stats}

    def generator_losses(self, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generator's loss terms for a batch of fakes at `labels`, unweighted: `adversarial`,
        and `aux` / `consistency` when their weights are on."""
        z = torch.randn(labels.shape[0], self.gan.z_dim, generator=self.rng).to(self.device)
        fake = self.G(z, labels)
        phi = self.D.features(diff_augment(fake, self.train_config.diff_augment, self.rng))
        losses = {"adversarial": g_hinge_loss(self.D.score(phi, labels))}
        if self.train_config.aux_weight > 0:
            losses["aux"] = F.mse_loss(self.D.regress(phi), labels)
        if self.train_config.consistency_weight > 0:
            # The un-augmented window: the regressor judges what G actually writes into the split.
            losses["consistency"] = F.mse_loss(self.consistency(fake), labels)
        return losses

    def g_step(self, labels: torch.Tensor) -> dict[str, float]:
        losses = self.generator_losses(labels)
        weights = {"adversarial": 1.0, "aux": self.train_config.aux_weight,
                   "consistency": self.train_config.consistency_weight}
        loss = sum(weights[k] * v for k, v in losses.items())
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self._update_ema()
        names = {"adversarial": "g_loss", "aux": "g_aux", "consistency": "g_consistency"}
        return {names[k]: float(v.detach()) for k, v in losses.items()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Short runs: ramp the decay up so the EMA does not stay near the random initial weights.
        decay = min(self.train_config.ema_decay, (1 + self.step) / (10 + self.step))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1 - decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)  # batch-norm running statistics follow the live generator

    # ---- epochs -----------------------------------------------------------------------------
    def fit(self, images: torch.Tensor, labels: torch.Tensor, epochs: int, output_dir: str, progress: bool = True,
            tracker: Tracker | None = None, track_every: int = 0) -> list[dict[str, float]]:
        """Train up to `epochs` (counting epochs already done), checkpointing after every epoch.

        With a `tracker`, quality is measured every `track_every` epochs and after the last one,
        logged to TensorBoard under quality/, and the epoch with the lowest FD is kept as gan_best.pt.
        """
        from torch.utils.tensorboard import SummaryWriter

        n, bs = len(images), min(self.train_config.batch_size, len(images))
        if n < 2:
            raise DataError(f"the GAN needs at least 2 training windows, got {n}")
        writer = SummaryWriter(os.path.join(output_dir, "tensorboard"))
        label_pool = labels  # G steps draw labels from the train label distribution
        try:
            while self.epoch < epochs:
                record = self._epoch(images, labels, label_pool, bs, epochs, writer, progress)
                tracked = tracker is not None and track_every > 0 and (
                    self.epoch % track_every == 0 or self.epoch == epochs)
                if tracked:
                    record.update(self._track(tracker, writer, output_dir))
                self.history.append(record)
                self.save(output_dir)  # after gan_best.pt: a kill between the two repeats this epoch
        finally:
            writer.close()
        return self.history

    def _epoch(self, images: torch.Tensor, labels: torch.Tensor, label_pool: torch.Tensor, bs: int, epochs: int,
               writer: Any, progress: bool) -> dict[str, float]:
        t0, n = time.perf_counter(), len(images)
        order = torch.randperm(n, generator=self.rng)
        batches = [order[i : i + bs] for i in range(0, n - bs + 1, bs)]  # drop the partial batch (batch norm)
        bar = tqdm(batches, desc=f"GAN epoch {self.epoch + 1}/{epochs}", disable=not progress, leave=False)
        sums: dict[str, float] = {}
        for idx in bar:
            real, y = images[idx].to(self.device), labels[idx].to(self.device)
            stats = self.d_step(real, y)
            y_g = label_pool[torch.randint(len(label_pool), (bs,), generator=self.rng)].to(self.device)
            stats.update(self.g_step(y_g))
            self.step += 1
            for k, v in stats.items():
                writer.add_scalar(f"gan/{k}", v, self.step)
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(d=f"{stats['d_loss']:.3f}", g=f"{stats['g_loss']:.3f}")
        self.epoch += 1
        record = {k: v / len(batches) for k, v in sums.items()}
        record.update(epoch=self.epoch, step=self.step, seconds=time.perf_counter() - t0)
        writer.add_scalar("gan/epoch_seconds", record["seconds"], self.epoch)
        logger.info("GAN epoch %d: d_loss %.4f g_loss %.4f (%.1f s)", self.epoch, record["d_loss"], record["g_loss"],
                    record["seconds"])
        return record

    def _track(self, tracker: Tracker, writer: Any, output_dir: str) -> dict[str, float]:
        """Measure quality now; keep this state as gan_best.pt when its FD is the lowest so far."""
        quality = tracker(self)
        for k, v in quality.items():
            writer.add_scalar(f"quality/{k}", v, self.step)
        writer.flush()
        if self.best is None or quality["fd"] < self.best["fd"]:
            self.best = {"epoch": self.epoch, "step": self.step, "fd": float(quality["fd"])}
            self.save(output_dir, BEST_CHECKPOINT)
        logger.info("GAN epoch %d quality: %s (best FD %.3f at epoch %d)", self.epoch,
                    ", ".join(f"{k} {v:.4g}" for k, v in quality.items()), self.best["fd"], self.best["epoch"])
        return {f"quality_{k}": v for k, v in quality.items()}

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, seed: int = 0, batch_size: int = 64) -> torch.Tensor:
        """EMA-generator images for `labels` [N, 2], reproducible from `seed`."""
        rng = torch.Generator().manual_seed(seed)
        out = [self.G_ema(torch.randn(len(y), self.gan.z_dim, generator=rng).to(self.device), y.to(self.device)).cpu()
               for y in labels.split(batch_size)]
        return torch.cat(out) if out else torch.zeros(0, 1, self.gan.height, self.gan.width)

    # ---- checkpoints ------------------------------------------------------------------------
    def save(self, output_dir: str, name: str = CHECKPOINT) -> str:
        """All state in one file, written atomically: a crash (even kill -9) mid-write leaves the
        previous file whole, and at worst a stray .tmp that the next save overwrites."""
        path = os.path.join(output_dir, name)
        state = {"gan": self.gan.to_dict(), "train": asdict(self.train_config), "epoch": self.epoch, "step": self.step,
                 "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "rng": self.rng.get_state(),
                 "torch_rng": torch.get_rng_state(), "history": self.history, "best": self.best, "extra": self.extra}
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)
        return path

    def load(self, path: str) -> None:
        """Restore everything saved by `save`; the configs must match this trainer's."""
        state = torch.load(path, map_location=self.device, weights_only=True)  # tensors and plain types only: no code runs
        mine = {"gan": self.gan.to_dict(), "train": json.loads(json.dumps(asdict(self.train_config)))}
        # Settings added since a checkpoint was written compare at their defaults (which were its behaviour).
        theirs = {"gan": {**asdict(GanConfig()), **state["gan"]},
                  "train": json.loads(json.dumps({**asdict(TrainConfig()), **state["train"]}))}
        if mine != theirs:
            raise DataError(f"{path}: saved with other GAN settings ({theirs}); use another --output_dir or --no_resume")
        for name in ("G", "D", "G_ema", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(state[name])
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.step, self.history = state["epoch"], state["step"], state["history"]
        self.best, self.extra = state.get("best"), state.get("extra", {})


def load_generator(path: str, device: str = "cpu") -> tuple[Generator, dict[str, Any]]:
    """The EMA generator of a checkpoint (eval mode) and the checkpoint's `extra` (layout, ...)."""
    state = torch.load(path, map_location=device, weights_only=True)
    G = Generator(GanConfig(**state["gan"])).to(device)
    G.load_state_dict(state["G_ema"])
    return G.eval(), state.get("extra", {})
