"""`transformers.pipeline("music-emotion", model=RUN)`: a Sentio run through transformers' own
pipeline API (registered by `import sentio`, see sentio/registration.py). It gives what EmotionPredictor.predict gives:

    import sentio
    from transformers import pipeline
    pipeline("music-emotion", model="runs/ast-demo")("song.mp3")
    # {"valence": 0.14, "arousal": 0.40, "valence_1_9": 5.56, ..., "quadrant": "happy", "num_windows": 4}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoModel, Pipeline

from .predictor import EmotionPredictor

TASK = "music-emotion"


class MusicEmotionPipeline(Pipeline):
    """Audio (a file path or a waveform, with `sampling_rate`) -> valence/arousal of the whole clip;
    `timeline=True` adds the windows. The fields are EmotionPredictor.predict's."""

    _load_feature_extractor = True
    _load_tokenizer = False
    _load_processor = False
    _load_image_processor = False

    def _sanitize_parameters(self, sampling_rate: int | None = None, timeline: bool | None = None, **kwargs: Any):
        preprocess = {"sampling_rate": sampling_rate} if sampling_rate is not None else {}
        postprocess = {"timeline": timeline} if timeline is not None else {}
        return preprocess, {}, postprocess

    def preprocess(self, audio: str | os.PathLike | np.ndarray, sampling_rate: int | None = None) -> dict[str, Any]:
        return {"audio": audio, "sampling_rate": sampling_rate}

    def _forward(self, inputs: dict[str, Any]) -> dict[str, Any]:
        outputs, starts, duration = self._predictor().clip_outputs(inputs["audio"], inputs["sampling_rate"])
        return {"outputs": outputs, "starts": starts, "duration": duration}

    def _predictor(self):
        """An EmotionPredictor of this pipeline's model, whose result builder is the run's (its
        calibration.json, also a `checkpoint-N` folder's run's; what the run was trained on), as for
        every other prediction path. Built once; a demo-corpus model is said once, here."""
        if getattr(self, "_emotion_predictor", None) is None:
            from ..choices import DEMO_NOTE
            from .predictor import logger
            from .results import ResultBuilder

            folder = Path(str(getattr(self.model, "name_or_path", "") or ""))
            results = ResultBuilder.for_run(folder if folder.is_dir() else None, self.model.config,
                                            self.feature_extractor)
            if results.trained_on_demo:
                logger.warning("%s: %s", folder, DEMO_NOTE)
            self._emotion_predictor = EmotionPredictor(self.model, self.feature_extractor, device=self.model.device,
                                                       results=results)
        return self._emotion_predictor

    def postprocess(self, outputs: dict[str, Any], timeline: bool = False) -> dict[str, Any]:
        return self._predictor().results(outputs["outputs"], outputs["starts"], timeline, outputs.get("duration"))


def register_pipeline() -> None:
    """Make `transformers.pipeline("music-emotion", ...)` build a MusicEmotionPipeline."""
    from transformers.pipelines import PIPELINE_REGISTRY

    if TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=MusicEmotionPipeline, pt_model=AutoModel)
