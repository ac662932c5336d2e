"""EmotionTrainer: the transformers Trainer with our loss, song-level metrics and strict reloads."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from transformers import Trainer

from ..features.datasets import TARGET_COLUMNS
from ..data.dynamic import stitch_labelled
from ..errors import ArgumentError
from ..metrics import average_by_song, curve_metrics, regression_metrics
from .lora import ADAPTER_CONFIG, adapter_dir, has_adapters

logger = logging.getLogger(__name__)
# What evaluation gathers from each batch (the rest of the model output stays behind).
PREDICTED = ("predictions", "spread", "frame_predictions", "frame_mask")


def frame_metrics(frame_predictions: np.ndarray, frame_mask: np.ndarray, frame_labels: np.ndarray,
                  song_ids: list[str], starts: np.ndarray) -> dict[str, float]:
    """curve_metrics of a dynamic model's window frames, stitched into one curve per song over the
    labelled frames (overlapping windows averaged at each label time)."""
    curves = stitch_labelled(song_ids, starts, frame_predictions, frame_mask, frame_labels)
    return curve_metrics({s: pred for s, (_, pred, _) in curves.items()}, {s: true for s, (_, _, true) in curves.items()})


class EmotionTrainer(Trainer):
    """Trainer for valence/arousal regression.

    - the loss is the model's own (static and/or 2 Hz, squared error or likelihood, as its config
      says), never a transformers head's;
    - metrics are per dimension and song-level: window predictions of an evaluation set that knows
      its `song_ids` (WindowDataset) are averaged per song before scoring; for a dynamic model the
      window frames are stitched into one curve per song and scored frame by frame and song by
      song (sentio.metrics.curve_metrics), its static scores prefixed `static_`;
    - resuming and loading the best checkpoint go through `from_pretrained` with a strict check,
      because the stock path silently misloads AST/ViT encoder weights.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        if kwargs.get("compute_metrics") is None:
            kwargs["compute_metrics"] = self._metrics
        super().__init__(*args, **kwargs)
        self._eval_windows: Any = None  # the dataset being evaluated: its song_ids and starts

    # ---- loss -------------------------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)  # the model computes its own loss from the targets in the batch
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            outputs = model(**inputs)
        loss = outputs.loss.detach().mean() if outputs.loss is not None else None
        if prediction_loss_only:
            return loss, None, None
        predictions = {k: getattr(outputs, k).detach() for k in PREDICTED if getattr(outputs, k) is not None}
        targets = {k: inputs[k].detach() for k in TARGET_COLUMNS if k in inputs}
        return loss, predictions, (targets or None)

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
        self._eval_windows = eval_dataset if eval_dataset is not None else self.eval_dataset
        try:
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        finally:
            self._eval_windows = None

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        self._eval_windows = test_dataset
        try:
            return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        finally:
            self._eval_windows = None

    def _metrics(self, eval_pred) -> dict[str, float]:
        outputs, targets = eval_pred.predictions, eval_pred.label_ids
        pred, true = np.asarray(outputs["predictions"]), np.asarray(targets["labels"])
        songs = getattr(self._eval_windows, "song_ids", None)
        if songs is None or len(songs) != len(pred):  # not a WindowDataset: score the rows as they are
            songs = [str(i) for i in range(len(pred))]
        song_pred, _ = average_by_song(pred, songs)
        song_true, _ = average_by_song(true, songs)
        metrics = regression_metrics(song_pred, song_true)
        metrics["num_songs"] = float(len(song_pred))
        if "frame_predictions" in outputs and "frame_labels" in targets:
            dynamic = frame_metrics(outputs["frame_predictions"], outputs["frame_mask"], targets["frame_labels"],
                                    songs, self._eval_windows.starts)
            metrics = {**{f"static_{k}": v for k, v in metrics.items()}, **dynamic}
        return metrics

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Keep Sentio's own card (written by train.py) rather than the generic one on push."""
        if not os.path.isfile(os.path.join(self.args.output_dir, "README.md")):
            super().create_model_card(*args, **kwargs)

    # ---- strict reloads ---------------------------------------------------------------------
    def _strict_load(self, checkpoint: str, model: torch.nn.Module | None = None) -> None:
        model = model if model is not None else self.model
        target = self.accelerator.unwrap_model(model)
        adapters = os.path.isfile(os.path.join(adapter_dir(checkpoint), ADAPTER_CONFIG))
        if adapters != has_adapters(target):
            raise ArgumentError(f"{checkpoint} was saved {'with' if adapters else 'without'} LoRA adapters: resume "
                                f"with the run's own flags ({'with' if adapters else 'without'} --lora)")
        loaded, info = type(target).from_pretrained(checkpoint, output_loading_info=True)
        problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
        if problems:
            raise RuntimeError(f"{checkpoint}: checkpoint does not match the model: {problems}")
        state = loaded.state_dict()
        if adapters:  # the checkpoint's base weights under plain names + its adapters, as one strict load
            from .lora import with_adapters

            state = with_adapters(target, state, checkpoint)
        target.load_state_dict(state, strict=True)
        logger.info("restored weights from %s (strict)", checkpoint)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """A model with LoRA adapters is saved as its base weights under plain names (a from_pretrained
        folder) plus peft's adapter files, so a checkpoint reloads strictly and resumes exactly."""
        target = self.accelerator.unwrap_model(self.model)
        if not has_adapters(target):
            return super()._save(output_dir, state_dict)
        from .lora import plain_state_dict, save_adapter

        super()._save(output_dir, plain_state_dict(target))
        if self.args.should_save:
            save_adapter(target, output_dir if output_dir is not None else self.args.output_dir)

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
