"""Sentio: predict the emotion of music (valence and arousal) from audio.

`import sentio` registers Sentio's models, configs and feature extractor with transformers' Auto
classes and the `music-emotion` pipeline task, so a run folder loads with
`transformers.AutoModel.from_pretrained(run)`, `AutoFeatureExtractor.from_pretrained(run)` or
`transformers.pipeline("music-emotion", model=run)`.

Importing a module of the package (`import sentio.cli`, as the scripts do) registers nothing and
loads no torch: see sentio/registration.py for how the two are told apart, and `register()` there
for registering explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .registration import register_on_import

__version__ = "0.1.0"
__all__ = ["EmotionPredictor", "__version__"]

if TYPE_CHECKING:
    from sentio.inference import EmotionPredictor


def __getattr__(name: str) -> Any:
    if name == "EmotionPredictor":
        from sentio.inference import EmotionPredictor

        return EmotionPredictor
    raise AttributeError(f"module 'sentio' has no attribute {name!r}")


register_on_import()
