"""Sentio: predict the emotion of music (valence and arousal) from audio."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["EmotionPredictor", "__version__"]

if TYPE_CHECKING:
    from sentio.inference import EmotionPredictor


def __getattr__(name: str) -> Any:
    # Lazy, so `import sentio` (and every command's --help) stays fast and does not load torch.
    if name == "EmotionPredictor":
        from sentio.inference import EmotionPredictor

        return EmotionPredictor
    raise AttributeError(f"module 'sentio' has no attribute {name!r}")
