"""Benchmark protocols (`--protocol NAME`): one module each, registered here by name.

A protocol fixes the split, the label normalisation, the scored windows and the headline metric,
so Sentio's numbers sit beside the field's published tables (published.csv, with sources).
"""

from __future__ import annotations

from ...errors import ArgumentError
from .base import (
    Assignment,
    BenchmarkProtocol,
    PublishedResult,
    protocol_notes,
    published_results,
    to_z,
    z_score_stats,
)
from .marble_emo import MarbleEmo
from .mediaeval_2015 import MediaEval2015
from .music2emo import Music2Emo

PROTOCOLS: dict[str, BenchmarkProtocol] = {p.name: p for p in (MarbleEmo(), MediaEval2015(), Music2Emo())}


def get_protocol(name: str) -> BenchmarkProtocol:
    """The protocol called `name`; one line naming the known ones otherwise."""
    if name not in PROTOCOLS:
        raise ArgumentError(f"--protocol {name!r} is not a protocol Sentio knows; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


__all__ = ["PROTOCOLS", "Assignment", "BenchmarkProtocol", "PublishedResult", "get_protocol", "protocol_notes", "published_results",
           "to_z", "z_score_stats"]
