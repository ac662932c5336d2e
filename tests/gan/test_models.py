"""Generator and discriminator: shapes, conditioning, and that D learns a separable case."""

from __future__ import annotations

import pytest
import torch

from sentio.gan.models import Discriminator, GanConfig, Generator
from sentio.gan.train import GanTrainer, d_hinge_loss, diff_augment, g_hinge_loss
from tests.gan.helpers import TINY_GAN, tiny_spectrograms, tiny_train_config


def test_shapes_for_square_and_wide_images():
    for config in (TINY_GAN, GanConfig(height=16, width=32, z_dim=8, channels=4, embed_dim=8)):
        torch.manual_seed(0)
        G, D = Generator(config), Discriminator(config)
        images = G(torch.randn(3, config.z_dim), torch.zeros(3, 2))
        assert images.shape == (3, 1, config.height, config.width)
        assert D(images, torch.zeros(3, 2)).shape == (3,)
    with pytest.raises(ValueError, match="multiples of 4"):
        GanConfig(height=16, width=18)


def test_conditioning_changes_both_networks():
    torch.manual_seed(0)
    G, D = Generator(TINY_GAN).eval(), Discriminator(TINY_GAN).eval()
    # Conditional batch norm starts as plain batch norm: perturb its label layers as training would.
    for name, p in G.named_parameters():
        if ".bn" in name and ("gain" in name or "bias" in name):
            p.data.normal_(0, 0.5)
    z = torch.randn(4, TINY_GAN.z_dim)
    low, high = torch.full((4, 2), -0.8), torch.full((4, 2), 0.8)
    with torch.no_grad():
        a, b = G(z, low), G(z, high)
        assert (a - b).abs().mean() > 1e-3
        assert torch.equal(G(z, low), a)  # deterministic in eval mode
        x = torch.randn(4, 1, 16, 16)
        assert (D(x, low) - D(x, high)).abs().min() > 1e-4


def test_discriminator_learns_a_separable_case():
    real, labels = tiny_spectrograms(32, shift=3.0)  # far brighter than anything the generator makes at init
    trainer = GanTrainer(TINY_GAN, tiny_train_config(diff_augment=[]))
    losses = [trainer.d_step(real, labels)["d_loss"] for _ in range(15)]
    assert losses[0] > 1.5  # hinge: about 2 for an undecided D
    assert losses[-1] < 0.5 * losses[0]


def test_hinge_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert d_hinge_loss(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert g_hinge_loss(fake).item() == pytest.approx(1.0)


def test_diff_augment_keeps_shape_and_gradients():
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    out = diff_augment(x, ["gain", "translation", "cutout"], torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # cutout zeroes one time band and one frequency band of width 4 in every image
    cut = diff_augment(torch.ones(2, 1, 16, 16), ["cutout"], torch.Generator().manual_seed(1))
    for image in cut[:, 0]:
        assert (image == 0).all(dim=0).sum() == 4 and (image == 0).all(dim=1).sum() == 4
    assert torch.equal(diff_augment(x, []), x)
