"""Tiny configs and inputs shared by the model tests (nothing is downloaded)."""

from __future__ import annotations

import pytest
import torch

from sentio.registration import register
from tests.tiny import TINY, tiny_inputs


@pytest.fixture(autouse=True, scope="session")
def auto_classes() -> None:
    """The model tests load saved models with transformers' Auto classes."""
    register()


@pytest.fixture
def tiny() -> dict:
    """Config overrides for a tiny model of each backbone."""
    return TINY


@pytest.fixture
def make_inputs():
    """make_inputs(name, batch=3, seed=0): random input for the tiny config of `name`."""
    return tiny_inputs


@pytest.fixture
def build_tiny(tiny):
    """build_tiny(name, **head): a tiny from-scratch model in eval mode."""
    from sentio.models import build_model

    def build(name: str, **head):
        return build_model(name, from_scratch=True, config_overrides=tiny[name], head_kwargs=head).eval()

    return build


@pytest.fixture(params=sorted(TINY))
def backbone(request) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
