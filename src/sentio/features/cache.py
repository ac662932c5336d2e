"""Features computed once per corpus with `Dataset.map()` and cached on disk, keyed by their inputs.

One row per window. The key covers the feature params, FEATURE_VERSION and every clip's
(song_id, path, size, mtime_ns) in manifest order; labels and splits are attached after loading,
so relabelling or re-splitting reuses the features while a touched file or a param change
recomputes. Layout: `<cache_dir>/<kind>-<key[:16]>/features*.arrow` + `done.json` (written last),
built in a temporary folder and renamed into place (cache_store.build_once).
Features stream to disk in small batches and are read back memory-mapped, so memory stays flat as
the corpus grows.

With `fingerprints=True` the same pass also stores each clip's Chromaprint fingerprint
(sentio.data.fingerprint, its own per-file cache under `<cache_dir>/fingerprints`) from the waveform
it decoded for the features: a multi-dataset run matches songs by their audio without decoding every
clip a second time (bench/fingerprint.py measures what it adds to the pass).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Iterator, Mapping

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
from datasets import Array2D, Dataset, Features, List, Value

from sentio.data import fingerprint as fp
from sentio.data.dynamic import Curve, frame_labels, frames_in_window
from sentio.errors import DataError
from sentio.features.audio import AudioError, load_audio
from sentio.features.cache_store import build_once
from sentio.features.extractor import SentioFeatureExtractor
from sentio.features.params import FEATURE_VERSION

logger = logging.getLogger(__name__)
MARKER = "done.json"  # written last into a finished cache folder (is_complete reads it)
_WRITER_BYTES = 8 << 20  # rows buffered per Arrow write: small, so memory does not grow with clips


@dataclass(frozen=True)
class FailedClip:
    """A clip whose features could not be computed, and why."""

    song_id: str
    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class FeatureReport:
    """What build_feature_dataset did: clip and window counts, the cache folder, whether it was reused,
    and each failed clip."""

    kind: str
    clips: int
    clips_ok: int
    windows: int
    failed: list[FailedClip] = field(default_factory=list)
    cache_dir: str = ""
    reused: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "failed": [f.to_dict() for f in self.failed]}


def _clip_stats(manifest: pd.DataFrame) -> list[list]:
    """Each clip's (song_id, path, size, mtime_ns); -1s for a missing file (reported as a failed clip)."""
    clips = []
    for song_id, path in zip(manifest["song_id"].astype(str), manifest["path"].astype(str)):
        try:
            st = os.stat(path)
            clips.append([song_id, path, st.st_size, st.st_mtime_ns])
        except OSError:
            clips.append([song_id, path, -1, -1])
    return clips


def cache_key(manifest: pd.DataFrame, extractor: SentioFeatureExtractor, clips: list[list] | None = None) -> str:
    """sha256 of feature code version + params + each clip's (song_id, path, size, mtime_ns)."""
    blob = {"version": FEATURE_VERSION, "kind": extractor.feature_kind, "params": extractor.params.to_dict(),
            "clips": _clip_stats(manifest) if clips is None else clips}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _check_unchanged(manifest: pd.DataFrame, before: list[list]) -> None:
    """A file rewritten while its features were computed would be cached under its old key with
    values of neither version: refuse (the temporary folder is then discarded)."""
    for old, new in zip(before, _clip_stats(manifest)):
        if old != new:
            raise DataError(f"{new[1]}: the file changed while its features were computed; rerun once it no "
                            "longer changes")


def feature_schema(extractor: SentioFeatureExtractor) -> Features:
    """Arrow schema of the cached rows (before labels/split are attached)."""
    p = extractor.params
    shape = p.feature_shape
    # Fixed shapes let Arrow hand back whole numpy blocks instead of nested Python lists.
    column = Array2D(shape, "float32") if len(shape) == 2 else List(Value("float32"), length=shape[0])
    return Features(
        {
            "song_id": Value("string"),
            "clip": Value("int32"),  # row of the manifest, to attach labels/splits afterwards
            "window": Value("int32"),
            "start": Value("float32"),
            "length": Value("int32"),
            p.feature_name: column,
            "error": Value("string"),  # non-empty only on the marker row of a clip that failed
        }
    )


@contextmanager
def one_torch_thread(restore: bool = True) -> Iterator[None]:
    """Run torch ops on one thread, for two reasons measured on 2-core machines:

    - a forked map worker inherits the parent's OpenMP pool state, and a multi-threaded torch op
      there hangs for ever (datasets' num_proc > 1 after any torch op in the parent);
    - the per-clip ops are small: on busy cores a 2-thread pool waits on descheduled threads and
      runs up to 10x slower than one thread. Parallelism comes from num_proc processes instead.
    """
    import torch

    previous = torch.get_num_threads()  # safe in a forked child: enters no parallel region
    torch.set_num_threads(1)
    try:
        yield
    finally:
        if restore:  # the caller's own process (num_proc=1) keeps its thread setting
            torch.set_num_threads(previous)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to `count` for the block (0: left as it is), then restored:
    library code leaves the process's setting as it found it."""
    import torch

    previous = torch.get_num_threads()
    if count > 0:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count > 0:
            torch.set_num_threads(previous)


def _features_batch(batch: dict[str, list], extractor: SentioFeatureExtractor, in_worker: bool,
                    fingerprint_dir: str | None = None) -> pa.Table:
    """Batched map function: clips in, windows out (more rows than it got), markers for failures."""
    with one_torch_thread(restore=not in_worker):
        return _features_rows(batch, extractor, fingerprint_dir)


def _fingerprint_wanted(path: str, folder: str | None, rate: int) -> str | None:
    """The fingerprint cache key of `path` (decoded at `rate`) when the pass should fingerprint it
    (not cached yet), taken BEFORE it is decoded: store_fingerprint then refuses a file that changed
    while it was decoded."""
    if not folder:
        return None
    key = fp.fingerprint_key(path, rate)
    return key if key is not None and fp.cached_fingerprint(folder, key) is None else None


def _features_rows(batch: dict[str, list], extractor: SentioFeatureExtractor,
                   fingerprint_dir: str | None = None) -> pa.Table:
    name = extractor.feature_name
    shape = extractor.params.feature_shape
    out: dict[str, list] = {k: [] for k in ("song_id", "clip", "window", "start", "length", "error")}
    blocks: list[np.ndarray] = []
    for song_id, clip, path in zip(batch["song_id"], batch["clip"], batch["path"]):
        fingerprint_key = _fingerprint_wanted(path, fingerprint_dir, extractor.sampling_rate)
        try:
            wave = load_audio(path, extractor.sampling_rate)
            feats = extractor.params.compute(wave)
        except AudioError as exc:
            feats, reason = None, str(exc)
        except Exception as exc:  # one odd file must not end a long pass; the report names it
            feats, reason = None, f"{path}: {type(exc).__name__}: {exc}"
        if fingerprint_key is not None and feats is not None:  # from the waveform just decoded
            try:
                rate = extractor.sampling_rate
                fp.store_fingerprint(fingerprint_dir, fingerprint_key, path, fp.fingerprint_wave(wave, rate), rate)
            except Exception as exc:  # the features stand; the matching pass fingerprints it again and reports
                logger.debug("%s: no fingerprint in the feature pass: %s", path, exc)
        n = 1 if feats is None else len(feats["length"])
        out["song_id"] += [song_id] * n
        out["clip"] += [clip] * n
        out["window"] += list(range(n))
        if feats is None:
            out["start"].append(0.0)
            out["length"].append(0)
            out["error"].append(reason)
            blocks.append(np.zeros((1, *shape), dtype=np.float32))
        else:
            out["start"] += feats["start"].tolist()
            out["length"] += feats["length"].tolist()
            out["error"] += [""] * n
            blocks.append(feats[name])
    features = feature_schema(extractor)
    out[name] = _arrow_column(np.concatenate(blocks), features[name])
    # A whole Arrow table (map accepts one), so the feature column is written without conversion.
    return pa.Table.from_pydict(out, schema=features.arrow_schema)


def _arrow_column(values: np.ndarray, feature: Array2D | List) -> pa.Array:
    """[n, *shape] float32 -> the Arrow array of `feature`, sharing `values`' memory.

    Handing datasets the numpy block instead costs two more copies and a slow pa.array() scan
    (~1 ms per AST window, a third of the feature pass); offsets over one flat buffer cost nothing.
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    flat = pa.Array.from_buffers(pa.float32(), values.size, [None, pa.py_buffer(values)])
    if isinstance(feature, List):  # fixed-length list (wav2vec2 samples)
        return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
    n, rows, cols = values.shape
    inner = pa.ListArray.from_arrays(pa.array(np.arange(n * rows + 1, dtype=np.int32) * cols), flat)
    outer = pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * rows), inner)
    return pa.ExtensionArray.from_storage(feature(), outer)  # Array2D() is its Arrow extension type


def _shard_files(directory: str) -> list[str]:
    return sorted(f for f in os.listdir(directory) if f.startswith("features") and f.endswith(".arrow"))


def _compute(manifest: pd.DataFrame, extractor: SentioFeatureExtractor, directory: str, key: str,
             clips: list[list], num_proc: int, batch_size: int, fingerprint_dir: str | None = None) -> None:
    """Run the map into the empty folder `directory` and mark it done (see cache_store.build_once);
    `clips` are the file stats the key was made from."""
    source = Dataset.from_dict(  # from_dict, not from_pandas: pandas 3 large_string columns
        {
            "song_id": manifest["song_id"].astype(str).tolist(),
            "clip": list(range(len(manifest))),
            "path": manifest["path"].astype(str).tolist(),
        }
    )
    num_proc = max(1, min(num_proc, len(manifest)))
    row_bytes = 4 * int(np.prod(extractor.params.feature_shape))
    mapped = source.map(
        _features_batch,
        batched=True,
        batch_size=batch_size,
        fn_kwargs={"extractor": extractor, "in_worker": num_proc > 1, "fingerprint_dir": fingerprint_dir},
        remove_columns=source.column_names,
        features=feature_schema(extractor),
        cache_file_name=os.path.join(directory, "features.arrow"),
        writer_batch_size=max(1, _WRITER_BYTES // row_bytes),
        load_from_cache_file=False,
        new_fingerprint=key[:32],  # skips hashing the function and its extractor
        num_proc=num_proc if num_proc > 1 else None,
        desc=f"{extractor.feature_kind} features",
    )
    files = _shard_files(directory)
    del mapped
    _check_unchanged(manifest, clips)
    marker = {"key": key, "kind": extractor.feature_kind, "params": extractor.params.to_dict(), "files": files,
              "clips": len(manifest)}
    tmp = os.path.join(directory, MARKER + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(marker, fh, indent=2)
    os.replace(tmp, os.path.join(directory, MARKER))  # atomic: a marker means complete files


def _load(directory: str) -> Dataset:
    with open(os.path.join(directory, MARKER)) as fh:
        files = json.load(fh)["files"]
    parts = [Dataset.from_file(os.path.join(directory, f), in_memory=False) for f in files]
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def cache_directory(cache_dir: str | os.PathLike, extractor: SentioFeatureExtractor, key: str) -> str:
    """The folder of the cache with this key."""
    return os.path.join(os.fspath(cache_dir), f"{extractor.feature_kind}-{key[:16]}")


def is_cached(manifest: pd.DataFrame, extractor: SentioFeatureExtractor, cache_dir: str | os.PathLike) -> bool:
    """Whether the features of `manifest` are already cached complete (nothing to compute)."""
    return is_complete(cache_directory(cache_dir, extractor, cache_key(manifest.reset_index(drop=True), extractor)))


def build_feature_dataset(
    manifest: pd.DataFrame,
    extractor: SentioFeatureExtractor,
    cache_dir: str,
    num_proc: int = 1,
    batch_size: int = 4,
    curves: Mapping[str, Curve] | None = None,
    max_seconds: float | None = None,
    fingerprints: bool = False,
    pass_rows: pd.DataFrame | None = None,
) -> tuple[Dataset, FeatureReport]:
    """Window rows for every decodable clip of `manifest`, computed once and cached under `cache_dir`.

    Columns: song_id, clip, window, start, length, <feature_name>, then, attached fresh from
    `manifest`: `labels` ([valence, arousal] float32, when the manifest has them), `label_spread`
    (the raters' standard deviations, NaN where unknown, when it has those columns), `split`, and,
    with `curves`, `frame_labels` [frames per window, 2]: the 2 Hz labels of each window's
    half-seconds, NaN where unlabelled (windows must start on the 0.5 s grid). The report gives
    clip/window counts, the cache directory, whether it was reused, and each failed clip with its
    reason. With `max_seconds` (a protocol's "first 30 s"), only windows that end by then are kept
    (a clip's first window always, where even that one is longer).

    `fingerprints`: the pass also caches each clip's Chromaprint fingerprint from the waveform it
    decodes, keyed by the extractor's rate (`fingerprint.fingerprint_rate`: any rate from
    Chromaprint's 11,025 Hz up; with Chromaprint installed; otherwise the matching decodes for
    them). `pass_rows`: the rows (song_id, path) the features were computed for, when that pass
    came before `manifest` was final (songs matched by their audio first, then copies merged and
    splits assigned): the cache of those rows is used, and only the windows of `manifest`'s
    songs are kept, so the clips are not decoded again.
    """
    t0 = time.perf_counter()
    manifest = manifest.reset_index(drop=True)
    if len(manifest) == 0:
        raise DataError("the manifest has no clips")
    computed = manifest if pass_rows is None else pass_rows.reset_index(drop=True)
    directory, reused = _cached_pass(computed, extractor, cache_dir, num_proc, batch_size, fingerprints)
    ds = _load(directory)
    outside = np.zeros(len(ds), bool)  # windows of songs the pass computed that `manifest` no longer has
    if pass_rows is not None:
        ds, outside = _rows_of(ds, computed, manifest)

    # Only cheap columns are read here; the feature column stays on disk.
    clip = np.asarray(ds.data.column("clip").to_numpy(), dtype=np.int64)
    errors = ds.data.column("error").to_pylist()
    # Columns are added before select: add_column on a selection would rewrite every feature.
    ds = _with_manifest_columns(ds, manifest, clip, extractor, curves)
    keep = _usable_rows(ds, errors, outside, extractor, max_seconds)
    failed = [FailedClip(str(manifest.at[clip[i], "song_id"]), str(manifest.at[clip[i], "path"]), e)
              for i, e in enumerate(errors) if e and not outside[i]]
    if not keep:
        raise DataError(f"no clip could be used; first failure: {failed[0].reason}")
    ds = ds.remove_columns("error")
    if len(keep) < len(ds):
        ds = ds.select(keep)
    report = FeatureReport(kind=extractor.feature_kind, clips=len(manifest), clips_ok=len(manifest) - len(failed),
                           windows=len(ds), failed=failed, cache_dir=directory, reused=reused,
                           seconds=round(time.perf_counter() - t0, 3))
    return ds, report


def _cached_pass(computed: pd.DataFrame, extractor: SentioFeatureExtractor, cache_dir: str, num_proc: int,
                 batch_size: int, fingerprints: bool) -> tuple[str, bool]:
    """The cache folder of the feature pass over `computed`, made once (see build_feature_dataset);
    whether an earlier pass's was reused."""
    clips = _clip_stats(computed)
    key = cache_key(computed, extractor, clips)
    directory = cache_directory(cache_dir, extractor, key)
    fingerprint_dir = None
    rate = extractor.sampling_rate
    if fingerprints and fp.fingerprint_rate(rate) == rate and fp.chromaprint_problem() is None:
        fingerprint_dir = str(fp.fingerprint_folder(cache_dir))
    reused = build_once(directory, is_complete,
                        lambda tmp: _compute(computed, extractor, str(tmp), key, clips, num_proc, batch_size,
                                             fingerprint_dir))
    logger.info("%s features %s in %s", extractor.feature_kind, "reused" if reused else "computed",
                os.path.abspath(directory))
    return directory, reused


def _with_manifest_columns(ds: Dataset, manifest: pd.DataFrame, clip: np.ndarray, extractor: SentioFeatureExtractor,
                           curves: Mapping[str, Curve] | None) -> Dataset:
    """The cached windows with their clip's `labels`, `label_spread` and `split` from `manifest`
    (where it has them) and, with `curves`, each window's 2 Hz `frame_labels`."""
    if "valence" in manifest and "arousal" in manifest:
        labels = manifest[["valence", "arousal"]].to_numpy(dtype=np.float32)[clip]
        ds = ds.add_column("labels", labels.tolist(), feature=List(Value("float32"), length=2))
    if "valence_std" in manifest and "arousal_std" in manifest:
        spread = manifest[["valence_std", "arousal_std"]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
        ds = ds.add_column("label_spread", spread[clip].tolist(), feature=List(Value("float32"), length=2))
    if "split" in manifest:
        splits = manifest["split"].fillna("").astype(str).to_numpy()[clip]
        ds = ds.add_column("split", splits.tolist(), feature=Value("string"))
    if curves is not None:
        frames = frames_in_window(extractor.params.window_duration)
        songs, starts = ds.data.column("song_id").to_pylist(), ds.data.column("start").to_numpy()
        values = [frame_labels(curves.get(str(song)), float(start), frames).tolist()
                  for song, start in zip(songs, starts)]
        ds = ds.add_column("frame_labels", values, feature=Array2D((frames, 2), "float32"))
    return ds


def _usable_rows(ds: Dataset, errors: list, outside: np.ndarray, extractor: SentioFeatureExtractor,
                 max_seconds: float | None) -> list[int]:
    """The windows of decoded clips of the manifest (not `outside` it); with `max_seconds`, only
    those that end by then (and each clip's first)."""
    keep = [i for i, e in enumerate(errors) if not e and not outside[i]]
    if max_seconds is not None:  # the cache holds every window; a protocol scores the first ones only
        starts, first = ds.data.column("start").to_numpy(), ds.data.column("window").to_numpy() == 0
        inside = starts + extractor.params.window_duration <= max_seconds + 1e-6
        keep = [i for i in keep if inside[i] or first[i]]
    return keep


def _rows_of(ds: Dataset, computed: pd.DataFrame, manifest: pd.DataFrame) -> tuple[Dataset, np.ndarray]:
    """A cache built over `computed` (a superset of `manifest`'s songs) with its `clip` renumbered to
    `manifest`'s rows, and which windows belong to no row of `manifest` (their clip is 0: the caller
    leaves them out after adding its columns, since adding columns to a selection rewrites the features)."""
    where = {(str(s), str(p)): i for i, (s, p) in enumerate(zip(manifest["song_id"], manifest["path"]))}
    to_manifest = np.array([where.get((str(s), str(p)), -1) for s, p in zip(computed["song_id"], computed["path"])],
                           dtype=np.int64)
    missing = len(manifest) - len(set(to_manifest[to_manifest >= 0].tolist()))
    if missing:
        raise ValueError(f"{missing} manifest rows are not among the rows the features were computed for")
    clip = to_manifest[np.asarray(ds.data.column("clip").to_numpy(), dtype=np.int64)]
    outside = clip < 0
    ds = ds.remove_columns("clip").add_column("clip", np.where(outside, 0, clip).astype(np.int32).tolist(),
                                              feature=Value("int32"))
    return ds, outside


def is_complete(directory: str | os.PathLike) -> bool:
    """A finished cache folder: its marker (written last) names files that all exist."""
    try:
        with open(os.path.join(directory, MARKER)) as fh:
            files = list(json.load(fh)["files"])
    except (OSError, ValueError, KeyError):
        return False  # no or unreadable marker: not complete
    return bool(files) and all(os.path.isfile(os.path.join(directory, f)) for f in files)
