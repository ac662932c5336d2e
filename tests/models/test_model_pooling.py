"""Pooling modes and padding-mask helpers, checked against numbers worked out by hand."""

from __future__ import annotations

import pytest
import torch

from sentio.models import pool_tokens
from sentio.models.masking import grid_token_mask, prepend_special_tokens, window_token_mask

# 2 clips, 1 special token + 3 sequence tokens, H = 2. Clip 0's last token is padding and holds
# values (+-100) that would dominate any pooling that leaked it.
HIDDEN = torch.tensor(
    [
        [[10.0, 10.0], [1.0, 2.0], [3.0, 4.0], [100.0, -100.0]],
        [[20.0, 20.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]],
    ]
)
MASK = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("mean", [[2.0, 3.0], [7.0, 8.0]]),
        ("sum", [[4.0, 6.0], [21.0, 24.0]]),
        ("max", [[3.0, 4.0], [9.0, 10.0]]),
        ("cls", [[10.0, 10.0], [20.0, 20.0]]),
    ],
)
def test_pooling_by_hand(mode, expected):
    assert torch.equal(pool_tokens(HIDDEN, MASK, mode, num_special=1), torch.tensor(expected))


def test_cls_dist_is_mean_of_first_two_tokens():
    # With 2 special tokens (CLS, distillation) the sequence is the last two tokens.
    pooled = pool_tokens(HIDDEN, MASK[:, :2], "cls_dist", num_special=2)
    assert torch.equal(pooled, torch.tensor([[5.5, 6.0], [12.5, 13.0]]))


def test_no_mask_means_all_tokens_real():
    pooled = pool_tokens(HIDDEN, None, "mean", num_special=1)
    assert torch.allclose(pooled[0], torch.tensor([104 / 3, -94 / 3]))


@pytest.mark.parametrize("mode", ["mean", "sum", "max"])
def test_padded_states_never_leak(mode):
    # Whatever the padded position holds (even inf/nan), the pooled value stays the same.
    reference = pool_tokens(HIDDEN, MASK, mode, num_special=1)
    for junk in (0.0, float("inf"), float("nan"), -1e30):
        hidden = HIDDEN.clone()
        hidden[0, 3] = junk
        assert torch.equal(pool_tokens(hidden, MASK, mode, num_special=1), reference)


def test_pooling_rejects_bad_mode_and_mask_shape():
    with pytest.raises(ValueError, match="pooling"):
        pool_tokens(HIDDEN, MASK, "median", num_special=1)
    with pytest.raises(ValueError, match="does not match"):
        pool_tokens(HIDDEN, MASK[:, :2], "mean", num_special=1)


def test_window_mask_keeps_only_windows_inside_real_frames():
    # 64 frames, 40 real; windows of 16 every 10 frames: [0,16) [10,26) [20,36) real, [30,46) [40,56) not.
    mask = torch.zeros(3, 64)
    mask[0, :40] = 1
    mask[1, :] = 1
    mask[2, :5] = 1  # shorter than one window: the first token is still kept
    tokens = window_token_mask(mask, kernel=16, stride=10, num_tokens=5)
    assert tokens.tolist() == [
        [True, True, True, False, False],
        [True, True, True, True, True],
        [True, False, False, False, False],
    ]


def test_window_mask_non_overlapping_and_errors():
    mask = torch.tensor([[1] * 20 + [0] * 12])
    assert window_token_mask(mask, 8, 8, 4).tolist() == [[True, True, False, False]]
    with pytest.raises(ValueError, match="windows"):
        window_token_mask(mask, 8, 8, 5)
    with pytest.raises(ValueError, match="batch"):
        window_token_mask(mask[0], 8, 8, 4)


def test_grid_and_special_tokens():
    columns = torch.tensor([[True, False, True]])
    assert grid_token_mask(columns, 2).tolist() == [[True, False, True, True, False, True]]
    assert prepend_special_tokens(columns, 2).tolist() == [[True, True, True, False, True]]
    assert prepend_special_tokens(columns, 0) is columns
