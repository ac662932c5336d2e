"""CLAP without remote code: a tiny checkpoint in the exact on-disk format of a CLAP repo (the
whole ClapModel, text tower included, and the processor's preprocessor_config.json) loads its
audio tower strictly; features come from transformers' own ClapFeatureExtractor; tokens keep time
order, so a 2 Hz target works."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig

import sentio.models  # noqa: F401  (registers the Auto classes)
from sentio.errors import CheckpointError
from sentio.models import build_model, get_backbone
from sentio.models.clap import ClapMelParams, _time_major

# 16 mel bins in a 64 x 64 image (freq_ratio 4: up to 256 frames, 2.55 s at 10 ms), patch 4 -> a
# 16 x 16 grid, two stages -> 8 x 8 tokens; a 1-layer text tower.
TINY_AUDIO = dict(
    spec_size=64, num_mel_bins=16, patch_embeds_hidden_size=16, hidden_size=32, depths=[1, 1],
    num_attention_heads=[2, 2], num_hidden_layers=2, window_size=4, enable_fusion=False,
)  # fmt: skip
TINY_TEXT = dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                 max_position_embeddings=40)
# preprocessor_config.json as a CLAP repo ships it (ClapProcessor's feature extractor), at tiny sizes.
PREPROCESSOR = {
    "chunk_length_s": 2, "feature_extractor_type": "ClapFeatureExtractor", "feature_size": 16,
    "fft_window_size": 1024, "frequency_max": 14000, "frequency_min": 50, "hop_length": 480, "max_length_s": 2,
    "n_fft": 1024, "nb_frequency_bins": 513, "nb_max_frames": 200, "nb_max_samples": 96000, "padding": "repeatpad",
    "padding_side": "right", "padding_value": 0.0, "processor_class": "ClapProcessor", "return_attention_mask": False,
    "sampling_rate": 48000, "top_db": None, "truncation": "rand_trunc",
}  # fmt: skip
IGNORED = ("text_model.", "text_projection.", "audio_projection.", "logit_scale_a", "logit_scale_t")


def write_clap_checkpoint(folder: Path, **audio) -> ClapModel:
    """A tiny CLAP repo: ClapModel's config.json (audio and text sub-configs), model.safetensors of
    the whole ClapModel, and the processor's preprocessor_config.json."""
    torch.manual_seed(3)
    config = ClapConfig(audio_config=ClapAudioConfig(**{**TINY_AUDIO, **audio}).to_dict(),
                        text_config=ClapTextConfig(**TINY_TEXT).to_dict(), projection_dim=8)
    reference = ClapModel(config).eval()
    reference.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR, indent=2))
    return reference


@pytest.fixture
def checkpoint(tmp_path) -> tuple[Path, ClapModel]:
    folder = tmp_path / "clap"
    return folder, write_clap_checkpoint(folder)


def test_real_format_is_a_whole_clap_model(checkpoint):
    folder, _ = checkpoint
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "clap" and "audio_config" in config and "text_config" in config
    keys = load_file(folder / "model.safetensors").keys()
    assert any(k.startswith("text_model.") for k in keys) and any(k.startswith("audio_model.audio_encoder.") for k in keys)


def test_audio_tower_loads_strictly_and_the_text_tower_is_ignored(checkpoint, caplog):
    folder, reference = checkpoint
    with caplog.at_level(logging.INFO):
        model = build_model("clap", checkpoint=str(folder)).eval()
    assert model.config.model_type == "sentio-clap" and model.config.num_hidden_layers == 2
    assert "Dropped" not in caplog.text  # no unexpected key: the ignored ones are ignored by name
    saved = load_file(folder / "model.safetensors")
    audio = {k: v for k, v in saved.items() if k.startswith("audio_model.")}
    assert set(saved) - set(audio) and all(k.startswith(IGNORED) for k in set(saved) - set(audio))
    state = model.state_dict()
    assert set(audio) <= set(state)  # every audio-tower weight has its place ...
    assert all(torch.equal(state[k], v) for k, v in audio.items())  # ... and was loaded
    encoder_keys = {k for k in state if not k.startswith(("head.", "layer_weights"))}
    assert encoder_keys == set(audio)  # nothing of the encoder left to random initialisation
    # the same audio tower as CLAP's own: equal last hidden states
    x = torch.randn(2, 1, 201, 16)
    with torch.no_grad():
        ours = model.audio_model(input_features=x).last_hidden_state
        theirs = reference.audio_model(input_features=x).last_hidden_state
    torch.testing.assert_close(ours, theirs)
    # the checkpoint's own feature settings reach the features
    extractor = get_backbone("clap").feature_extractor(model.config)
    params = extractor.params
    assert isinstance(params, ClapMelParams) and params.window_seconds == 2 and params.feature_size == 16
    assert params.sampling_rate == 48000 and params.clap_truncation == "rand_trunc" and params.frequency_min == 50


def test_a_checkpoint_missing_an_audio_weight_is_refused(checkpoint, tmp_path):
    from safetensors.torch import save_file

    folder, _ = checkpoint
    weights = load_file(folder / "model.safetensors")
    dropped = next(k for k in weights if k.startswith("audio_model.audio_encoder.layers."))
    save_file({k: v for k, v in weights.items() if k != dropped}, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="lacks 1 clap encoder weight"):
        build_model("clap", checkpoint=str(folder))


def test_features_are_clap_feature_extractor_output(checkpoint):
    folder, _ = checkpoint
    model = build_model("clap", checkpoint=str(folder))
    params = get_backbone("clap").feature_extractor(model.config).params
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal(48000 * 11 // 2)).astype(np.float32)  # 5.5 s: windows at 0, 2 s and the end
    out = params.compute(wave)
    assert out["input_values"].shape == (3, 201, 16) and list(out["start"]) == [0.0, 2.0, 3.5]
    reference = ClapFeatureExtractor.from_pretrained(folder)
    for i, start in enumerate(out["start"]):
        clip = wave[int(start * 48000): int(start * 48000) + 96000]
        expected = reference(clip, sampling_rate=48000, return_tensors="np")["input_features"][0, 0]
        np.testing.assert_allclose(out["input_values"][i], expected, rtol=0, atol=1e-5)
    short = params.compute(wave[:48000])  # 1 s: CLAP's repeatpad fills the window, length says what was audio
    assert short["input_values"].shape == (1, 201, 16) and short["length"].tolist() == [101]
    np.testing.assert_allclose(short["input_values"][0], reference(wave[:48000], sampling_rate=48000,
                                                                   return_tensors="np")["input_features"][0, 0],
                               atol=1e-5)


def test_tokens_keep_time_order(checkpoint):
    """A ramp over frames through CLAP's own mel-to-image reshape, pooled to each stage's grid and
    regrouped as the model does, gives time tokens in order whose values are the centres the
    model places them at."""
    folder, _ = checkpoint
    model = build_model("clap", checkpoint=str(folder)).eval()
    frames = 201
    ramp = torch.arange(frames, dtype=torch.float32)[None, None, :, None].expand(1, 1, frames, 16)
    image = model.audio_model.audio_encoder.reshape_mel2img(ramp)  # [1, 1, 64, 64]
    model._frames = frames
    for side in (16, 8):  # the first and the last stage's grids
        grid = torch.nn.functional.avg_pool2d(image, image.shape[-1] // side)
        tokens = _time_major(grid, model.freq_ratio)
        mean, _, centres = model._time_tokens(tokens, None)
        values = mean[0, :, 0]
        assert torch.all(values[1:] > values[:-1])
        torch.testing.assert_close(values, centres, atol=0.6, rtol=0)


@pytest.mark.parametrize("layer", ["last", "weighted", 1])
@pytest.mark.parametrize("target", ["static", "dynamic"])
def test_forward_backward_every_layer_and_target(checkpoint, layer, target):
    folder, _ = checkpoint
    model = build_model("clap", checkpoint=str(folder), head_kwargs={"layer": layer, "target": target})
    model.config.input_step_seconds = 0.01
    x = torch.randn(3, 201, 16)
    frames = torch.randn(3, 4, 2).clamp(-1, 1) if target == "dynamic" else None
    out = model(input_values=x, attention_mask=torch.ones(3, 201), labels=torch.zeros(3, 2), frame_labels=frames,
                output_layer_embeddings=True)
    assert out.predictions.shape == (3, 2) and torch.isfinite(out.loss)
    assert out.layer_embeddings.shape[:2] == (3, 3)  # patch embedding + 2 stages
    if target == "dynamic":
        assert out.frame_predictions.shape == (3, 4, 2) and bool(out.frame_mask.all())  # 2 s: four half-seconds
    out.loss.backward()
    assert model.head.out_proj.weight.grad is not None
    assert model.audio_model.audio_encoder.patch_embed.proj.weight.grad is not None


def test_run_round_trip_and_probe_freezes_the_tower(checkpoint, tmp_path):
    from transformers import AutoModel

    folder, _ = checkpoint
    model = build_model("clap", checkpoint=str(folder), head_kwargs={"probe": True, "layer": "weighted"}).eval()
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("audio_model."))
    model.save_pretrained(tmp_path / "run")
    again = AutoModel.from_pretrained(tmp_path / "run").eval()
    x = torch.randn(2, 201, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x).predictions, again(x).predictions)
    resumed = build_model("clap", checkpoint=str(tmp_path / "run"))  # a Sentio run keeps its feature settings
    assert resumed.config.clap_features == model.config.clap_features


@pytest.mark.slow
def test_train_cli_probe_with_a_2hz_target(tiny_corpus, tmp_path):
    """train.py --model clap end to end: CLAP features cached, the frozen tower's embeddings cached,
    a 2 Hz head trained, the run saved with CLAP's feature settings."""
    from tests.helpers import run_python

    folder = tmp_path / "clap"
    write_clap_checkpoint(folder)
    out = tmp_path / "run"
    result = run_python(["train.py", "--model", "clap", "--checkpoint", str(folder), "--probe", "--target", "dynamic",
                         "--demo", "--demo_dir", str(tiny_corpus), "--demo_num_clips", "16", "--demo_seed", "5",
                         "--epochs", "1", "--per_device_train_batch_size", "4", "--output_dir", str(out),
                         "--cache_dir", str(tmp_path / "cache"), "--report_to", "none", "--disable_tqdm", "true"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "clap_mel features computed" in result.stderr and "probe embeddings" in result.stderr
    results = json.loads((out / "all_results.json").read_text())
    assert np.isfinite(results["test_ccc_mean"]) and results["test_num_frames"] > 0
    preprocessor = json.loads((out / "preprocessor_config.json").read_text())
    assert preprocessor["feature_kind"] == "clap_mel" and preprocessor["sampling_rate"] == 48000
    assert preprocessor["window_seconds"] == 2 and preprocessor["clap_padding"] == "repeatpad"
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "sentio-clap" and config["probe"] and config["target"] == "dynamic"
