"""GanTrainer: an epoch writes TensorBoard scalars and a checkpoint; resume restores everything."""

from __future__ import annotations

import pytest
import torch

from sentio.gan.train import CHECKPOINT, GanTrainer, load_generator
from tests.gan.helpers import TINY_GAN, tiny_spectrograms, tiny_train_config


def _equal_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fit_logs_checkpoints_and_resumes(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    images, labels = tiny_spectrograms(24)
    trainer = GanTrainer(TINY_GAN, tiny_train_config())
    history = trainer.fit(images, labels, epochs=1, output_dir=str(tmp_path), progress=False)
    assert len(history) == 1 and trainer.step == 3  # 24 windows, batch 8
    assert (tmp_path / CHECKPOINT).is_file()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"gan/d_loss", "gan/g_loss", "gan/d_real", "gan/d_fake"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("gan/d_loss")] == [1, 2, 3]

    # The EMA generator moved away from the live one's start but is not the live one.
    assert not _equal_state(trainer.G_ema, trainer.G)

    resumed = GanTrainer(TINY_GAN, tiny_train_config())
    resumed.load(str(tmp_path / CHECKPOINT))
    assert resumed.epoch == 1 and resumed.step == 3
    for name in ("G", "D", "G_ema"):
        assert _equal_state(getattr(resumed, name), getattr(trainer, name)), name
    # Continuing both gives identical second epochs: optimiser and random state were restored too.
    trainer.fit(images, labels, epochs=2, output_dir=str(tmp_path / "a"), progress=False)
    resumed.fit(images, labels, epochs=2, output_dir=str(tmp_path / "b"), progress=False)
    assert resumed.history[-1]["d_loss"] == pytest.approx(trainer.history[-1]["d_loss"], rel=1e-5)
    assert _equal_state(resumed.G_ema, trainer.G_ema)

    G, _ = load_generator(str(tmp_path / "b" / CHECKPOINT))
    assert _equal_state(G, resumed.G_ema)
    assert torch.equal(resumed.sample(labels[:4], seed=3), resumed.sample(labels[:4], seed=3))


def test_resume_refuses_other_settings(tmp_path):
    images, labels = tiny_spectrograms(8)
    trainer = GanTrainer(TINY_GAN, tiny_train_config())
    trainer.fit(images, labels, epochs=1, output_dir=str(tmp_path), progress=False)
    other = GanTrainer(TINY_GAN, tiny_train_config(lr_d=5e-4))
    with pytest.raises(ValueError, match="saved with other GAN settings"):
        other.load(str(tmp_path / CHECKPOINT))
