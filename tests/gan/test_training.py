"""GanTrainer: an epoch writes TensorBoard scalars and a checkpoint; resume restores everything."""

from __future__ import annotations

import copy

import pytest
import torch

from sentio.gan.train import BEST_CHECKPOINT, CHECKPOINT, GanTrainer, load_generator
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


class _ScriptedTracker:
    """A tracker whose FD follows a script, remembering the EMA generator it scored each time."""

    def __init__(self, fds):
        self.fds, self.seen = list(fds), []

    def __call__(self, trainer):
        self.seen.append(copy.deepcopy(trainer.G_ema.state_dict()))
        return {"fd": self.fds[len(self.seen) - 1], "kid": 0.0}


def test_best_fd_checkpoint_is_the_lowest_and_survives_resume(tmp_path):
    images, labels = tiny_spectrograms(16)
    tracker = _ScriptedTracker([5.0, 3.0, 4.0, 6.0])
    trainer = GanTrainer(TINY_GAN, tiny_train_config())
    trainer.fit(images, labels, epochs=4, output_dir=str(tmp_path), progress=False, tracker=tracker, track_every=1)
    assert trainer.best == {"epoch": 2, "step": 4, "fd": 3.0}
    best, _ = load_generator(str(tmp_path / BEST_CHECKPOINT))
    assert all(torch.equal(best.state_dict()[k], tracker.seen[1][k]) for k in tracker.seen[1])
    assert [h.get("quality_fd") for h in trainer.history] == [5.0, 3.0, 4.0, 6.0]

    resumed = GanTrainer(TINY_GAN, tiny_train_config())
    resumed.load(str(tmp_path / CHECKPOINT))
    assert resumed.best == trainer.best
    # a later, better epoch replaces it; tracking every 2 epochs still measures the last one (5)
    resumed.fit(images, labels, epochs=5, output_dir=str(tmp_path), progress=False,
                tracker=_ScriptedTracker([1.0]), track_every=2)
    assert resumed.best["epoch"] == 5 and torch.load(tmp_path / BEST_CHECKPOINT, weights_only=False)["epoch"] == 5


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 16 samples of a 128-dim embedding
def test_quality_tracker_logs_fd_and_kid_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from sentio.gan.data import SpecLayout
    from sentio.gan.report import QualityTracker

    images, labels = tiny_spectrograms(24)
    layout = SpecLayout("input_values", (32, 16), 1, 16, 16)  # fbank-like [time, freq], GAN 16 x 16
    real = layout.from_gan(images)
    tracker = QualityTracker.build(layout, real, labels.numpy(), None, samples=16)
    trainer = GanTrainer(TINY_GAN, tiny_train_config())
    trainer.fit(images, labels, epochs=2, output_dir=str(tmp_path), progress=False, tracker=tracker, track_every=1)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"quality/fd", "quality/kid"} <= set(events.Tags()["scalars"])
    fds = [e.value for e in events.Scalars("quality/fd")]
    assert len(fds) == 2 and all(v > 0 for v in fds)
    assert trainer.best["fd"] == pytest.approx(min(fds), rel=1e-6)  # TensorBoard keeps float32
    assert tracker(trainer)["fd"] == pytest.approx(tracker(trainer)["fd"])  # fixed noise and labels
