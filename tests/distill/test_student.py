"""Students, the distillation loss and teacher-target alignment: small and fast, no files but tmp ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel

from sentio.distill.teacher import TeacherOutputs, align
from sentio.distill.trainer import distillation_loss
from sentio.models import StudentEmotionConfig, StudentForEmotionRegression
from sentio.models.student import time_steps
from sentio.registration import register

register()  # AutoModel loads the saved students

# Tiny sizes: a CNN at a quarter width and a MobileViT with narrow stages (both keep the 5 stride-2 stages).
TINY_STUDENT = {
    "cnn": dict(width_mult=0.25, num_mel_bins=32, max_length=64, head_hidden_size=16),
    "mobilevit": dict(hidden_sizes=(16, 16, 16), neck_hidden_sizes=(8, 8, 8, 16, 16, 16, 32), num_mel_bins=32,
                      max_length=64, head_hidden_size=16),
}


def tiny_student(architecture: str, **extra) -> StudentForEmotionRegression:
    torch.manual_seed(0)
    return StudentForEmotionRegression(StudentEmotionConfig(architecture=architecture, **TINY_STUDENT[architecture], **extra))


@pytest.mark.parametrize("architecture", ["cnn", "mobilevit"])
def test_shapes_and_from_pretrained_round_trip(architecture, tmp_path):
    model = tiny_student(architecture).eval()
    x = torch.randn(3, 64, 32)
    mask = torch.ones(3, 64, dtype=torch.long)
    mask[1, 20:] = 0
    with torch.no_grad():
        out = model(x, mask, labels=torch.zeros(3, 2))
    assert out.predictions.shape == (3, 2) and out.embedding.shape == (3, model.embedding_size)
    assert torch.all(out.predictions.abs() < 1) and out.loss is not None and out.predictions.std() > 1e-4
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is StudentForEmotionRegression and loaded.config.architecture == architecture
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, mask).predictions, out.predictions, atol=1e-6, rtol=0)


def test_time_mask_counts_steps_from_real_frames():
    model = tiny_student("cnn")
    assert time_steps(64) == 2 and time_steps(1024) == 32 and time_steps(100) == 4
    mask = torch.zeros(2, 100, dtype=torch.long)
    mask[0, :40], mask[1, :5] = 1, 1  # steps start at frames 0, 32, 64, 96
    token = model._token_mask(torch.zeros(2, 100, 32), mask)
    assert token.tolist() == [[True, True, False, False], [True, False, False, False]]


def test_unknown_architecture_is_rejected():
    with pytest.raises(Exception, match="architecture='resnet'; choose one of cnn, mobilevit"):
        StudentEmotionConfig(architecture="resnet")


def test_distillation_loss_by_hand_and_it_decreases():
    pred, labels, teacher = torch.tensor([[0.5, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    # MSE to labels 0.125, to teacher 0.125 -> any alpha gives 0.125; other targets separate them
    assert float(distillation_loss(pred, labels, teacher, 0.3)) == pytest.approx(0.125)
    assert float(distillation_loss(pred, labels, torch.tensor([[0.5, 0.0]]), 0.3)) == pytest.approx(0.3 * 0.125)

    model = tiny_student("cnn").train()
    g = torch.Generator().manual_seed(1)
    x, mask = torch.randn(8, 64, 32, generator=g), torch.ones(8, 64, dtype=torch.long)
    labels, teacher = torch.rand(8, 2, generator=g) - 0.5, torch.rand(8, 2, generator=g) - 0.5
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = distillation_loss(model(x, mask).predictions, labels, teacher, 0.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    # the best any model can do is the midpoint of label and teacher: (label - teacher)^2 / 4
    floor = float(((labels - teacher) ** 2).mean() / 4)
    assert losses[-1] < losses[0] - 0.5 * (losses[0] - floor), (floor, losses)


def test_align_per_window_and_song_mean_fallback():
    teacher = TeacherOutputs(song_id=np.array(["a", "a", "b"]), window=np.array([0, 1, 0]),
                             start=np.array([0.0, 2.56, 0.0]), predictions=np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]),
                             embedding=np.arange(6, dtype=np.float32).reshape(3, 2))
    # a/0 and b/0 match; a/1 starts elsewhere (other windows) and a/2 does not exist -> a's mean
    preds, embs, counts = align(teacher, ["a", "a", "a", "b"], np.array([0, 1, 2, 0]), np.array([0.0, 2.0, 4.0, 0.01]))
    np.testing.assert_allclose(preds, [[0.1, 0.2], [0.2, 0.3], [0.2, 0.3], [0.5, 0.6]], atol=1e-6)
    np.testing.assert_allclose(embs[1], [1.0, 2.0])
    assert counts == {"per_window": 2, "song_mean": 2}
    with pytest.raises(ValueError, match="song 'c'"):
        align(teacher, ["c"], np.array([0]), np.array([0.0]))


def test_trainer_hint_adds_the_projected_embedding_mse(tmp_path):
    from sentio.distill.args import DistillTrainingArguments
    from sentio.distill.trainer import DistillationTrainer

    model = tiny_student("cnn", hint_size=6).eval()
    args = DistillTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, eval_strategy="no",
                                    save_strategy="no", load_best_model_at_end=False)
    g = torch.Generator().manual_seed(2)
    batch = {"input_values": torch.randn(4, 64, 32, generator=g), "attention_mask": torch.ones(4, 64, dtype=torch.long),
             "labels": torch.rand(4, 2, generator=g), "teacher_predictions": torch.rand(4, 2, generator=g),
             "teacher_embedding": torch.randn(4, 6, generator=g)}
    losses = {}
    for weight in (0.0, 0.5):
        trainer = DistillationTrainer(model=model, args=args, alpha=0.3, hint_weight=weight)
        with torch.no_grad():
            losses[weight] = float(trainer.compute_loss(model, dict(batch)))
    with torch.no_grad():
        out = model(batch["input_values"], batch["attention_mask"])
        hint = torch.nn.functional.mse_loss(model.hint_proj(out.embedding), batch["teacher_embedding"])
        base = distillation_loss(out.predictions, batch["labels"], batch["teacher_predictions"], 0.3)
    assert losses[0.0] == pytest.approx(float(base), rel=1e-5)
    assert losses[0.5] == pytest.approx(float(base + 0.5 * hint), rel=1e-5)
