"""EmotionPredictor: valence and arousal of new audio with a trained Sentio run.

    from sentio import EmotionPredictor
    predictor = EmotionPredictor.from_pretrained("runs/ast")
    predictor.predict("song.mp3")  # {"valence": 0.31, "arousal": -0.12, "quadrant": "calm", ...}

A clip becomes the same windows the model was trained on (the run's `preprocessor_config.json`);
the song's value is the mean over its windows, exactly as training evaluates songs.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence, Union

import numpy as np

from ..calibration import CALIBRATION_FILE, Calibration, describe_quadrants
from ..features.audio import AudioError
from ..data.labels import from_unit, quadrant
from ..errors import ArgumentError
from ..metrics import DIMENSIONS
from ..choices import DEMO_NOTE
from .loading import load_run, run_file, trained_on_demo
from .runner import TorchRunner, WindowRunner, batches_of, run_batches
from .stream import WindowCollator, WindowStream, stream_items, window_items

if TYPE_CHECKING:  # types only: predicting with an ONNX model loads neither torch nor transformers
    import torch

    from .loading import Extractor

Result = dict[str, Any]
AudioInput = Union[str, os.PathLike, np.ndarray]
SCALE = "[-1, 1]"  # the scale of valence, arousal, spreads, intervals and curves (the *_1_9 fields: DEAM's 1..9)
# The model outputs a result is made of (not the embeddings: a long file would keep one per window).
RESULT_OUTPUTS = ("predictions", "spread", "frame_predictions", "frame_mask")
logger = logging.getLogger(__name__)


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


def _is_torch_module(model: Any) -> bool:
    """Whether `model` is a torch module; torch is not imported to ask (a model that is one has
    imported it already)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


class EmotionPredictor:
    """Predicts (valence, arousal) of whole clips from a model and the feature extractor it was trained with.

    `model` is a Sentio regression model (wrapped in a TorchRunner) or any WindowRunner. With
    `max_duration`, only the first `max_duration` seconds of a clip are predicted (its result then
    says `cut_at`): a server's bound on the work one upload can ask for.
    """

    def __init__(self, model: torch.nn.Module | WindowRunner, extractor: Extractor,
                 device: str | torch.device | None = None, batch_size: int = 32,
                 calibration: Calibration | None = None, max_duration: float | None = None,
                 results: ResultBuilder | None = None) -> None:
        if batch_size < 1:
            raise ArgumentError(f"batch_size must be at least 1, got {batch_size}")
        if max_duration is not None and not max_duration > 0:
            raise ArgumentError(f"max_duration must be a positive number of seconds, got {max_duration}")
        self.max_duration = max_duration
        self.runner: WindowRunner = (TorchRunner(model, device, outputs=RESULT_OUTPUTS)
                                     if _is_torch_module(model) else model)
        self.extractor = extractor
        self.collate = WindowCollator.for_extractor(extractor)  # numpy batches: TorchRunner wraps them
        self.batch_size = batch_size
        self.results = results or ResultBuilder(calibration, window_seconds=extractor.params.window_duration)
        if calibration is not None:
            self.results.calibration = calibration

    @property
    def calibration(self) -> Calibration | None:
        return self.results.calibration

    @property
    def trained_on_demo(self) -> bool:
        """Whether the model was trained on the synthetic demo corpus (say so where it predicts)."""
        return self.results.trained_on_demo

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, device: str | torch.device | None = None,
                        batch_size: int = 32, max_duration: float | None = None) -> "EmotionPredictor":
        """Load a training run's folder (config.json, model.safetensors, preprocessor_config.json,
        and calibration.json when the run has one), an exported .onnx file, or the hub id of a
        pushed run. Raises CheckpointError (one line) when it is missing or incomplete."""
        run = load_run(model_dir, device, numpy_features=True)  # an ONNX run: no torch, no transformers
        model = run.model if run.model is not None else run.runner  # a torch model gets a runner of our outputs
        return cls(model, run.extractor, device=device, batch_size=batch_size, max_duration=max_duration,
                   results=ResultBuilder.for_run(run.folder, run.config, run.extractor))

    def window_outputs(self, audio: AudioInput, sampling_rate: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(the model's outputs per window: `predictions` [K, 2] on [-1, 1] and, when the model gives
        them, `spread`, `frame_predictions`, `frame_mask`; window starts [K] in seconds) for one clip.

        A file is decoded and cut into windows block by block (`WindowStream`), so memory stays
        bounded by a batch whatever its length; a waveform is cut in memory.
        """
        outputs, starts, _, _ = self._outputs(audio, sampling_rate)
        return outputs, starts

    def clip_outputs(self, audio: AudioInput,
                     sampling_rate: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
        """window_outputs and the clip's duration in seconds."""
        outputs, starts, duration, _ = self._outputs(audio, sampling_rate)
        return outputs, starts, duration

    def _outputs(self, audio: AudioInput,
                 sampling_rate: int | None) -> tuple[dict[str, np.ndarray], np.ndarray, float, bool]:
        """window_outputs, the clip's duration (s) and whether the clip was cut at max_duration."""
        name = self.extractor.feature_name
        if isinstance(audio, (str, os.PathLike)):
            stream = WindowStream(self.extractor, audio, max_duration=self.max_duration)
            outputs = run_batches(self.runner, batches_of(stream_items(stream, name), self.collate, self.batch_size))
            return outputs, np.asarray(stream.starts, dtype=np.float64), stream.duration, stream.cut
        cut = False
        wave = np.asarray(audio)
        if self.max_duration is not None and wave.ndim in (1, 2):
            limit = int(np.ceil(self.max_duration * (sampling_rate or self.extractor.sampling_rate)))
            # time is the long axis, as the extractor reads a stereo array
            time_axis = 1 if wave.ndim == 2 and wave.shape[0] <= wave.shape[1] else 0
            if wave.shape[time_axis] > limit:
                audio, cut = (wave[:, :limit] if time_axis else wave[:limit]), True
        windows = self.extractor(audio, sampling_rate=sampling_rate)
        outputs = run_batches(self.runner, batches_of(window_items(windows, name), self.collate, self.batch_size))
        rate = sampling_rate or self.extractor.sampling_rate
        return outputs, np.asarray(windows["start"], dtype=np.float64), float(np.asarray(audio).shape[-1] / rate), cut

    def predict(self, audio: AudioInput | Sequence[AudioInput], sampling_rate: int | None = None,
                timeline: bool = False) -> Result | list[Result]:
        """Valence and arousal of one file or waveform (at `sampling_rate`, default the extractor's),
        or of each item of a list of them.

        Returns valence, arousal (on [-1, 1]: `scale`), valence_1_9, arousal_1_9 (DEAM's scale),
        quadrant, num_windows; `spread` {valence, arousal} for a model trained with --uncertainty;
        for a calibrated run `intervals` {"80"|"90"|"95": {valence: [low, high], arousal: [...]}}
        and `quadrant_probabilities` {happy, tense, sad, calm}; with `timeline`, a list of
        {start (s), valence, arousal} per window and, for a dynamic model, `curve` {times,
        valence, arousal} at 2 Hz; `cut_at` (s) when the clip was longer than `max_duration`
        and only its beginning was predicted. Raises AudioError for a file that cannot be decoded.
        """
        if isinstance(audio, (list, tuple)):
            return [self.predict(a, sampling_rate, timeline) for a in audio]
        outputs, starts, duration, cut = self._outputs(audio, sampling_rate)
        result = self.results(outputs, starts, timeline=timeline, duration=duration)
        if cut:
            result["cut_at"] = float(self.max_duration)
        return result

    def predict_files(self, paths: Iterable[str | os.PathLike], progress: bool = True, timeline: bool = False,
                      num_workers: int | None = None) -> Iterator[tuple[str, Result | AudioError]]:
        """(path, result) per file, or (path, AudioError) for one that cannot be read, so the rest go on.

        Files are decoded by `num_workers` threads (default: one per CPU core, at most 8) while the
        model runs; windows of several files share a batch. Pairs come in the order files finish.
        A progress bar goes to stderr when `progress` and there is more than one file.
        """
        from .batch import predict_library

        for done in predict_library(self, paths, timeline=timeline, num_workers=num_workers, progress=progress):
            yield done.path, done.error if done.error is not None else done.result
