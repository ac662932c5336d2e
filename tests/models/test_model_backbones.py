"""Forward passes of the three backbones: shapes, loss, padding masks, checkpointing, registry."""

from __future__ import annotations

import pytest
import torch

from sentio.models import BACKBONES, build_model, get_backbone
from sentio.models.ast import ASTEmotionConfig


def test_forward_shapes_and_loss_iff_labels(backbone, build_tiny, make_inputs):
    model = build_tiny(backbone)
    inputs = make_inputs(backbone, batch=3)
    out = model(inputs)
    assert out.predictions.shape == (3, 2) and out.embedding.shape == (3, 32)
    assert out.loss is None
    assert (out.predictions.abs() < 1).all()
    labels = torch.tensor([[0.5, -0.5], [0.1, 0.2], [-0.9, 0.9]])
    out = model(inputs, labels=labels)
    assert out.loss is not None and out.loss.ndim == 0 and torch.isfinite(out.loss)


def test_training_step_reaches_encoder_and_head(backbone, build_tiny, make_inputs):
    model = build_tiny(backbone).train()
    out = model(make_inputs(backbone, batch=4), labels=torch.rand(4, 2) * 2 - 1)
    out.loss.backward()
    encoder = getattr(model, model.base_model_prefix)
    assert model.head.out_proj.weight.grad is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())


def test_from_scratch_gradients_are_balanced(backbone, build_tiny, make_inputs):
    # transformers zero-initialises AST's CLS/distillation tokens; from scratch that gave ~1e4 gradient norms.
    model = build_tiny(backbone).train()
    model(make_inputs(backbone, batch=4), labels=torch.rand(4, 2) * 2 - 1).loss.backward()
    total = torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm()
    assert total < 50


def test_gradient_checkpointing(backbone, build_tiny, make_inputs):
    model = build_tiny(backbone, final_dropout=0.0).train()
    if not model.supports_gradient_checkpointing:
        pytest.skip(f"{backbone} refuses activation checkpointing (train.py says so in one line)")
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing
    out = model(make_inputs(backbone, batch=2), labels=torch.zeros(2, 2))
    out.loss.backward()
    assert model.head.out_proj.weight.grad is not None


def test_hidden_states_on_request(backbone, build_tiny, make_inputs):
    out = build_tiny(backbone)(make_inputs(backbone, batch=2), output_hidden_states=True)
    assert out.hidden_states is not None and len(out.hidden_states) >= 2


def _pad_differently(x: torch.Tensor, real: int, fills: list[float]) -> torch.Tensor:
    """Copies of x[0] whose positions from `real` on (dim 1, frames/samples/columns) hold other values."""
    rows = []
    for fill in fills:
        row = x[0].clone()
        row[real:] = fill
        rows.append(row)
    return torch.stack(rows)


@pytest.mark.parametrize("pooling", ["mean", "max", "cls_dist"])
def test_ast_prediction_ignores_padding_content(build_tiny, make_inputs, pooling):
    # 40 real frames of 64; the padding holds zeros, noise-level values or the extractor's pad value.
    model = build_tiny("ast", pooling=pooling)
    x = _pad_differently(make_inputs("ast", batch=1), 40, [0.0, 3.0, 0.4670])
    mask = torch.zeros(3, 64)
    mask[:, :40] = 1
    with torch.no_grad():
        masked = model(x, attention_mask=mask).predictions
        unmasked = model(x).predictions
    torch.testing.assert_close(masked, masked[:1].expand(3, -1), atol=1e-5, rtol=0)
    assert not torch.allclose(unmasked[0], unmasked[1], atol=1e-4)  # the test can fail


def test_vit_prediction_ignores_padding_columns(build_tiny, make_inputs):
    model = build_tiny("vit", pooling="mean")
    x = make_inputs("vit", batch=1).expand(3, -1, -1).clone()
    x[1, :, 16:] = 5.0
    x[2, :, 16:] = -1.0
    mask = torch.zeros(3, 32)
    mask[:, :16] = 1
    with torch.no_grad():
        masked = model(x, attention_mask=mask).predictions
    torch.testing.assert_close(masked, masked[:1].expand(3, -1), atol=1e-5, rtol=0)


def test_wav2vec2_prediction_ignores_amount_of_zero_padding(build_tiny, make_inputs):
    # Layer-norm Wav2Vec2 with the mask: the same 1000-sample clip alone, padded to 1600 and to 2400.
    model = build_tiny("wav2vec2")
    clip = make_inputs("wav2vec2", batch=1)[:, :1000]
    preds = []
    with torch.no_grad():
        for total in (1000, 1600, 2400):
            x = torch.nn.functional.pad(clip, (0, total - 1000))
            mask = (torch.arange(total) < 1000).long().unsqueeze(0)
            preds.append(model(x, attention_mask=mask).predictions)
    torch.testing.assert_close(preds[1], preds[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(preds[2], preds[0], atol=1e-5, rtol=0)


def test_ast_token_order_matches_patch_embeddings(build_tiny):
    # Frames from 40 on are 1, the rest 0: a patch touching them differs from the bare conv bias.
    # The token mask must mark exactly the patches that saw only real frames, in ASTEmbeddings' order.
    model = build_tiny("ast")
    x = torch.zeros(1, 64, 32)
    x[:, 40:] = 1.0
    mask = (torch.arange(64) < 40).long().unsqueeze(0)
    patches = model.audio_spectrogram_transformer.embeddings.patch_embeddings(x)[0]
    bias = model.audio_spectrogram_transformer.embeddings.patch_embeddings.projection.bias
    saw_only_real = torch.isclose(patches, bias.expand_as(patches)).all(dim=-1)
    assert torch.equal(model._token_mask(x, mask)[0], saw_only_real)


def test_vit_token_order_matches_patch_embeddings(build_tiny):
    model = build_tiny("vit")
    x = torch.zeros(1, 3, 32, 32)
    x[..., 20:] = 1.0  # columns 20.. padded: patch columns 0, 1 real; 2 (16..23) and 3 not
    mask = (torch.arange(32) < 20).long().unsqueeze(0)
    patches = model.vit.embeddings.patch_embeddings(x)[0]
    bias = model.vit.embeddings.patch_embeddings.projection.bias
    saw_only_real = torch.isclose(patches, bias.expand_as(patches)).all(dim=-1)
    assert torch.equal(model._token_mask(x, mask)[0], saw_only_real)


def test_wav2vec2_pooling_mask_uses_model_frames_and_group_norm_encoder_sees_no_mask(tiny):
    group_norm = {**tiny["wav2vec2"], "feat_extract_norm": "group", "do_stable_layer_norm": False}
    model = build_model("wav2vec2", from_scratch=True, config_overrides=group_norm).eval()
    mask = (torch.arange(1600) < 1000).long().unsqueeze(0)
    tokens = model._token_mask(torch.zeros(1, 1600), mask)
    assert tokens.shape == (1, 79) and tokens.sum().item() == int(model._get_feat_extract_output_lengths(1000))
    seen = {}
    model.wav2vec2.register_forward_pre_hook(lambda m, a, kw: seen.update(kw), with_kwargs=True)
    with torch.no_grad():
        with_mask = model(torch.randn(1, 1600), attention_mask=mask).predictions
    assert seen["attention_mask"] is None
    with torch.no_grad():
        without = model(torch.randn(1, 1600)).predictions
    assert not torch.allclose(with_mask, without)  # pooling still used the mask


def test_vit_accepts_one_or_three_channels(build_tiny, make_inputs):
    model = build_tiny("vit")
    image = make_inputs("vit", batch=2)
    with torch.no_grad():
        a = model(image).predictions
        b = model(image.unsqueeze(1)).predictions
        c = model(image.unsqueeze(1).repeat(1, 3, 1, 1)).predictions
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


def test_bad_head_settings_fail_early(tiny):
    with pytest.raises(ValueError, match="special token"):
        build_model("wav2vec2", from_scratch=True, config_overrides=tiny["wav2vec2"], head_kwargs={"pooling": "cls"})
    with pytest.raises(Exception, match="pooling"):
        ASTEmotionConfig(pooling="median")
    with pytest.raises(Exception, match="loss"):
        ASTEmotionConfig(loss="l1")


def test_wav2vec2_feature_encoder_frozen_only_for_pretrained_weights(tiny):
    scratch = build_model("wav2vec2", from_scratch=True, config_overrides=tiny["wav2vec2"])
    assert all(p.requires_grad for p in scratch.wav2vec2.feature_extractor.parameters())
    config = scratch.config.__class__(**{**scratch.config.to_dict(), "init_checkpoint": "some/checkpoint"})
    pretrained = type(scratch)(config)
    assert not any(p.requires_grad for p in pretrained.wav2vec2.feature_extractor.parameters())


def test_registry():
    assert list(BACKBONES) == ["ast", "wav2vec2", "vit", "mert", "clap"]
    with pytest.raises(ValueError, match="ast, wav2vec2, vit, mert, clap") as err:
        get_backbone("bert")
    assert "\n" not in str(err.value)
    for backbone in BACKBONES.values():
        full = backbone.fresh_config()
        # the base-size transformers, and CLAP's 4-stage HTSAT (laion/larger_clap_music: 1024 wide)
        expected = (1024, 4) if backbone.name == "clap" else (768, 12)
        assert (full.hidden_size, full.num_hidden_layers) == expected
        assert backbone.input_name in backbone.model_class.forward.__code__.co_varnames
        assert backbone.config_class.model_type == f"sentio-{backbone.name}"


def test_no_backbone_name_is_compared_outside_the_model_package():
    """A backbone answers for itself: outside src/sentio/models/ no code names one in quotes, except
    as a command-line default and in the table of kind names older runs saved (a file format fact)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "src" / "sentio"
    names = "|".join(BACKBONES)
    quoted = re.compile(rf"[\"']({names})[\"']")
    offending = [f"{path.relative_to(root)}:{number}: {line.strip()}"
                 for path in sorted(root.rglob("*.py")) if "models" not in path.relative_to(root).parts[:1]
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if quoted.search(line) and "default=" not in line and not line.startswith("LEGACY_KINDS")]
    assert offending == []


@pytest.mark.parametrize("name", list(BACKBONES))
def test_demo_configs_build_and_run(name):
    spec = get_backbone(name)
    model = build_model(name, from_scratch=True, config_overrides=spec.demo_config).eval()
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 5e6
    x = {"ast": torch.randn(2, 256, 128), "wav2vec2": torch.randn(2, 16000), "vit": torch.randn(2, 224, 224),
         "mert": torch.randn(2, 16000), "clap": torch.randn(2, 501, 32)}[name]  # a new backbone fails here, never skipped
    with torch.no_grad():
        assert model(x).predictions.shape == (2, 2)


def test_registry_agrees_with_feature_params():
    from sentio.features import params as features

    for backbone in BACKBONES.values():
        names = set(features.param_names(backbone.feature_kind))
        assert set(backbone.demo_features) | set(backbone.feature_defaults) <= names
        assert backbone.default_params.kind == backbone.feature_kind
        assert backbone.input_name == backbone.default_params.feature_name
        compact = backbone.fresh_config(backbone.demo_config)
        extractor = backbone.feature_extractor(compact, compact=True)
        assert extractor.sampling_rate == backbone.sampling_rate
        assert extractor.params.is_spectrogram == backbone.is_spectrogram
        if backbone.legacy_feature_kind:  # older runs saved this name; it still means the same features
            assert features.canonical_kind(backbone.legacy_feature_kind) == backbone.feature_kind
