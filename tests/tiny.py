"""Tiny model configs shared by the tests (hidden 32, 2 layers: a forward pass takes milliseconds)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_COMMON = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, head_hidden_size=16)
TINY = {
    # 32 mel bins x 64 frames, patch 16, strides 10 -> 2 x 5 = 10 patches (+ CLS + distillation).
    "ast": dict(_COMMON, max_length=64, num_mel_bins=32),
    # conv hop 5*4 = 20 samples; layer norm, so the encoder also sees the padding mask.
    "wav2vec2": dict(
        _COMMON, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=4, feat_extract_norm="layer", do_stable_layer_norm=True, layerdrop=0.0,
    ),  # fmt: skip
    # 32 x 32 image, patch 8 -> 4 x 4 patches (+ CLS).
    "vit": dict(_COMMON, image_size=32, patch_size=8),
    # a HuBERT like MERT-95M (group norm, post-norm encoder), hop 20 samples
    "mert": dict(
        _COMMON, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=4, feat_extract_norm="group", do_stable_layer_norm=False, layerdrop=0.0,
        conv_bias=False, feat_proj_layer_norm=True,
    ),  # fmt: skip
    # HTSAT: 16 mel bins in a 64 x 64 image, two Swin stages (the CLAP test's tiny audio tower).
    "clap": dict(
        spec_size=64, num_mel_bins=16, patch_embeds_hidden_size=16, hidden_size=32, depths=[1, 1],
        num_attention_heads=[2, 2], num_hidden_layers=2, window_size=4, enable_fusion=False,
        head_hidden_size=16,
    ),  # fmt: skip
}


def tiny_inputs(name: str, batch: int = 3, seed: int = 0) -> torch.Tensor:
    """Random input of `batch` items for the tiny config of backbone `name`."""
    import torch

    g = torch.Generator().manual_seed(seed)
    shape = {"ast": (batch, 64, 32), "wav2vec2": (batch, 1600), "vit": (batch, 32, 32), "mert": (batch, 1600),
             "clap": (batch, 201, 16)}[name]
    return torch.randn(shape, generator=g)
