"""Distillation training: the EmotionTrainer with a label + teacher loss and an optional feature hint."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset

from ..features.datasets import EmotionCollator, SongWindowDataset
from ..training.trainer import EmotionTrainer

TEACHER_COLUMNS = ("teacher_predictions", "teacher_embedding")


def distillation_loss(predictions: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha * MSE(student, labels) + (1 - alpha) * MSE(student, teacher).

    MSE to the teacher's outputs, not a KL: the targets are two continuous values (EfficientAT's
    students match logits; ours match the regression outputs the same way).
    """
    return alpha * F.mse_loss(predictions, labels) + (1 - alpha) * F.mse_loss(predictions, teacher)


class TeacherTargetDataset(SongWindowDataset):
    """SongWindowDataset whose items also carry the teacher's outputs for the drawn window
    (`teacher_predictions`, and `teacher_embedding` when that column exists)."""

    def __init__(self, ds: Dataset, feature_name: str, split: str | None = "train",
                 augment: Callable[[np.ndarray, int], np.ndarray] | None = None, every_window: bool = False):
        super().__init__(ds, feature_name, split, augment=augment, every_window=every_window)
        teacher = [c for c in TEACHER_COLUMNS if c in ds.column_names]
        if "teacher_predictions" not in teacher:
            raise ValueError("the feature dataset has no teacher_predictions column")
        self.view = self.ds.with_format("numpy", columns=[feature_name, "length", "labels", *teacher])


class DistillCollator(EmotionCollator):
    """EmotionCollator that also stacks the teacher columns when the items have them."""

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = super().__call__(items)
        for name in TEACHER_COLUMNS:
            if name in items[0]:
                batch[name] = torch.from_numpy(np.stack([np.asarray(it[name], dtype=np.float32) for it in items]))
        return batch


class DistillationTrainer(EmotionTrainer):
    """Training batches with teacher targets use the distillation loss (+ hint_weight * MSE of the
    student's projected embedding to the teacher's embedding). Evaluation batches have labels only
    and keep EmotionTrainer's loss (the student config's, MSE), so eval loss and song-level metrics
    are those of any Sentio model."""

    def __init__(self, *args: Any, alpha: float = 0.5, hint_weight: float = 0.0, **kwargs: Any):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"--alpha must be in [0, 1], got {alpha}")
        super().__init__(*args, **kwargs)
        self.alpha, self.hint_weight = alpha, hint_weight

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher = inputs.pop("teacher_predictions", None)
        teacher_embedding = inputs.pop("teacher_embedding", None)
        if teacher is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = distillation_loss(outputs.predictions, labels, teacher, self.alpha)
        if self.hint_weight > 0:
            projection = self.accelerator.unwrap_model(model).hint_proj
            if projection is None or teacher_embedding is None:
                raise ValueError("a feature hint needs hint_size > 0 in the student config and teacher embeddings")
            loss = loss + self.hint_weight * F.mse_loss(projection(outputs.embedding), teacher_embedding)
        outputs.loss = loss
        return (loss, outputs) if return_outputs else loss
