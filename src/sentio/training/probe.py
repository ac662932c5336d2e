"""Probe mode: a frozen encoder runs once over every window; only the head trains (MARBLE's recipe).

Per window, every hidden state of the encoder is pooled over the real tokens and stored as
`layer_embeddings` [layers, hidden], with `Dataset.map()`, cached on disk beside the features.
The key covers the features (their cache key), the pooling and a fingerprint of the encoder's
weights (so a checkpoint, a fine-tuned run or a seed-fixed random encoder each get their own
cache), not the head: a second probe run with other head settings (--layer, hidden size, ...) does
no encoder pass. Labels and splits are attached after loading, as for the features.

The saved run is a whole model (frozen encoder + head): on raw audio it computes the same pooled
layers itself, so predict.py, evaluate.py and distill.py take it like any other run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from typing import Any, Sequence

import numpy as np
import torch
from datasets import Array2D, Array3D, Dataset, Features, Value

from ..features.cache_store import build_once
from ..features.datasets import TARGET_COLUMNS, EmotionCollator, stack_targets
from ..features.cache import MARKER, FeatureReport, is_complete
from ..features.extractor import SentioFeatureExtractor
from ..inference.runner import TorchRunner

logger = logging.getLogger(__name__)
EMBEDDING_VERSION = "1"  # bump when the pooled values change for the same encoder and features
INPUT_NAME = "layer_embeddings"
_CHEAP = ["song_id", "clip", "window", "start", "length"]


def encoder_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of the encoder's weights (everything but the head and the layer weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith(("head.", "layer_weights")):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def embedding_schema(shape: tuple[int, ...]) -> Features:
    """[layers, hidden], or [layers, frames, hidden] for a dynamic target (a frame over padding: NaN)."""
    column = Array2D(shape, "float32") if len(shape) == 2 else Array3D(shape, "float32")
    return Features({"song_id": Value("string"), "clip": Value("int32"), "window": Value("int32"),
                     "start": Value("float32"), "length": Value("int32"), INPUT_NAME: column})


def _embed_batch(batch: dict[str, list], runner: TorchRunner, collate: EmotionCollator) -> dict[str, Any]:
    name = collate.feature_name
    items = [{name: f, "length": n} for f, n in zip(batch[name], batch["length"])]
    out = runner(collate(items))[INPUT_NAME]
    return {**{k: batch[k] for k in _CHEAP}, INPUT_NAME: out}


def _compute(features: Dataset, model: torch.nn.Module, extractor: SentioFeatureExtractor, directory: str,
             key: str, batch_size: int) -> None:
    name = extractor.feature_name
    runner = TorchRunner(model, outputs=(INPUT_NAME,), forward_kwargs={"output_layer_embeddings": True})
    collate = EmotionCollator.for_extractor(extractor)
    source = features.select_columns([*_CHEAP, name]).with_format("numpy")
    shape = runner(collate([source[0]]))[INPUT_NAME].shape[1:]  # one window tells the embedding's shape
    source.map(
        _embed_batch,
        batched=True,
        batch_size=batch_size,
        fn_kwargs={"runner": runner, "collate": collate},
        remove_columns=source.column_names,
        features=embedding_schema(tuple(shape)),
        cache_file_name=os.path.join(directory, "embeddings.arrow"),
        load_from_cache_file=False,
        new_fingerprint=key[:32],
        desc="probe: encoder pass",
    )
    marker = {"key": key, "files": ["embeddings.arrow"], "windows": len(features), "shape": list(shape)}
    with open(os.path.join(directory, MARKER), "w") as fh:
        json.dump(marker, fh, indent=2)


def _rows_digest(features: Dataset) -> str:
    """Which windows of the feature cache `features` holds (song id and window index): one feature
    cache serves manifests that keep different rows of it (a protocol's first 30 s, song groups
    merged after a feature pass over every copy), and each selection has its own embeddings."""
    rows = features.select_columns(["song_id", "window"]).with_format("arrow")[:]
    digest = hashlib.sha256("\n".join(map(str, rows["song_id"].to_pylist())).encode())
    digest.update(np.asarray(rows["window"].to_numpy(), np.int64).tobytes())
    return digest.hexdigest()


def probe_embeddings(features: Dataset, feature_report: FeatureReport, model: torch.nn.Module,
                     extractor: SentioFeatureExtractor, cache_dir: str | os.PathLike,
                     batch_size: int = 32) -> tuple[Dataset, dict[str, Any]]:
    """`features` with the feature column replaced by cached `layer_embeddings` (labels and split
    kept), and a report: cache folder, whether it was reused, seconds."""
    t0 = time.perf_counter()
    blob = {"version": EMBEDDING_VERSION, "features": os.path.basename(os.path.normpath(feature_report.cache_dir)),
            "pooling": model.config.pooling, "target": model.config.target, "encoder": encoder_fingerprint(model),
            "rows": _rows_digest(features)}
    key = hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()
    directory = os.path.join(os.fspath(cache_dir), f"embeddings-{key[:16]}")
    reused = build_once(directory, is_complete, lambda tmp: _compute(features, model, extractor, str(tmp), key,
                                                                     batch_size))
    embedded = Dataset.from_file(os.path.join(directory, "embeddings.arrow"), in_memory=False)
    if len(embedded) != len(features):
        raise RuntimeError(f"{directory}: {len(embedded)} embeddings for {len(features)} windows")
    for column in (*TARGET_COLUMNS, "split"):  # attached fresh, as for the features: relabelling reuses the cache
        if column in features.column_names:
            table = features.select_columns([column]).with_format("arrow")[:]
            embedded = embedded.add_column(column, table[column].to_pylist(), feature=features.features[column])
    report = {"cache_dir": directory, "reused": reused, "windows": len(embedded),
              "layers": int(embedded.features[INPUT_NAME].shape[0]), "seconds": round(time.perf_counter() - t0, 3)}
    logger.info("probe embeddings: %d windows x %d layers %s (%s)", report["windows"], report["layers"],
                "reused" if reused else "computed", directory)
    return embedded, report


class EmbeddingCollator:
    """Stacks cached `layer_embeddings` (and targets) into a batch: nothing to mask, each window's
    layers were pooled over its real tokens when they were computed."""

    feature_name = INPUT_NAME

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {INPUT_NAME: torch.from_numpy(np.stack([np.asarray(it[INPUT_NAME], np.float32) for it in items]))}
        batch.update(stack_targets(items))
        return batch
