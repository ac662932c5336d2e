"""Audio fingerprints (Chromaprint, AcoustID's library) of a corpus' clips, computed once and cached.

A raw Chromaprint fingerprint is one 32-bit value per ~0.124 s of audio (4096 / 3 samples at the
library's internal 11,025 Hz); each bit says how the energy in one band/time shape compares with
a threshold, so a re-encoded, resampled or gain-changed copy of the same music gives nearly the same
bits (see sentio.data.duplicates for how two are compared).

The decoded PCM is fed to the library through `pyacoustid`'s `chromaprint` module rather than
running `fpcalc`: fpcalc exits 3 on MP3s written by libsndfile ("Error decoding audio frame"), and
our own decoder (sentio.features.audio, the one the features use) already reads every format we take.
The library works at 11,025 Hz; its own resampler costs more than decoding the MP3 (measured: 66 ms
of CPU for 85 s of 44.1 kHz audio, against 10 ms for the same audio handed over at 11,025 Hz, plus
9 ms for soxr's low-quality resampler), so the waveform is resampled by soxr first, with its quick
(cubic) resampler: from 16 kHz it costs 1.0 ms of CPU per 14.5 s clip against 1.6 ms for the
low-quality filter (a third of what fingerprinting adds to a feature pass), and the matching is the
same (measured on 6 synthetic pieces and their re-encoded copies: copies' bit error at most 0.015,
different music's at least 0.37, with either).

Which waveform: the clip decoded mono at a source rate, part of the cache key. A feature pass
fingerprints each clip from the waveform it decodes anyway (sentio.features.cache,
`fingerprints=True`), at its backbone's rate (`fingerprint_rate`: 16 kHz for the spectrogram and
wav2vec2 backbones, 24 kHz for MERT, 48 kHz for CLAP), and the matching that follows reads them at
that rate. A fingerprint-only pass (prepare.py without features, another dataset's songs at
evaluation) decodes at SOURCE_RATE (16 kHz) unless told the rate. Either route gives the same bits
for the same rate, so one cache serves both. Fingerprints of one song from two rates differ by
resampling only (measured on 20 demo clips, 16 kHz against 22.05, 24 and 48 kHz: bit error at
most 0.0045; different clips at least 0.425), and a run never compares two rates anyway.

Cache: one small file per clip, `<cache_dir>/fingerprints/<key[:2]>/<key>.npy`, the key covering
FINGERPRINT_VERSION, MAX_SECONDS, the source rate and the file's (path, size, mtime_ns), so a touched file is
fingerprinted again and any subset of a corpus (a run's train songs, another dataset's test songs)
reuses what an earlier pass computed. Each file is written under a temporary name and renamed into
place (atomic, like cache_store.build_once's folders): a process killed mid-pass leaves finished
fingerprints and at most a `.partial-*` file, never a half-written one under a final name; two
processes at once at worst compute one fingerprint twice, with the same result. One clip is decoded
at a time and only its fingerprint (~1.3 kB per 45 s) is kept: memory stays flat in the number of
songs, apart from the fingerprints themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..errors import DataError
from ..features.audio import AudioError, load_audio
from ..features.cache_store import PARTIAL

FINGERPRINT_VERSION = 3
# Like fpcalc's default: the first 120 s identify a recording; longer songs cost decode time only.
MAX_SECONDS = 120.0
CHROMAPRINT_RATE = 11025  # the library's working rate
SOURCE_RATE = 16000  # the rate a fingerprint-only pass decodes at (see the module docstring)
FRAME_SECONDS = 4096 / 3 / CHROMAPRINT_RATE  # one fingerprint value per this much audio
INSTALL_HINT = ("Chromaprint is not installed: apt-get install libchromaprint1 libchromaprint-tools "
                "(or your system's chromaprint package) and pip install pyacoustid")


class ChromaprintMissing(DataError):
    """Content matching was asked for (a multi-dataset run, --match_audio yes) without Chromaprint."""


def chromaprint_problem() -> str | None:
    """None when Chromaprint can be used, else the one line that says how to install it."""
    try:
        import chromaprint  # noqa: F401  (pyacoustid's binding; ImportError when libchromaprint is absent)
    except ImportError:
        return INSTALL_HINT
    return None


def require_chromaprint(why: str) -> None:
    """Raise ChromaprintMissing (one line: why it is needed, how to install it, how to do without)."""
    problem = chromaprint_problem()
    if problem:
        raise ChromaprintMissing(f"{why} needs {problem}; or pass --match_audio no to trust song ids only")


def fingerprint_wave(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """The raw Chromaprint fingerprint (uint32 values) of a mono float waveform."""
    import chromaprint

    import soxr

    wave = np.asarray(wave[: int(MAX_SECONDS * sample_rate)], np.float32)
    if sample_rate != CHROMAPRINT_RATE:  # see the module docstring: the library's resampler is slow
        wave = soxr.resample(wave, sample_rate, CHROMAPRINT_RATE, quality="QQ")
        sample_rate = CHROMAPRINT_RATE
    wave = np.multiply(wave, 32767.0, dtype=np.float32)  # a new array: the caller's waveform stays as it is
    pcm = np.clip(wave, -32767.0, 32767.0, out=wave).astype("<i2")
    printer = chromaprint.Fingerprinter()
    printer.start(int(sample_rate), 1)
    printer.feed(pcm.tobytes())
    # The binding returns the compressed form only; decoding it gives the raw values back exactly.
    values, _ = chromaprint.decode_fingerprint(printer.finish())
    return np.asarray(values, dtype=np.int64).astype(np.uint32)


def fingerprint_rate(sampling_rate: int) -> int:
    """The source rate of the fingerprints a feature pass decoding at `sampling_rate` takes: its
    own, when Chromaprint's 11,025 Hz lies at or below it; else SOURCE_RATE (the matching then
    decodes for them)."""
    return sampling_rate if sampling_rate >= CHROMAPRINT_RATE else SOURCE_RATE


def fingerprint_file(path: str | os.PathLike, source_rate: int = SOURCE_RATE) -> np.ndarray:
    """Decode `path` (mono, `source_rate`) and fingerprint its first MAX_SECONDS."""
    # One second more than is fingerprinted: the streaming resampler's last samples (its flush)
    # then lie beyond the fingerprinted part, which equals the whole-clip decode of a feature pass.
    return fingerprint_wave(load_audio(path, source_rate, max_duration=MAX_SECONDS + 1.0), source_rate)


@dataclass
class Fingerprints:
    """Fingerprints of clips (in the order asked for), stored end to end; a clip that failed has none."""

    paths: list[str]
    values: np.ndarray  # uint32, all clips end to end
    offsets: np.ndarray  # int64 [len(paths) + 1]
    errors: dict[int, str]  # clip index -> why it has no fingerprint
    cache_dir: str = ""

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, index: int) -> np.ndarray:
        return self.values[self.offsets[index]:self.offsets[index + 1]]


def fingerprint_key(path: str, source_rate: int = SOURCE_RATE) -> str | None:
    """The cache key of a file as it is now, fingerprinted from its decode at `source_rate`; None
    when it cannot be stat'ed (reported as failed)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    blob = {"version": FINGERPRINT_VERSION, "max_seconds": MAX_SECONDS, "source_rate": source_rate,
            "file": [path, st.st_size, st.st_mtime_ns]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _target(folder: Path, key: str) -> Path:
    return folder / key[:2] / f"{key}.npy"


def cached_fingerprint(folder: str | os.PathLike, key: str) -> np.ndarray | None:
    """The fingerprint stored under `key`, or None when there is none (or it cannot be read)."""
    try:
        return np.load(_target(Path(folder), key))
    except (OSError, ValueError):
        return None  # not cached yet (or unreadable: computed again)


def store_fingerprint(folder: str | os.PathLike, key: str, path: str, values: np.ndarray,
                      source_rate: int = SOURCE_RATE) -> None:
    """Store `values` as the fingerprint of `path` under `key` (the key taken before it was decoded,
    at `source_rate`), refusing when the file changed since: a fingerprint must describe the file its
    key names."""
    if fingerprint_key(path, source_rate) != key:
        raise DataError(f"{path}: the file changed while it was fingerprinted; run again once it no longer changes")
    target = _target(Path(folder), key)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}{PARTIAL}{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.save(fh, np.asarray(values, np.uint32))
    os.replace(tmp, target)


def fingerprint_folder(cache_dir: str | os.PathLike) -> Path:
    """Where the fingerprints of a cache folder (the features' --cache_dir) live."""
    return Path(cache_dir) / "fingerprints"


def _cached(path: str, folder: Path, source_rate: int) -> tuple[np.ndarray | None, str]:
    """A clip's fingerprint, from the cache or computed and stored; (None, reason) for a clip that fails."""
    key = fingerprint_key(path, source_rate)
    if key is None:
        return None, f"{path}: file not found"
    values = cached_fingerprint(folder, key)
    if values is not None:
        return values, ""
    try:
        values = fingerprint_file(path, source_rate)
    except AudioError as exc:
        return None, str(exc)
    store_fingerprint(folder, key, path, values, source_rate)
    return values, ""


def corpus_fingerprints(paths: Sequence[str], cache_dir: str | os.PathLike, progress: bool = True,
                        source_rate: int = SOURCE_RATE) -> Fingerprints:
    """Fingerprints of `paths` from their decode at `source_rate`, each computed once (cached under
    cache_dir/fingerprints, keyed by the file's path, size and mtime and the rate)."""
    require_chromaprint("matching songs by their audio")
    paths = [str(p) for p in paths]
    folder = fingerprint_folder(cache_dir)
    chunks, offsets, errors = [], [0], {}
    for i, path in enumerate(tqdm(paths, desc="fingerprints", unit="clip", disable=not progress)):
        values, reason = _cached(path, folder, source_rate)
        if values is None:
            values, errors[i] = np.zeros(0, np.uint32), reason
        chunks.append(values)
        offsets.append(offsets[-1] + len(values))
    values = np.concatenate(chunks) if chunks else np.zeros(0, np.uint32)
    return Fingerprints(paths, values.astype(np.uint32), np.asarray(offsets, np.int64), errors, str(folder))
