"""Mixup of training windows (the classic-augmentation arm of the augmentation study)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentio.training.augment import Mixup


class _Items(torch.utils.data.Dataset):
    song_ids = ["a", "b"]

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return {"input_values": np.full((4, 3), float(i), np.float32), "length": 2 + 2 * i,
                "labels": np.array([i, -i], np.float32)}


def test_mixup_blends_features_and_labels_alike():
    torch.manual_seed(0)
    mixed = Mixup(_Items(), "input_values", alpha=0.4)
    assert len(mixed) == 2 and mixed.song_ids == ["a", "b"]
    seen_blend = False
    for _ in range(20):
        item = mixed[0]
        w = float(item["input_values"][0, 0])  # share of item 1 in the blend
        assert 0 <= w <= 0.5 and np.allclose(item["input_values"], w)
        assert np.allclose(item["labels"], [w, -w])
        assert item["length"] == (4 if w > 0 else 2) or w == 0
        seen_blend |= 0 < w < 0.5
    assert seen_blend
    with pytest.raises(ValueError):
        Mixup(_Items(), "input_values", alpha=0)
    assert torch.equal(torch.as_tensor(Mixup(_Items(), "input_values", p=0.0)[1]["input_values"]),
                       torch.ones(4, 3))
