"""Using trained runs: load one (`load_run`), run a model over windows (`run_batches`), and
predict whole clips (`EmotionPredictor`)."""

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
