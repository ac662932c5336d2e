"""After training: calibrate the run's intervals on its validation songs (sentio.calibration), then
score validation and test, the same for every kind of run (train.py, distill.py)."""

from __future__ import annotations

import logging
from typing import Any

from ..calibration import Calibration, fit_calibration
from ..metrics import average_by_song

logger = logging.getLogger(__name__)


def calibrate_run(trainer: Any, validation: Any, output_dir: str) -> Calibration:
    """Song-level predictions (and spreads) of the trained model on `validation` (a WindowDataset),
    split-conformal quantiles from them, saved as the run's calibration.json."""
    output = trainer.predict(validation, metric_key_prefix="calibration")
    outputs, targets = output.predictions, output.label_ids
    pred, songs = average_by_song(outputs["predictions"], validation.song_ids)
    true, _ = average_by_song(targets["labels"], validation.song_ids)
    spread = average_by_song(outputs["spread"], validation.song_ids)[0] if "spread" in outputs else None
    calibration = fit_calibration(pred, true, spread)
    if trainer.is_world_process_zero():  # every process predicts (a distributed predict gathers), one writes
        calibration.save(output_dir)
    q90 = calibration.quantiles["0.9"]
    logger.info("calibrated on %d validation songs: 90%% score quantile valence %.3f, arousal %.3f (%s)",
                calibration.songs, q90[0], q90[1], "x predicted spread" if calibration.normalized else "on [-1, 1]")
    return calibration


def calibrate_and_score(trainer: Any, validation: Any, test: Any, output_dir: str, log: bool = True) -> dict[str, float]:
    """The end of a run: `calibrate_run` on `validation`, then the trainer's scores of `validation`
    and `test` (`eval_*`, `test_*`), saved as eval_results.json and test_results.json (and printed
    with `log`); returns them, eval first."""
    calibrate_run(trainer, validation, output_dir)
    results: dict[str, float] = {}
    for name, dataset in (("eval", validation), ("test", test)):
        metrics = trainer.evaluate(dataset, metric_key_prefix=name)
        if log:
            trainer.log_metrics(name, metrics)
        trainer.save_metrics(name, metrics)
        results.update(metrics)
    return results
