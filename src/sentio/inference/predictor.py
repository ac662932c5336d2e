"""EmotionPredictor: valence and arousal of new audio with a trained Sentio run.

    from sentio import EmotionPredictor
    predictor = EmotionPredictor.from_pretrained("runs/ast")
    predictor.predict("song.mp3")  # {"valence": 0.31, "arousal": -0.12, "quadrant": "calm", ...}

A clip becomes the same windows the model was trained on (the run's `preprocessor_config.json`);
the song's value is the mean over its windows, exactly as training evaluates songs.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np
import torch

from ..data.audio import AudioError
from ..data.collate import EmotionCollator
from ..data.feature_extractor import SentioFeatureExtractor
from ..data.labels import from_unit, quadrant
from ..errors import ArgumentError
from .run import load_run
from .runner import TorchRunner, WindowRunner, batches_of, run_batches
from .stream import WindowStream, stream_items, window_items

Result = dict[str, Any]
AudioInput = Union[str, os.PathLike, np.ndarray]


def song_result(predictions: np.ndarray, starts: np.ndarray, timeline: bool = False) -> Result:
    """One clip's result from its window predictions [K, 2] (on [-1, 1]) and starts [K] (s): the mean
    over windows, as training scores songs, on both scales, its quadrant and, with `timeline`, the
    windows themselves."""
    valence, arousal = (float(x) for x in np.asarray(predictions, np.float64).mean(axis=0))
    result: Result = {
        "valence": valence,
        "arousal": arousal,
        "valence_1_9": float(from_unit(valence, "1-9")),
        "arousal_1_9": float(from_unit(arousal, "1-9")),
        "quadrant": str(quadrant(valence, arousal)),
        "num_windows": int(len(predictions)),
    }
    if timeline:
        # starts are sample offsets / rate: round away float noise (2.575000047683716 -> 2.575)
        result["timeline"] = [{"start": round(float(s), 6), "valence": float(v), "arousal": float(a)}
                              for s, (v, a) in zip(starts, predictions)]
    return result


class EmotionPredictor:
    """Predicts (valence, arousal) of whole clips from a model and the feature extractor it was trained with.

    `model` is a Sentio regression model (wrapped in a TorchRunner) or any WindowRunner.
    """

    def __init__(self, model: torch.nn.Module | WindowRunner, extractor: SentioFeatureExtractor,
                 device: str | torch.device | None = None, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ArgumentError(f"batch_size must be at least 1, got {batch_size}")
        self.runner: WindowRunner = TorchRunner(model, device) if isinstance(model, torch.nn.Module) else model
        self.extractor = extractor
        self.collate = EmotionCollator.for_extractor(extractor)
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, device: str | torch.device | None = None,
                        batch_size: int = 32) -> "EmotionPredictor":
        """Load a training run's folder (config.json, model.safetensors, preprocessor_config.json),
        an exported .onnx file, or the hub id of a pushed run. Raises CheckpointError (one line)
        when it is missing or incomplete."""
        run = load_run(model_dir, device)
        return cls(run.runner, run.extractor, batch_size=batch_size)

    def window_predictions(self, audio: AudioInput, sampling_rate: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(predictions [K, 2] on [-1, 1], window starts [K] in seconds) for every window of one clip.

        A file is decoded and cut into windows block by block (`WindowStream`), so memory stays
        bounded by a batch whatever its length; a waveform is cut in memory.
        """
        name = self.extractor.feature_name
        if isinstance(audio, (str, os.PathLike)):
            stream = WindowStream(self.extractor, audio)
            outputs = run_batches(self.runner, batches_of(stream_items(stream, name), self.collate, self.batch_size))
            return outputs["predictions"], np.asarray(stream.starts, dtype=np.float64)
        windows = self.extractor(audio, sampling_rate=sampling_rate)
        outputs = run_batches(self.runner, batches_of(window_items(windows, name), self.collate, self.batch_size))
        return outputs["predictions"], np.asarray(windows["start"], dtype=np.float64)

    def predict(self, audio: AudioInput | Sequence[AudioInput], sampling_rate: int | None = None,
                timeline: bool = False) -> Result | list[Result]:
        """Valence and arousal of one file or waveform (at `sampling_rate`, default the extractor's),
        or of each item of a list of them.

        Returns valence, arousal (on [-1, 1]), valence_1_9, arousal_1_9 (DEAM's scale), quadrant,
        num_windows and, with `timeline`, a list of {start (s), valence, arousal} per window.
        Raises AudioError for a file that cannot be decoded.
        """
        if isinstance(audio, (list, tuple)):
            return [self.predict(a, sampling_rate, timeline) for a in audio]
        return song_result(*self.window_predictions(audio, sampling_rate), timeline=timeline)

    def predict_files(self, paths: Iterable[str | os.PathLike], progress: bool = True, timeline: bool = False,
                      num_workers: int | None = None) -> Iterator[tuple[str, Result | AudioError]]:
        """(path, result) per file, or (path, AudioError) for one that cannot be read, so the rest go on.

        Files are decoded by `num_workers` threads (default: one per CPU core, at most 8) while the
        model runs; windows of several files share a batch. Pairs come in the order files finish.
        A progress bar goes to stderr when `progress` and there is more than one file.
        """
        from .library import predict_library

        for done in predict_library(self, paths, timeline=timeline, num_workers=num_workers, progress=progress):
            yield done.path, done.error if done.error is not None else done.result
