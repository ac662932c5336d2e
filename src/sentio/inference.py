"""EmotionPredictor: valence and arousal of new audio with a trained Sentio run.

    from sentio import EmotionPredictor
    predictor = EmotionPredictor.from_pretrained("runs/ast")
    predictor.predict("song.mp3")  # {"valence": 0.31, "arousal": -0.12, "quadrant": "calm", ...}

A clip becomes the same windows the model was trained on (the run's `preprocessor_config.json`);
the song's value is the mean over its windows, exactly as training evaluates songs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from sentio.data.audio import AudioError
from sentio.data.collate import EmotionCollator
from sentio.data.feature_extractor import SentioFeatureExtractor
from sentio.data.labels import from_unit, quadrant

# A runner maps one collated batch of windows to predictions [B, 2] (valence, arousal) on [-1, 1]:
# TorchRunner for a transformers model, OnnxRunner for an exported .onnx file.
WindowRunner = Callable[[dict[str, torch.Tensor]], np.ndarray]
Result = dict[str, Any]
TORCH_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
AudioInput = Union[str, os.PathLike, np.ndarray]


class TorchRunner:
    """Runs batches through a Sentio transformers model in eval mode, without autograd."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device | None = None) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device).eval()  # eval: no dropout, so predictions are deterministic

    def __call__(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        with torch.inference_mode():
            inputs = {k: v.to(self.device) for k, v in batch.items()}
            return self.model(**inputs).predictions.float().cpu().numpy()


@contextlib.contextmanager
def _quiet_c_stderr() -> Iterator[None]:
    """Mute file descriptor 2 for a moment: libmpg123 prints "Note: Illegal Audio-MPEG-Header"
    lines straight to it on a damaged MP3, while the AudioError already says what went wrong."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedded interpreters): nothing to mute
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class OnnxRunner:
    """Runs batches through an exported ONNX model (e.g. distill.py's student.int8.onnx) with
    onnxruntime: the forward pass uses no torch. Feeds the graph the inputs it declares."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable graphs
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{path}: not a loadable ONNX model ({reason})") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name

    def __call__(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise ValueError(f"the ONNX model wants input(s) {missing}; the feature extractor gives {sorted(batch)}")
        inputs = {n: batch[n].numpy() for n in self.input_names}
        return np.asarray(self.session.run([self.output_name], inputs)[0], dtype=np.float32)


def _load_runner(source: str, local_only: bool, device: str | torch.device | None) -> WindowRunner:
    """The runner for the weights in `source`: an .onnx file, or a folder of torch weights (a folder
    with only one .onnx file and no torch weights runs that file)."""
    path = Path(source)
    if path.suffix.lower() == ".onnx":
        return OnnxRunner(path)
    if path.is_dir() and not any((path / w).is_file() for w in TORCH_WEIGHTS):
        graphs = sorted(path.glob("*.onnx"))
        if len(graphs) == 1:
            return OnnxRunner(graphs[0])
        if graphs:
            raise ValueError(f"{source} has no torch weights but several .onnx files: pass one of them as --model_dir")
    import transformers

    import sentio.models  # noqa: F401  (registers the Sentio configs with AutoModel)

    model = transformers.AutoModel.from_pretrained(source, local_files_only=local_only)
    return TorchRunner(model, device)


class EmotionPredictor:
    """Predicts (valence, arousal) of whole clips from a model and the feature extractor it was trained with.

    `model` is a Sentio regression model (wrapped in a TorchRunner) or any WindowRunner.
    """

    def __init__(self, model: torch.nn.Module | WindowRunner, extractor: SentioFeatureExtractor,
                 device: str | torch.device | None = None, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.runner: WindowRunner = TorchRunner(model, device) if isinstance(model, torch.nn.Module) else model
        self.extractor = extractor
        self.collate = EmotionCollator(extractor.feature_name)
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike, device: str | torch.device | None = None,
                        batch_size: int = 32) -> "EmotionPredictor":
        """Load a training run's folder (config.json, model.safetensors, preprocessor_config.json) or hub id.

        Raises OSError (one line) when the folder is missing or incomplete.
        """
        from sentio.models.hub import _looks_like_path, resolve_checkpoint

        source, folder = os.fspath(model_dir), Path(model_dir).expanduser()
        hint = "pass the output_dir of a Sentio training run"
        if folder.suffix.lower() == ".onnx":  # an exported model: its feature config sits beside it
            if not folder.is_file():
                raise FileNotFoundError(f"ONNX model {source} does not exist")
            if not (folder.parent / "preprocessor_config.json").is_file():
                raise FileNotFoundError(f"{folder.parent} has no preprocessor_config.json beside {folder.name}: "
                                        "keep the .onnx file in its distill.py output folder")
            extractor = SentioFeatureExtractor.from_pretrained(str(folder.parent), local_files_only=True)
            return cls(OnnxRunner(folder), extractor, batch_size=batch_size)
        if folder.is_dir():
            # preprocessor_config.json too: without it the training features cannot be rebuilt, and
            # default features would give silently wrong predictions.
            missing = [n for n in ("config.json", "preprocessor_config.json") if not (folder / n).is_file()]
            if missing:
                raise FileNotFoundError(f"{source} has no {' or '.join(missing)}: {hint}")
            source, local_only = str(folder), True
        elif _looks_like_path(source):
            raise FileNotFoundError(f"model folder {source} does not exist: {hint}")
        else:  # a hub id (a run pushed with --push_to_hub): local cache first, then the Hub
            source, local_only = resolve_checkpoint(source)
        extractor = SentioFeatureExtractor.from_pretrained(source, local_files_only=local_only)
        return cls(_load_runner(source, local_only, device), extractor, batch_size=batch_size)

    def window_predictions(self, audio: AudioInput, sampling_rate: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(predictions [K, 2] on [-1, 1], window starts [K] in seconds) for every window of one clip."""
        if isinstance(audio, (str, os.PathLike)):
            with _quiet_c_stderr():  # the decode only; anything later still reaches the user
                audio, sampling_rate = self.extractor.load(audio), self.extractor.sampling_rate
        windows = self.extractor(audio, sampling_rate=sampling_rate)
        features, lengths = windows[self.extractor.feature_name], windows["length"]
        items = [{self.extractor.feature_name: features[i], "length": lengths[i]} for i in range(len(lengths))]
        outputs = [self.runner(self.collate(items[i : i + self.batch_size]))
                   for i in range(0, len(items), self.batch_size)]
        return np.concatenate(outputs, axis=0), np.asarray(windows["start"], dtype=np.float64)

    def predict(self, audio: AudioInput, sampling_rate: int | None = None, timeline: bool = False) -> Result:
        """Valence and arousal of one file or waveform (at `sampling_rate`, default the extractor's).

        Returns valence, arousal (on [-1, 1]), valence_1_9, arousal_1_9 (DEAM's scale), quadrant,
        num_windows and, with `timeline`, a list of {start (s), valence, arousal} per window.
        Raises AudioError for a file that cannot be decoded.
        """
        preds, starts = self.window_predictions(audio, sampling_rate)
        valence, arousal = (float(x) for x in preds.astype(np.float64).mean(axis=0))
        result: Result = {
            "valence": valence,
            "arousal": arousal,
            "valence_1_9": float(from_unit(valence, "1-9")),
            "arousal_1_9": float(from_unit(arousal, "1-9")),
            "quadrant": str(quadrant(valence, arousal)),
            "num_windows": int(len(preds)),
        }
        if timeline:
            result["timeline"] = [{"start": float(s), "valence": float(v), "arousal": float(a)}
                                  for s, (v, a) in zip(starts, preds)]
        return result

    def predict_files(self, paths: Iterable[str | os.PathLike], progress: bool = True,
                      timeline: bool = False) -> Iterator[tuple[str, Result | AudioError]]:
        """(path, result) per file, or (path, AudioError) for one that cannot be read, so the rest go on.

        A progress bar goes to stderr when `progress` and there is more than one file.
        """
        paths = [os.fspath(p) for p in paths]
        for path in tqdm(paths, desc="predict", unit="file", disable=not progress or len(paths) < 2):
            try:
                yield path, self.predict(path, timeline=timeline)
            except AudioError as exc:
                yield path, exc
            except OSError as exc:  # e.g. a permission error the decoder did not wrap
                yield path, AudioError(path, exc.strerror or str(exc))
