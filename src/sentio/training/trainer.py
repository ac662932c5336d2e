"""EmotionTrainer: the transformers Trainer with our loss, song-level metrics and strict reloads."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from transformers import Trainer

from ..metrics import average_by_song, regression_metrics
from ..models.loss import emotion_loss

logger = logging.getLogger(__name__)


class EmotionTrainer(Trainer):
    """Trainer for valence/arousal regression.

    - the loss is ours (mse / ccc / mse+ccc as the model config says), never a transformers head's;
    - metrics are per dimension and song-level: window predictions of an evaluation set that knows
      its `song_ids` (WindowDataset) are averaged per song before scoring;
    - resuming and loading the best checkpoint go through `from_pretrained` with a strict check,
      because the stock path silently misloads AST/ViT encoder weights (see STACK.md).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        if kwargs.get("compute_metrics") is None:
            kwargs["compute_metrics"] = self._metrics
        super().__init__(*args, **kwargs)
        self._eval_song_ids: list[str] | None = None

    # ---- loss -------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        config = self.accelerator.unwrap_model(model).config
        loss = emotion_loss(outputs.predictions, labels, config.loss, getattr(config, "ccc_weight", 1.0))
        outputs.loss = loss
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        with torch.no_grad():
            if labels is not None:
                loss, outputs = self.compute_loss(model, dict(inputs), return_outputs=True)
                loss = loss.detach().mean()
            else:
                loss, outputs = None, model(**inputs)
        if prediction_loss_only:
            return loss, None, None
        return loss, outputs.predictions.detach(), (labels.detach() if labels is not None else None)

    def get_train_dataloader(self):
        """Training drops a last partial batch: CCC is a batch statistic, and a batch of one or two
        songs gives a meaningless loss. Evaluation keeps every window (a dropped batch there would
        silently shrink the test set)."""
        keep = self.args.dataloader_drop_last
        self.args.dataloader_drop_last = True
        try:
            return super().get_train_dataloader()
        finally:
            self.args.dataloader_drop_last = keep

    # ---- song-level metrics -----------------------------------------------------------------
    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        self._eval_song_ids = getattr(dataset, "song_ids", None)
        try:
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        finally:
            self._eval_song_ids = None

    def _metrics(self, eval_pred) -> dict[str, float]:
        pred, true = np.asarray(eval_pred.predictions), np.asarray(eval_pred.label_ids)
        songs = self._eval_song_ids
        if songs is not None and len(songs) == len(pred):
            pred, _ = average_by_song(pred, songs)
            true, _ = average_by_song(true, songs)
        metrics = regression_metrics(pred, true)
        metrics["num_songs"] = float(len(pred))
        return metrics

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Keep Sentio's own card (written by train.py) rather than the generic one on push."""
        if not os.path.isfile(os.path.join(self.args.output_dir, "README.md")):
            super().create_model_card(*args, **kwargs)

    # ---- strict reloads ---------------------------------------------------------------------
    def _strict_load(self, checkpoint: str, model: torch.nn.Module | None = None) -> None:
        model = model if model is not None else self.model
        target = self.accelerator.unwrap_model(model)
        loaded, info = type(target).from_pretrained(checkpoint, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        if problems:
            raise RuntimeError(f"{checkpoint}: checkpoint does not match the model: {problems}")
        target.load_state_dict(loaded.state_dict(), strict=True)
        logger.info("restored weights from %s (strict)", checkpoint)

    def _plain_setup(self) -> bool:
        return not (self.is_deepspeed_enabled or self.is_fsdp_enabled)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        if self._plain_setup() and os.path.isfile(os.path.join(resume_from_checkpoint, "config.json")):
            self._strict_load(resume_from_checkpoint, model)
        else:
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        if self._plain_setup() and best and os.path.isfile(os.path.join(best, "config.json")):
            logger.info("loading the best model from %s (%s = %s)", best, self.args.metric_for_best_model, self.state.best_metric)
            self._strict_load(best)
        else:
            super()._load_best_model()
