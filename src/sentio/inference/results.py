"""A clip's result: from its windows' model outputs to the dict every prediction path gives
(EmotionPredictor, predict_library, the `music-emotion` pipeline): the song's values on both
scales, its quadrant, and what the run adds (spreads, intervals, quadrant probabilities, notes)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ..calibration import CALIBRATION_FILE, Calibration, describe_quadrants
from ..choices import DEMO_NOTE
from ..data.labels import from_unit, quadrant
from ..metrics import DIMENSIONS
from .loading import run_file, trained_on_demo

if TYPE_CHECKING:  # types only: a result needs neither torch nor transformers
    from .loading import Extractor

Result = dict[str, Any]
SCALE = "[-1, 1]"  # the scale of valence, arousal, spreads, intervals and curves (the *_1_9 fields: DEAM's 1..9)
# The model outputs a result is made of (not the embeddings: a long file would keep one per window).
RESULT_OUTPUTS = ("predictions", "spread", "frame_predictions", "frame_mask")


def song_result(outputs: Mapping[str, np.ndarray], starts: np.ndarray, timeline: bool = False,
                calibration: Calibration | None = None) -> Result:
    """One clip's result from its windows' model outputs (`predictions` [K, 2] on [-1, 1], and
    `spread`, `frame_predictions`, `frame_mask` when the model gives them) and starts [K] (s).

    The song's value is the mean over windows, as training scores songs, on both scales, with its
    quadrant. A model with `--uncertainty` adds its `spread` (the windows' mean); a calibrated run
    (`calibration`) adds 80/90/95% `intervals` and `quadrant_probabilities`. With `timeline`: the
    windows themselves and, for a dynamic model, its 2 Hz `curve` (overlapping windows' frames
    averaged at each half-second).
    """
    predictions = np.asarray(outputs["predictions"], np.float64)
    mean = predictions.mean(axis=0)
    valence, arousal = (float(x) for x in mean)
    result: Result = {
        "valence": valence,
        "arousal": arousal,
        "valence_1_9": float(from_unit(valence, "1-9")),
        "arousal_1_9": float(from_unit(arousal, "1-9")),
        "quadrant": str(quadrant(valence, arousal)),
        "num_windows": int(len(predictions)),
        "scale": SCALE,
    }
    spread = outputs.get("spread")
    song_spread = None if spread is None else np.asarray(spread, np.float64).mean(axis=0)
    if song_spread is not None:
        result["spread"] = {dim: float(sd) for dim, sd in zip(DIMENSIONS, song_spread)}
    if calibration is not None:
        scale = None if song_spread is None else song_spread[None, :]
        result["intervals"] = {
            f"{round(level * 100):d}": {dim: [float(low[0, d]), float(high[0, d])] for d, dim in enumerate(DIMENSIONS)}
            for level, (low, high) in calibration.intervals(mean[None, :], scale).items()}
        result["quadrant_probabilities"] = describe_quadrants(calibration.quadrant_probabilities(mean[None, :], scale)[0])
    if timeline:
        # starts are sample offsets / rate in float32: round away its noise (23.174999237 -> 23.175); 0.1 ms
        # is finer than any hop
        result["timeline"] = [{"start": round(float(s), 4), "valence": float(v), "arousal": float(a)}
                              for s, (v, a) in zip(starts, predictions)]
        if outputs.get("frame_predictions") is not None:
            from ..data.dynamic import stitch_frames  # here: its module loads pandas, ~0.3 s of every start-up

            frames = np.asarray(outputs["frame_predictions"])
            stitched = stitch_frames(["clip"] * len(frames), starts, frames, outputs.get("frame_mask"))
            times, values = stitched.get("clip", (np.zeros(0), np.zeros((0, 2))))
            result["curve"] = {"times": [round(float(t), 4) for t in times],
                               "valence": [float(v) for v in values[:, 0]],
                               "arousal": [float(a) for a in values[:, 1]]}
    return result


def padding_note(duration: float, window_seconds: float) -> str:
    return (f"the clip ({duration:.2f} s) is shorter than one window ({window_seconds:.2f} s): it was predicted "
            "from one window that is mostly padding")


@dataclass
class ResultBuilder:
    """The one way every prediction path (EmotionPredictor, predict_library, the `music-emotion`
    pipeline) turns a clip's window outputs into its result: `song_result` with the run's
    calibration (intervals, quadrant probabilities), plus `notes` where the numbers deserve a word:
    a model trained on the demo corpus, a clip shorter than one window."""

    calibration: Calibration | None = None
    trained_on_demo: bool = False
    window_seconds: float | None = None

    @classmethod
    def for_run(cls, folder: str | os.PathLike | None, config: Any = None,
                extractor: Extractor | None = None) -> "ResultBuilder":
        """The builder of the run at `folder` (a `checkpoint-N` folder uses its run's calibration.json)."""
        folder = None if folder is None else Path(folder)
        calibration_file = run_file(folder, CALIBRATION_FILE)
        return cls(calibration=None if calibration_file is None else Calibration.load(calibration_file),
                   trained_on_demo=trained_on_demo(folder, config),
                   window_seconds=None if extractor is None else extractor.params.window_duration)

    def __call__(self, outputs: Mapping[str, np.ndarray], starts: np.ndarray, timeline: bool = False,
                 duration: float | None = None) -> Result:
        result = song_result(outputs, starts, timeline=timeline, calibration=self.calibration)
        notes = [DEMO_NOTE] if self.trained_on_demo else []
        if (duration is not None and self.window_seconds and result["num_windows"] == 1
                and duration < self.window_seconds - 1e-6):
            notes.append(padding_note(duration, self.window_seconds))
        if notes:
            result["notes"] = notes
        return result
