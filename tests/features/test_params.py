"""Feature functions: parity with the reference extractors, windowing, formats, extractor round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentio.features.extractor import SentioFeatureExtractor
from sentio.features.params import (
    FbankParams,
    MelImageParams,
    WaveformParams,
    fbank_features,
    mel_db,
    mel_image_features,
    params_for,
    waveform_features,
)
from tests.conftest import write_audio

# Max abs difference allowed against the reference implementations (measured: AST ~1e-4 after
# normalisation, float32 torch vs float64 NumPy; Wav2Vec2 ~5e-7; ViT mel ~5e-5 dB).
pytestmark = pytest.mark.filterwarnings("ignore:At least one mel filter")

AST_TOL = 1e-3
W2V_TOL = 1e-5
VIT_DB_TOL = 1e-2


def music(seconds: float, sr: int, seed: int = 0, gain: float = 1.0) -> np.ndarray:
    """A chord with an amplitude envelope, plus noise: enough spectral detail for parity checks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63, 880.0)) / 4
    wave = 0.4 * chord * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) + 0.02 * rng.standard_normal(t.size)
    return (gain * wave).astype(np.float32)


@pytest.fixture(scope="module")
def ast_reference():
    from transformers import ASTFeatureExtractor

    return ASTFeatureExtractor


@pytest.mark.parametrize("max_length", [1024, 256])
@pytest.mark.parametrize("seconds", [25.3, 3.01, 10.2551])
def test_ast_matches_transformers(ast_reference, max_length, seconds):
    wave = music(seconds, 16000, seed=int(seconds))
    ref = ast_reference(max_length=max_length)
    out = fbank_features(wave, FbankParams(max_length=max_length))
    assert out["input_values"].shape[1:] == (max_length, 128)
    for k, start in enumerate(out["start"]):
        # The reference truncates to max_length frames: a window starting at s is AST(wave[s:]).
        s = int(round(start * 16000))
        expected = ref(wave[s:], sampling_rate=16000, return_tensors="np")["input_values"][0]
        assert np.abs(out["input_values"][k] - expected).max() < AST_TOL
        frames = 1 + (wave.size - s - 400) // 160
        assert out["length"][k] == min(max_length, frames)


def test_ast_padding_is_normalised_zero():
    p = FbankParams(max_length=512)
    out = fbank_features(music(3.0, 16000), p)
    n = int(out["length"][0])
    assert n == 1 + (48000 - 400) // 160 < 512
    # Padded frames are fbank zeros, normalised like the reference: (0 - mean) / (2 std).
    np.testing.assert_allclose(out["input_values"][0, n:], -p.mean / (2 * p.std), rtol=1e-6)


def test_ast_dataset_stats_and_tiny_clip():
    out = fbank_features(music(0.01, 16000), FbankParams(max_length=64, mean=-2.0, std=3.0))
    assert out["input_values"].shape == (1, 64, 128) and out["length"].tolist() == [1]
    np.testing.assert_allclose(out["input_values"][0, 1:], 2.0 / 6.0, rtol=1e-6)


@pytest.mark.parametrize("kind", ["waveform", "mel_image"])
def test_windowing_long_and_short(kind):
    p = params_for(kind)
    sr = p.sampling_rate
    out = p.compute(music(25.5, sr))
    # 10 s windows: two full ones, and the 5.5 s tail (> half a window) gets an end-aligned one.
    np.testing.assert_allclose(out["start"], [0.0, 10.0, 15.5], atol=1e-4)
    full = p.window_samples if kind == "waveform" else p.image_size
    assert out["length"].tolist() == [full] * 3
    assert p.compute(music(24.0, sr))["start"].tolist() == [0.0, 10.0]  # 4 s tail: dropped
    short = p.compute(music(3.0, sr))
    assert short[p.feature_name].shape == (1, *p.feature_shape)
    assert 0 < short["length"][0] < full


def test_ast_windowing_uses_frame_exact_windows():
    p = FbankParams(max_length=256)  # window = 255 * 160 + 400 samples = 2.575 s
    out = fbank_features(music(7.0, 16000), p)
    np.testing.assert_allclose(out["start"], [0.0, 2.575, 7.0 - 2.575], atol=1e-4)
    assert out["length"].tolist() == [256, 256, 256]


def test_wav2vec2_matches_transformers():
    from transformers import Wav2Vec2FeatureExtractor

    ref = Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    p = WaveformParams(window_seconds=4.0)
    wave = music(10.5, 16000)  # windows at 0, 4 and (end-aligned) 6.5 s
    out = waveform_features(wave, p)
    assert out["input_values"].shape == (3, 64000)
    for k, start in enumerate(out["start"]):
        s = int(round(start * 16000))
        expected = ref(wave[s : s + 64000], sampling_rate=16000, padding="max_length", max_length=64000,
                       return_tensors="np")["input_values"][0]
        assert np.abs(out["input_values"][k] - expected).max() < W2V_TOL
    short = waveform_features(music(1.5, 16000), p)
    assert short["length"].tolist() == [24000] and not short["input_values"][0, 24000:].any()
    real = short["input_values"][0, :24000]
    assert abs(real.mean()) < 1e-4 and abs(real.std() - 1) < 1e-3


def test_vit_matches_librosa_and_keeps_loudness():
    import librosa

    p = MelImageParams(window_seconds=3.0)
    segments = np.stack([music(3.0, p.sampling_rate, seed=s) for s in (1, 2)])
    ref = librosa.feature.melspectrogram(y=segments, sr=p.sampling_rate, n_fft=p.n_fft, hop_length=p.hop_length,
                                         n_mels=p.n_mels)
    ref_db = librosa.power_to_db(ref, ref=1.0, amin=1e-10, top_db=None)
    with torch.no_grad():
        ours = mel_db(torch.from_numpy(segments.astype(np.float32)), p).numpy()
    assert ours.shape == ref_db.shape == (2, p.n_mels, p.num_frames)
    assert np.abs(ours - ref_db).max() < VIT_DB_TOL

    # Final image: the same reference through scaling, bilinear resize and ViT normalisation.
    scaled = np.clip((ref_db[:1] - (p.ref_db - p.top_db)) / p.top_db, 0, 1)
    image = torch.nn.functional.interpolate(torch.from_numpy(scaled)[:, None], size=(224, 224), mode="bilinear",
                                            align_corners=False)[0, 0].numpy()
    out = mel_image_features(segments[0], p)
    assert out["pixel_values"].shape == (1, 224, 224)
    assert np.abs(out["pixel_values"][0] - (image - 0.5) / 0.5).max() < 1e-3
    assert -1.0 <= out["pixel_values"].min() and out["pixel_values"].max() <= 1.0
    # A fixed dB reference (not per-clip max): a 20 dB quieter copy gives a darker image.
    quiet = mel_image_features(segments[0] * 0.1, p)["pixel_values"]
    assert quiet.mean() < out["pixel_values"].mean() - 0.2


@pytest.mark.parametrize("kind,max_length", [("fbank", 300), ("waveform", None), ("mel_image", None)])
def test_formats_and_rates_give_same_shapes(tmp_path, kind, max_length):
    extra = {"max_length": max_length} if max_length else {"window_seconds": 5.0}
    ex = SentioFeatureExtractor(kind, **extra)
    shapes, lengths = set(), []
    cases = [("wav", 22050, 1), ("mp3", 48000, 2), ("flac", 8000, 1), ("ogg", 48000, 2), ("mp3", 22050, 1)]
    for i, (fmt, sr, ch) in enumerate(cases):
        path = write_audio(tmp_path / f"clip{i}.{fmt}", seconds=2.5, sr=sr, channels=ch, seed=i)
        out = ex(str(path), return_tensors="np")
        shapes.add(out[ex.feature_name].shape)
        lengths.append(int(out["length"][0]))
    assert shapes == {(1, *ex.params.feature_shape)}
    # Same 2.5 s everywhere; MP3 encoder delay/padding adds a few tens of ms at most.
    full = ex.params.feature_shape[0] if kind != "mel_image" else 224
    assert max(lengths) - min(lengths) <= 0.04 * full and max(lengths) < full


def test_extractor_round_trip_and_call(tmp_path):
    ex = SentioFeatureExtractor("fbank", max_length=256, mean=-3.5, std=4.0)
    ex.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").is_file()
    back = SentioFeatureExtractor.from_pretrained(tmp_path)
    assert back.params == ex.params and back.feature_kind == "fbank" and back.sampling_rate == 16000
    assert back.to_dict() == ex.to_dict()

    wave = music(6.0, 44100)
    pt = back(wave, sampling_rate=44100, return_tensors="pt")
    assert isinstance(pt["input_values"], torch.Tensor) and pt["input_values"].shape == (2, 256, 128)
    assert set(pt.keys()) == {"input_values", "length", "start"}
    # A stereo [channels, samples] array is averaged to mono.
    stereo = back(np.stack([wave, wave]), sampling_rate=44100, return_tensors="np")["input_values"]
    np.testing.assert_allclose(stereo, pt["input_values"].numpy(), atol=1e-5)

    vit = SentioFeatureExtractor("mel_image", window_seconds=5.0)
    vit.save_pretrained(tmp_path / "mel_image")
    again = SentioFeatureExtractor.from_pretrained(tmp_path / "mel_image")
    assert again.feature_name == "pixel_values" and again.sampling_rate == 22050 and again.window_seconds == 5.0


def test_bad_params_and_inputs():
    with pytest.raises(TypeError, match="n_fft"):
        params_for("fbank", n_fft=1024)
    with pytest.raises(ValueError, match="unknown feature kind"):
        SentioFeatureExtractor("mert")
    with pytest.raises(ValueError, match="empty"):
        fbank_features(np.zeros(0, np.float32))


def test_real_mp3_ast_parity(shared_data, ast_reference):
    from sentio.features.audio import load_audio

    wave = load_audio(shared_data / "audio" / "emomusic_2.mp3", 16000)
    out = fbank_features(wave)
    ref = ast_reference()(wave[int(round(out["start"][-1] * 16000)):], sampling_rate=16000, return_tensors="np")
    assert out["input_values"].shape[0] == 4
    assert np.abs(out["input_values"][-1] - ref["input_values"][0]).max() < AST_TOL
