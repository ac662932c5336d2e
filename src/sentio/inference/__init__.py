"""Using trained runs: load one (`load_run`), run a model over windows (`run_batches`), and
predict whole clips (`EmotionPredictor`)."""

from .predictor import EmotionPredictor
from .loading import Run, load_extractor, load_run
from .runner import (
    OnnxRunner,
    TorchRunner,
    WindowRunner,
    batches_of,
    dataset_items,
    onnx_session,
    run_batches,
)

__all__ = [
    "EmotionPredictor",
    "OnnxRunner",
    "Run",
    "TorchRunner",
    "WindowRunner",
    "batches_of",
    "dataset_items",
    "load_extractor",
    "load_run",
    "onnx_session",
    "run_batches",
]
