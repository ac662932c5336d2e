"""Teacher outputs for offline distillation: computed once per (teacher, feature cache), saved to disk.

The teacher sees its own cached features (AST fbank, Wav2Vec2 waveform or ViT image); the student
sees AST-kind log-mel windows. Targets are matched per window by (song_id, window index) when the
two windows start at the same time; otherwise (a teacher with other window times) the student
window gets its song's mean teacher output. `align` counts both cases so a report can say which.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset

from ..choices import WEIGHT_FILES
from ..features.cache_store import lock_for
from ..features.datasets import EmotionCollator, WindowDataset
from ..features.extractor import SentioFeatureExtractor
from ..errors import DataError
from ..inference.runner import WindowRunner, batches_of, dataset_items, run_batches

logger = logging.getLogger(__name__)
START_TOLERANCE_S = 0.05  # window starts closer than this are the same window


@dataclass
class TeacherOutputs:
    """One row per teacher window: song_id, window index, start (s), predictions [N, 2], embedding [N, H]."""

    song_id: np.ndarray
    window: np.ndarray
    start: np.ndarray
    predictions: np.ndarray
    embedding: np.ndarray

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{k: getattr(self, k) for k in ("song_id", "window", "start", "predictions", "embedding")})
        os.replace(tmp, path)  # atomic: a half-written cache is never read back

    @classmethod
    def load(cls, path: Path) -> "TeacherOutputs":
        with np.load(path, allow_pickle=False) as data:
            return cls(**{k: data[k] for k in ("song_id", "window", "start", "predictions", "embedding")})


def teacher_cache_path(teacher_dir: str, feature_cache_dir: str, cache_dir: str) -> Path:
    """`<cache_dir>/teacher-<key>.npz`; the key covers the teacher's config, feature params and weights
    (size + mtime, as the feature cache keys audio) and the feature cache (manifest clips + params)."""
    digest = hashlib.sha256()
    folder = Path(teacher_dir)
    for name in ("config.json", "preprocessor_config.json"):
        digest.update((folder / name).read_bytes())
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            st = (folder / name).stat()
            digest.update(json.dumps([name, st.st_size, st.st_mtime_ns]).encode())
    digest.update(os.path.basename(os.path.normpath(feature_cache_dir)).encode())
    return Path(cache_dir) / f"teacher-{digest.hexdigest()[:16]}.npz"


def compute_teacher_outputs(runner: WindowRunner, features: Dataset, extractor: SentioFeatureExtractor,
                            batch_size: int = 32) -> TeacherOutputs:
    """The teacher's predictions and pooled embeddings for every window of `features` (all splits)."""
    windows = WindowDataset(features, extractor.feature_name)
    batches = batches_of(dataset_items(windows), EmotionCollator.for_extractor(extractor), batch_size)
    out = run_batches(runner, batches, progress=True, desc="teacher outputs", total=-(-len(windows) // batch_size))
    cheap = features.select_columns(["song_id", "window", "start"]).with_format("numpy")[:]
    return TeacherOutputs(np.asarray(cheap["song_id"]).astype(str), np.asarray(cheap["window"], np.int64),
                          np.asarray(cheap["start"], np.float64), out["predictions"], out["embedding"])


def cached_teacher_outputs(runner: WindowRunner, teacher_dir: str, features: Dataset,
                           extractor: SentioFeatureExtractor, feature_cache_dir: str, cache_dir: str,
                           batch_size: int = 32) -> tuple[TeacherOutputs, Path, bool]:
    """(outputs, cache file, reused): read the cache when present, else compute and save it."""
    path = teacher_cache_path(teacher_dir, feature_cache_dir, cache_dir)
    with lock_for(path):  # two distillations of one teacher at once: the second waits, then reuses
        if path.is_file():
            logger.info("teacher outputs reused from %s", path)
            return TeacherOutputs.load(path), path, True
        outputs = compute_teacher_outputs(runner, features, extractor, batch_size)
        outputs.save(path)
    return outputs, path, False


def align(teacher: TeacherOutputs, song_ids: list[str], windows: np.ndarray,
          starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Teacher (predictions, embedding) for each student window, and {"per_window", "song_mean"} counts.

    Per window when the teacher has the same (song, window index) starting within
    START_TOLERANCE_S; otherwise the song's mean over its teacher windows.
    """
    index = {(s, int(w)): i for i, (s, w) in enumerate(zip(teacher.song_id.tolist(), teacher.window.tolist()))}
    by_song: dict[str, list[int]] = {}
    for i, song in enumerate(teacher.song_id.tolist()):
        by_song.setdefault(song, []).append(i)
    preds = np.empty((len(song_ids), teacher.predictions.shape[1]), np.float32)
    embs = np.empty((len(song_ids), teacher.embedding.shape[1]), np.float32)
    counts = {"per_window": 0, "song_mean": 0}
    for row, (song, window, start) in enumerate(zip(song_ids, windows.tolist(), starts.tolist())):
        i = index.get((song, int(window)))
        if i is not None and abs(float(teacher.start[i]) - start) <= START_TOLERANCE_S:
            preds[row], embs[row] = teacher.predictions[i], teacher.embedding[i]
            counts["per_window"] += 1
            continue
        rows = by_song.get(song)
        if not rows:
            raise DataError(f"song {song!r} has student windows but no teacher output (its teacher features failed)")
        preds[row], embs[row] = teacher.predictions[rows].mean(0), teacher.embedding[rows].mean(0)
        counts["song_mean"] += 1
    return preds, embs, counts
