"""Sentio: predict the emotion of music (valence and arousal) from audio.

`import sentio` registers Sentio's models, configs and feature extractor with transformers' Auto
classes and the `music-emotion` pipeline task, so a run folder loads with
`transformers.AutoModel.from_pretrained(run)`, `AutoFeatureExtractor.from_pretrained(run)` or
`transformers.pipeline("music-emotion", model=run)`.

That registration imports torch and the transformers models (seconds). The command-line scripts set
SENTIO_DEFER_REGISTRATION before importing sentio, so `--help` and flag errors stay fast; they
register once the arguments are valid (loading a run registers too).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["EmotionPredictor", "__version__"]
DEFER_REGISTRATION = "SENTIO_DEFER_REGISTRATION"

if TYPE_CHECKING:
    from sentio.inference import EmotionPredictor


def __getattr__(name: str) -> Any:
    if name == "EmotionPredictor":
        from sentio.inference import EmotionPredictor

        return EmotionPredictor
    raise AttributeError(f"module 'sentio' has no attribute {name!r}")


if not os.environ.get(DEFER_REGISTRATION):
    import sentio.models  # noqa: E402,F401  (registers the Auto classes and the pipeline task)
