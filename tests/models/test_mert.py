"""MERT without remote code: tiny checkpoints written in MERT's exact on-disk format load strictly
into transformers' HubertModel and give the hidden states that were written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, HubertConfig, HubertModel

from sentio.errors import CheckpointError
from sentio.models import build_model, get_backbone
from sentio.choices import LAYER_WEIGHTED
from tests.tiny import TINY

TINY_HUBERT = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
    conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4,
    conv_bias=False, feat_proj_layer_norm=True, mask_time_prob=0.05,
)  # fmt: skip
# What MERT's Hub config.json carries beyond a HubertConfig (m-a-p/MERT-v1-95M).
MERT_KEYS = dict(
    model_type="mert_model", architectures=["MERTModel"],
    auto_map={"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
    feature_extractor_cqt=False, feature_extractor_cqt_bins=336, deepnorm=False, attention_relax=-1.0,
    sample_rate=24000,
)  # fmt: skip
PREPROCESSOR = {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                "padding_side": "right", "padding_value": 0, "return_attention_mask": True, "sampling_rate": 24000}


def write_mert_checkpoint(folder: Path, stable: bool, **extra) -> HubertModel:
    """A tiny MERT-v1 checkpoint as m-a-p publishes them: MERT's config.json, pytorch_model.bin with
    unprefixed keys and the old weight-norm names, a 24 kHz preprocessor config, and the remote
    code file (which must never be imported). Returns the model whose weights were written."""
    torch.manual_seed(1)
    norm = dict(do_stable_layer_norm=stable, feat_extract_norm="layer" if stable else "group")
    reference = HubertModel(HubertConfig(**TINY_HUBERT, **norm)).eval()
    old_names = {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                    "weight_v"): v
                 for k, v in reference.state_dict().items()}
    assert any(k.endswith("weight_g") for k in old_names)
    folder.mkdir(parents=True)
    torch.save(old_names, folder / "pytorch_model.bin")
    config = {**reference.config.to_dict(), **MERT_KEYS, **extra}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR))
    (folder / "modeling_MERT.py").write_text("raise RuntimeError('remote code was executed')\n")
    return reference


@pytest.mark.parametrize("stable", [False, True], ids=["95M-style", "330M-style"])
def test_mert_checkpoint_loads_strictly_into_hubert(tmp_path, stable):
    reference = write_mert_checkpoint(tmp_path / "mert", stable)
    model = build_model("mert", checkpoint=str(tmp_path / "mert")).eval()
    assert type(model.hubert) is HubertModel and model.config.model_type == "sentio-mert"
    written, loaded = reference.state_dict(), model.hubert.state_dict()
    assert set(loaded) == set(written)  # nothing missing, nothing extra
    for name, tensor in written.items():
        assert torch.equal(loaded[name], tensor), name
    x = torch.randn(2, 2400)
    with torch.no_grad():
        expected = reference(x, output_hidden_states=True)
        out = model(x, output_layer_embeddings=True, output_hidden_states=True)
    assert len(out.hidden_states) == len(expected.hidden_states) == 3
    for ours, theirs in zip(out.hidden_states, expected.hidden_states):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    # The last layer the head reads is MERT's output: after the final layer norm of a stable-layer-norm
    # encoder (transformers records its last hidden state before it), the same state otherwise.
    torch.testing.assert_close(out.layer_embeddings[:, -1], expected.last_hidden_state.mean(dim=1))
    if stable:
        assert not torch.allclose(expected.hidden_states[-1], expected.last_hidden_state)
    assert model.config.layer == LAYER_WEIGHTED and out.layer_embeddings.shape == (2, 3, 32)


def test_mert_features_follow_the_variant(tmp_path):
    backbone = get_backbone("mert")
    for stable, normalise in ((False, True), (True, False)):
        write_mert_checkpoint(tmp_path / str(stable), stable)
        model = build_model("mert", checkpoint=str(tmp_path / str(stable)))
        extractor = backbone.feature_extractor(model.config)
        assert (extractor.feature_kind, extractor.sampling_rate, extractor.window_seconds) == ("waveform", 24000, 5.0)
        assert extractor.do_normalize is normalise  # MARBLE: the 95M model normalised, the 330M one raw


@pytest.mark.parametrize("key", ["feature_extractor_cqt", "deepnorm"])
def test_unsupported_mert_variants_are_refused_in_one_line(tmp_path, key):
    write_mert_checkpoint(tmp_path / "mert", stable=False, **{key: True})
    with pytest.raises(CheckpointError) as err:
        build_model("mert", checkpoint=str(tmp_path / "mert"))
    message = str(err.value)
    assert f"MERT with {key} is not supported" in message and "\n" not in message


def test_other_checkpoints_are_not_taken_for_mert(tmp_path):
    build_model("vit", from_scratch=True, config_overrides=dict(hidden_size=32, num_hidden_layers=1,
                num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8)).save_pretrained(tmp_path / "v")
    with pytest.raises(CheckpointError, match="Sentio vit model, not mert"):
        build_model("mert", checkpoint=str(tmp_path / "v"))


def test_a_trained_mert_run_round_trips_through_automodel(tmp_path):
    write_mert_checkpoint(tmp_path / "mert", stable=True)
    model = build_model("mert", checkpoint=str(tmp_path / "mert"), head_kwargs={"layer": 1}).eval()
    model.save_pretrained(tmp_path / "run")
    again = AutoModel.from_pretrained(tmp_path / "run").eval()
    assert type(again) is type(model) and again.config.layer == 1
    x = torch.randn(3, 2000)
    with torch.no_grad():
        torch.testing.assert_close(again(x).predictions, model(x).predictions)
        # layer 1 means hidden state 1, pooled over the real frames
        out = model(x, output_layer_embeddings=True)
        torch.testing.assert_close(out.embedding, out.layer_embeddings[:, 1])


def test_weighted_layers_learn_their_weights(tmp_path):
    write_mert_checkpoint(tmp_path / "mert", stable=False)
    model = build_model("mert", checkpoint=str(tmp_path / "mert")).train()
    out = model(torch.randn(4, 2400), labels=torch.rand(4, 2) * 2 - 1)
    out.loss.backward()
    assert model.layer_weights.grad is not None and model.layer_weights.grad.abs().sum() > 0
    with torch.no_grad():  # equal weights at first: the combination is the mean of the pooled layers
        torch.testing.assert_close(out.embedding, out.layer_embeddings.mean(dim=1))


def test_compact_demo_mert_trains_from_scratch():
    backbone = get_backbone("mert")
    model = build_model("mert", from_scratch=True, config_overrides=backbone.demo_config).eval()
    extractor = backbone.feature_extractor(model.config, compact=True)
    assert extractor.window_seconds == 4.0 and extractor.do_normalize  # from scratch: normalised waveforms
    assert 1e6 < model.num_parameters() < 5e6
    with torch.no_grad():
        assert model(torch.randn(2, 24000)).predictions.shape == (2, 2)


@pytest.mark.parametrize("name", ["mert", "wav2vec2"])
def test_a_head_reading_inner_layers_trains_without_layerdrop(name):
    """LayerDrop (MERT-95M and wav2vec2-base ship it) drops hidden states in training: with a
    weighted or indexed layer the head would get fewer states than it has weights for."""
    torch.manual_seed(0)
    for layer, kept in (("weighted", 0.0), (1, 0.0), ("last", 0.9)):
        model = build_model(name, from_scratch=True, config_overrides={**TINY[name], "layerdrop": 0.9},
                            head_kwargs={"layer": layer}).train()
        assert model.config.layerdrop == kept
        out = model(torch.randn(2, 1600), labels=torch.zeros(2, 2))  # would skip most layers at 0.9
        assert torch.isfinite(out.loss)
