"""Padding masks -> token masks, shared by the backbones.

The collator gives a mask over input frames (AST), samples (Wav2Vec2) or image columns (ViT);
pooling and self-attention need a mask over the encoder's tokens. A token counts as real when its
whole receptive window lies inside real input: its output then cannot depend on the padding,
which is the convention Wav2Vec2 uses for its own feature frames (`_get_feat_extract_output_lengths`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def window_token_mask(frame_mask: torch.Tensor, kernel: int, stride: int, num_tokens: int) -> torch.Tensor:
    """[B, L] frame mask -> [B, num_tokens] bool mask of windows `[i*stride, i*stride+kernel)` that are all real.

    The first token of every row is kept even when the clip is shorter than one window, so that
    mean pooling and attention always have at least one real position.
    """
    if frame_mask.dim() != 2:
        raise ValueError(f"attention_mask must be [batch, length], got shape {tuple(frame_mask.shape)}")
    real = frame_mask.to(torch.float32).unsqueeze(1)
    # A window is real iff the mean of its mask is 1; 0.999 absorbs float rounding of the average.
    windows = F.avg_pool1d(real, kernel_size=kernel, stride=stride).squeeze(1) > 0.999
    if windows.shape[1] < num_tokens:
        raise ValueError(
            f"attention_mask of length {frame_mask.shape[1]} yields {windows.shape[1]} windows, "
            f"but the encoder has {num_tokens}"
        )
    windows = windows[:, :num_tokens].clone()
    windows[:, 0] = True
    return windows


def grid_token_mask(column_mask: torch.Tensor, num_rows: int) -> torch.Tensor:
    """[B, C] mask over grid columns (time) -> [B, num_rows*C] over a row-major flattened grid.

    Both AST (frequency-major, `conv(...).flatten(2)`) and ViT (rows = height = frequency) number
    their patches `row * C + column`, so every row repeats the same column mask.
    """
    return column_mask.repeat(1, num_rows)


def prepend_special_tokens(token_mask: torch.Tensor, num_special: int) -> torch.Tensor:
    """Mark the leading special tokens (CLS, distillation) as real for the encoder's attention mask."""
    if num_special == 0:
        return token_mask
    ones = torch.ones(token_mask.shape[0], num_special, dtype=token_mask.dtype, device=token_mask.device)
    return torch.cat([ones, token_mask], dim=1)


def conv_frame_geometry(kernels: Sequence[int], strides: Sequence[int]) -> tuple[int, int]:
    """(hop, receptive field) in input samples of a stack of 1-D convolutions (Wav2Vec2's and
    HuBERT's feature encoders): frame i sees samples [i * hop, i * hop + field)."""
    hop, field = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * hop
        hop *= stride
    return hop, field


def conv_frame_centers(num_frames: int, kernels: Sequence[int], strides: Sequence[int],
                       device: torch.device | None = None) -> torch.Tensor:
    """Centres (in input samples) of the frames of a 1-D convolution stack."""
    hop, field = conv_frame_geometry(kernels, strides)
    return torch.arange(num_frames, device=device, dtype=torch.float32) * hop + field / 2


def grid_time_tokens(tokens: torch.Tensor, token_mask: torch.Tensor | None, num_rows: int,
                     num_columns: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A row-major patch grid's tokens [B, rows * columns, H] -> one token per column (time) [B,
    columns, H], the mean over the rows (frequency), and the columns' mask [B, columns]."""
    batch, _, hidden = tokens.shape
    columns = tokens.reshape(batch, num_rows, num_columns, hidden).mean(dim=1)
    mask = None if token_mask is None else token_mask.reshape(batch, num_rows, num_columns)[:, 0]
    return columns, mask
