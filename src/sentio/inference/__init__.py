"""Using trained runs: load one (`load_run`), run a model over windows (`run_batches`), and
predict whole clips (`EmotionPredictor`).

Predicting a music library (thousands of files, resumably, in constant memory, on one process or
many) is one module per job:
- `batch`: threads decode files while the model runs (`predict_library`);
- `writers`: CSV/JSONL outputs that grow as files finish and resume after a kill (`ResultLog`);
- `tags`: valence, arousal and quadrant written into a file's own tags, never damaging it;
- `listing`: the audio files under folders, a symlink loop or an unreadable folder reported;
- `journal`: the files in flight, so a file that kills the process is recognised and skipped;
- `shards`: the file list split over processes (accelerate or torchrun) and their parts merged.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loading import Run, load_extractor, load_run
    from .predictor import EmotionPredictor
    from .runner import OnnxRunner, TorchRunner, WindowRunner, batches_of, dataset_items, onnx_session, run_batches

# Loaded on first use (PEP 562): importing a light submodule (listing, shards) must not load torch
# and transformers, which take seconds; bench/decode_only.py and predict.py's argument checks rely on it.
_WHERE = {
    "EmotionPredictor": "predictor",
    "Run": "loading",
    "load_extractor": "loading",
    "load_run": "loading",
    **dict.fromkeys(["OnnxRunner", "TorchRunner", "WindowRunner", "batches_of", "dataset_items", "onnx_session",
                     "run_batches"], "runner"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
