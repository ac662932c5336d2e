"""SentioFeatureExtractor: the feature params of one model as a Hugging Face feature extractor.

A training run saves it next to the model (`preprocessor_config.json`), so prediction on new audio
rebuilds exactly the inputs the model was trained on with `SentioFeatureExtractor.from_pretrained`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from transformers import BatchFeature, FeatureExtractionMixin

from sentio.features.audio import load_audio
from sentio.features.numpy_features import mono_at_rate
from sentio.features.params import FeatureParams, canonical_kind, param_names, params_for


class SentioFeatureExtractor(FeatureExtractionMixin):
    """Turns one waveform or audio file into all its model-input windows for `feature_kind`
    (fbank, waveform or mel_image; see sentio.features.params).

    Params are plain attributes (HF convention, `sampling_rate` included) so they serialise to
    `preprocessor_config.json`; `params` rebuilds the typed dataclass from them.
    """

    def __init__(self, feature_kind: str = "fbank", **kwargs: Any) -> None:
        feature_kind = canonical_kind(feature_kind)  # a run saved by an older version may use an old name
        names = param_names(feature_kind)
        own = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        params = params_for(feature_kind, **own)  # validates kind and values' names
        kwargs.pop("model_input_names", None)
        super().__init__(**kwargs)
        self.feature_kind = feature_kind
        for name, value in params.to_dict().items():
            setattr(self, name, value)

    @classmethod
    def from_params(cls, params: FeatureParams) -> "SentioFeatureExtractor":
        return cls(feature_kind=params.kind, **params.to_dict())

    @property
    def params(self) -> FeatureParams:
        return params_for(self.feature_kind, **{n: getattr(self, n) for n in param_names(self.feature_kind)})

    @property
    def feature_name(self) -> str:
        """The model input column: `input_values` (fbank, waveform) or `pixel_values` (mel_image)."""
        return self.params.feature_name

    @property
    def time_axis(self) -> int:
        """The axis of one window's array that is time (what `length` counts)."""
        return self.params.time_axis

    @property
    def model_input_names(self) -> list[str]:
        return [self.feature_name, "length"]

    def features(self, wave: np.ndarray) -> dict[str, np.ndarray]:
        """Windows of a mono waveform already at `sampling_rate`, as numpy arrays."""
        return self.params.compute(wave)

    def load(self, path: str | os.PathLike) -> np.ndarray:
        """Decode a file to mono float32 at this extractor's rate (AudioError on bad files)."""
        return load_audio(path, self.sampling_rate)

    def __call__(
        self,
        audio: np.ndarray | list[float] | str | os.PathLike,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """All windows of one clip: `{feature_name: [K, ...], "length": [K], "start": [K]}`.

        `audio` is a file path or a waveform; a waveform at another `sampling_rate` is resampled
        (soxr); without `sampling_rate` it is taken to be at this extractor's rate. Stereo arrays
        ([channels, samples] or [samples, channels]) are averaged to mono.
        """
        wave = self.load(audio) if isinstance(audio, (str, os.PathLike)) else mono_at_rate(audio, sampling_rate,
                                                                                           self.sampling_rate)
        return BatchFeature(self.features(wave), tensor_type=return_tensors)
