"""The conditioning aids: the auxiliary regression head on D and the frozen-regressor consistency loss."""

from __future__ import annotations

import copy

import pytest
import torch

from sentio.features.extractor import SentioFeatureExtractor
from sentio.gan.data import SpecLayout
from sentio.gan.guide import FrozenRegressor
from sentio.gan.models import Discriminator, GanConfig
from sentio.gan.train import GanTrainer
from tests.gan.helpers import TINY_GAN, tiny_spectrograms, tiny_train_config
from tests.tiny import TINY

AUX_GAN = GanConfig(**{**TINY_GAN.to_dict(), "aux_head": True})


def _frozen_tiny_regressor() -> FrozenRegressor:
    """A tiny AST regressor (64 frames x 32 bins) reading 16 x 16 GAN images."""
    from sentio.models import build_model

    torch.manual_seed(0)
    model = build_model("ast", from_scratch=True, config_overrides=TINY["ast"])
    extractor = SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32)
    return FrozenRegressor(model, SpecLayout.for_extractor(extractor, 16, 16), extractor)


def test_aux_head_learns_the_labels_of_real_windows():
    real, labels = tiny_spectrograms(32)  # brightness and tilt follow the labels
    trainer = GanTrainer(AUX_GAN, tiny_train_config(aux_weight=1.0, diff_augment=[]))
    losses = [trainer.d_step(real, labels)["d_aux"] for _ in range(30)]
    assert losses[-1] < 0.3 * losses[0]
    with torch.no_grad():
        predicted = trainer.D.regress(trainer.D.features(real))
    assert torch.corrcoef(torch.stack([predicted[:, 1], labels[:, 1]]))[0, 1] > 0.8


def test_aux_loss_is_part_of_the_generator_loss_only_when_on():
    _, labels = tiny_spectrograms(8)
    plain = GanTrainer(TINY_GAN, tiny_train_config())
    assert set(plain.generator_losses(labels)) == {"adversarial"}
    assert set(plain.g_step(labels)) == {"g_loss"} and "d_aux" not in plain.d_step(*tiny_spectrograms(8))
    aux = GanTrainer(AUX_GAN, tiny_train_config(aux_weight=0.5))
    assert set(aux.generator_losses(labels)) == {"adversarial", "aux"}
    assert set(aux.g_step(labels)) == {"g_loss", "g_aux"}
    with pytest.raises(ValueError, match="auxiliary head"):
        GanTrainer(TINY_GAN, tiny_train_config(aux_weight=1.0))
    with pytest.raises(ValueError, match="no auxiliary head"):
        Discriminator(TINY_GAN).regress(torch.zeros(2, 64))


def test_consistency_gradient_reaches_the_generator_only():
    frozen = _frozen_tiny_regressor()
    trainer = GanTrainer(TINY_GAN, tiny_train_config(consistency_weight=1.0), consistency=frozen)
    _, labels = tiny_spectrograms(8)
    losses = trainer.generator_losses(labels)
    assert set(losses) == {"adversarial", "consistency"}
    trainer.G.zero_grad(set_to_none=True)
    losses["consistency"].backward()
    assert sum(float(p.grad.abs().sum()) for p in trainer.G.parameters() if p.grad is not None) > 0
    assert all(p.grad is None for p in frozen.parameters())
    assert all(p.grad is None for p in trainer.D.parameters())  # the regressor reads G's window, not D's


class _TiltRegressor(torch.nn.Module):
    """A stand-in trained regressor whose reading clearly depends on the window (a randomly initialised
    transformer's barely does): valence from the spectral tilt, arousal from the loudness."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor([2.0, 0.5]))

    def forward(self, input_values, attention_mask):
        freq = torch.linspace(-1, 1, input_values.shape[2])
        tilt = (input_values * freq).mean(dim=(1, 2))
        loud = input_values.mean(dim=(1, 2))
        return type("Out", (), {"predictions": torch.tanh(torch.stack([tilt, loud], 1) * self.scale)})()


def test_consistency_loss_falls_and_the_regressor_never_changes():
    extractor = SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32)
    frozen = FrozenRegressor(_TiltRegressor(), SpecLayout.for_extractor(extractor, 16, 16), extractor)
    before = copy.deepcopy(frozen.model.state_dict())
    trainer = GanTrainer(TINY_GAN, tiny_train_config(consistency_weight=50.0, lr_g=5e-3), consistency=frozen)
    _, labels = tiny_spectrograms(16)
    first = trainer.g_step(labels)["g_consistency"]
    for _ in range(25):
        last = trainer.g_step(labels)["g_consistency"]
    assert last < 0.7 * first
    after = frozen.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    frozen.train()
    assert not frozen.model.training  # dropout stays off whatever the caller does
    with pytest.raises(ValueError, match="needs a regressor"):
        GanTrainer(TINY_GAN, tiny_train_config(consistency_weight=1.0))
