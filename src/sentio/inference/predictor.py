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
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence, Union

import numpy as np

from ..calibration import Calibration
from ..features.audio import AudioError
from ..errors import ArgumentError
from .loading import load_run
from .results import RESULT_OUTPUTS, Result, ResultBuilder
from .runner import TorchRunner, WindowRunner, batches_of, run_batches
from .stream import WindowCollator, WindowStream, stream_items, window_items

if TYPE_CHECKING:  # types only: predicting with an ONNX model loads neither torch nor transformers
    import torch

    from .loading import Extractor

AudioInput = Union[str, os.PathLike, np.ndarray]
logger = logging.getLogger(__name__)


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
