"""The numpy fbank (what an ONNX model is fed) against the torch fbank the models were trained on,
and against transformers' ASTFeatureExtractor, on real audio files the tests write."""

from __future__ import annotations

import numpy as np
import pytest

from sentio.features.audio import load_audio
from sentio.features.extractor import SentioFeatureExtractor
from sentio.features.numpy_features import NumpyFeatureExtractor, fbank_features_numpy, kaldi_mel_filters
from sentio.features.params import FbankParams, fbank_features
from tests.conftest import write_audio


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """37 s of a chord with noise, as MP3 at 44.1 kHz stereo, decoded at 16 kHz the way prediction does."""
    path = write_audio(tmp_path_factory.mktemp("audio") / "song.mp3", 37.3, 44100, 2, seed=3)
    return load_audio(path, 16000)


@pytest.mark.filterwarnings("ignore:At least one mel filter")  # 128 bins over 257: one is empty, as in AST
def test_mel_filters_are_transformers_kaldi_filters():
    from transformers.audio_utils import mel_filter_bank

    for bins, rate in ((128, 16000), (32, 16000), (64, 22050)):
        expected = mel_filter_bank(num_frequency_bins=257, num_mel_filters=bins, min_frequency=20,
                                   max_frequency=rate // 2, sampling_rate=rate, norm=None, mel_scale="kaldi",
                                   triangularize_in_mel_space=True).astype(np.float32)
        np.testing.assert_array_equal(kaldi_mel_filters(bins, rate, 400), expected)


@pytest.mark.parametrize("max_length,bins", [(256, 128), (1024, 128), (64, 32)])
def test_numpy_fbank_matches_the_torch_fbank_on_a_real_file(song, max_length, bins):
    params = FbankParams(max_length=max_length, num_mel_bins=bins)
    for wave in (song, song[: 16000 * 3 + 77], song[:300]):  # many windows, a short clip, a tiny one
        torch_out, numpy_out = fbank_features(wave, params), fbank_features_numpy(wave, params)
        np.testing.assert_array_equal(numpy_out["length"], torch_out["length"])
        np.testing.assert_array_equal(numpy_out["start"], torch_out["start"])
        diff = np.abs(numpy_out["input_values"] - torch_out["input_values"])
        # torch's float32 FFT rounds quiet bins of loud frames more coarsely than numpy's: a few
        # values in a thousand differ by more than 1e-5, none by more than the AST parity tolerance
        assert diff.mean() < 1e-6 and np.quantile(diff, 0.999) < 1e-4 and diff.max() < 1e-3
        assert (diff > 1e-5).mean() < 0.01


@pytest.mark.filterwarnings("ignore:At least one mel filter")
def test_numpy_fbank_matches_ast_feature_extractor_closely(song):
    from transformers import ASTFeatureExtractor

    params = FbankParams(max_length=1024)
    out = fbank_features_numpy(song, params)
    reference = ASTFeatureExtractor(max_length=1024)
    for k, start in enumerate(out["start"]):
        expected = reference(song[int(round(start * 16000)):], sampling_rate=16000, return_tensors="np")["input_values"][0]
        assert np.abs(out["input_values"][k] - expected).max() < 1e-4


def test_numpy_extractor_reads_a_saved_run_and_gives_its_windows(tmp_path, song):
    saved = SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32, hop_seconds=0.3)
    saved.save_pretrained(tmp_path)
    import json

    light = NumpyFeatureExtractor.from_config(json.loads((tmp_path / "preprocessor_config.json").read_text()))
    assert light.params == saved.params and light.feature_name == saved.feature_name
    assert light.time_axis == saved.time_axis and light.sampling_rate == 16000
    stereo = np.stack([song[:44100], 0.5 * song[:44100]])  # [channels, samples] at another rate
    for audio, rate in ((song[:20000], None), (stereo, 22050)):
        ours, theirs = light(audio, sampling_rate=rate), saved(audio, sampling_rate=rate, return_tensors="np")
        assert ours.keys() == set(theirs.keys())
        np.testing.assert_array_equal(ours["length"], theirs["length"])
        np.testing.assert_allclose(ours["input_values"], theirs["input_values"], atol=1e-3)
    waveform = SentioFeatureExtractor("waveform", window_seconds=1.0)
    light = NumpyFeatureExtractor.from_config(waveform.to_dict())
    np.testing.assert_array_equal(light(song[:40000])["input_values"], waveform(song[:40000])["input_values"])
    with pytest.raises(ValueError, match="unknown feature kind"):
        NumpyFeatureExtractor.from_config({"feature_kind": "nope"})
