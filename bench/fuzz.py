"""Mutational fuzzing of what strangers hand Sentio: audio files and annotation files.

    python bench/fuzz.py                                     # 2,000 audio + 500 annotation cases, tiny model
    python bench/fuzz.py --audio_cases 200 --annotation_cases 50 --seed 3
    python bench/fuzz.py --model_dir runs/ast-demo --keep tests/fuzz_cases

Seeds are written by the script: short WAV (16-bit and float), FLAC, OGG, MP3 and (when ffmpeg is
on the PATH) M4A files; a DEAM folder, an EmoMusic folder, a label CSV and a manifest.csv written
by the real prepare step. Each case mutates one seed (bit flips, byte runs, truncation,
duplication, header fields at extremes; for CSVs also encodings, delimiters, huge numbers, NaN,
duplicated and dropped columns, ragged rows) and runs in a child forked from this warm process,
under a real address-space limit (RLIMIT_AS, --memory_mb above what the parent maps) and a
wall-clock limit (--timeout, then SIGKILL). An audio case is `EmotionPredictor.predict(file)`; an
annotation case is `prepare_manifest` on the mutated source (readers, manifest, audio checks).

Outcomes: `ok` (a prediction, or a manifest) and `error` (one line: a SentioError) are what bad
input must give. Failures: `traceback` (any other exception), `multiline` (an error of several
lines), `memory` (an allocation refused under the limit), `hang` (killed at the timeout) and
`crash` (the child died of a signal: a native decoder crash). With --keep, every failing case is
copied there (audio/<name>, annotations/<name>/ with its case.json) for tests/inference/test_hostile_input.py.
Exit status 1 when any case failed.

A new annotation source (PMEmo, ...) is one more `AnnotationTarget` in ANNOTATION_TARGETS: a
function writing its seed folder, the files to mutate, and the DataSourceSpec fields that read it.
Not a test: it prints counts by outcome.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # forked children of a process with an OpenMP pool can hang

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

FAILURES = ("traceback", "multiline", "memory", "hang", "crash")
OUTCOMES = ("ok", "error", *FAILURES)
EXTREMES_32 = (0, 1, 2, 3, 255, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 44100, 768001, 3999)
EXTREMES_16 = (0, 1, 2, 255, 256, 0x7FFF, 0x8000, 0xFFFF)
RATES = (0, 1, 2, 3, 100, 255, 3999, 4000, 768000, 768001, 0x7FFFFFFF, 0xFFFFFFFF)  # around the bounds read


# ---- running one case -------------------------------------------------------------------------


@dataclass
class Outcome:
    outcome: str
    detail: str = ""
    seconds: float = 0.0
    peak_mb: float = 0.0


def _vm_bytes() -> int:
    """The address space this process maps now (the child's limit starts from it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_isolated(work: Callable[[], str], timeout: float, memory_bytes: int) -> Outcome:
    """`work()` in a forked child under RLIMIT_AS and a timeout; its outcome by what it raised."""
    from sentio.errors import SentioError

    limit = _vm_bytes() + memory_bytes
    started = time.monotonic()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the parent's code
        os.close(read_end)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                result = ("ok", work())
            except SentioError as exc:
                text = str(exc).strip()
                result = ("multiline", text) if "\n" in text else ("error", text)
            except MemoryError as exc:
                result = ("memory", f"MemoryError {exc}")
            except BaseException as exc:  # noqa: BLE001 - every other exception is what the fuzzer looks for
                memory = "allocate" in str(exc) or "bad_alloc" in str(exc)
                result = ("memory" if memory else "traceback", traceback.format_exc())
            os.write(write_end, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, deadline, hung = [], started + timeout, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            hung = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([read_end], [], [], left)
        if ready:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read_end)
    _, status, usage = os.wait4(pid, 0)
    seconds, peak = time.monotonic() - started, usage.ru_maxrss / 1024
    if hung:
        return Outcome("hang", f"still running after {timeout:g} s", seconds, peak)
    if os.WIFSIGNALED(status):
        return Outcome("crash", f"killed by signal {os.WTERMSIG(status)}", seconds, peak)
    if not chunks:
        return Outcome("crash", f"exited with status {os.WEXITSTATUS(status)} and no outcome", seconds, peak)
    outcome, detail = json.loads(b"".join(chunks))
    return Outcome(outcome, detail, seconds, peak)


# ---- byte mutators (audio and CSV files alike) ---------------------------------------------------


def bit_flips(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 33))):
        # half of the flips in the first 256 bytes, where headers are
        pos = int(rng.integers(0, min(len(out), 256))) if rng.random() < 0.5 else int(rng.integers(0, len(out)))
        out[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(out)


def byte_run(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    out = bytearray(data)
    pos, length = int(rng.integers(0, len(out))), int(rng.integers(1, 257))
    fill = rng.choice([0x00, 0xFF, 0x7F, 0x80, -1])
    run = rng.integers(0, 256, length, dtype=np.uint8).tobytes() if fill < 0 else bytes([int(fill)]) * length
    out[pos : pos + length] = run
    return bytes(out)


def truncate(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    # a third of the cuts just after the header: a file of a few frames, or none
    return data[: int(rng.integers(0, min(len(data), 320) if rng.random() < 0.3 else len(data)))]


def duplicate(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    start = int(rng.integers(0, len(data)))
    span = data[start : start + int(rng.integers(1, 4097))]
    at = int(rng.integers(0, len(data) + 1))
    return data[:at] + span * int(rng.integers(1, 4)) + data[at:]


def _put(out: bytearray, offset: int, value: int, size: int, order: str) -> None:
    if 0 <= offset and offset + size <= len(out):
        out[offset : offset + size] = (value % (1 << (8 * size))).to_bytes(size, order)


def header_field(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    """A header field of the seed's format set to an extreme value (rate, channels, bits, lengths)."""
    out = bytearray(data)
    if kind.startswith("wav") and (fmt := data.find(b"fmt ")) >= 0:
        if rng.random() < 0.3:  # the sample rate, the field that multiplies the resampler's output
            _put(out, fmt + 12, int(rng.choice(RATES)), 4, "little")
            return bytes(out)
        field_at, size = [(fmt + 10, 2), (fmt + 12, 4), (fmt + 16, 4), (fmt + 20, 2), (fmt + 22, 2), (fmt + 4, 4),
                          (data.find(b"data") + 4, 4), (4, 4)][int(rng.integers(0, 8))]
        _put(out, field_at, int(rng.choice(EXTREMES_16 if size == 2 else EXTREMES_32)), size, "little")
    elif kind == "flac" and data[:4] == b"fLaC":
        # STREAMINFO: block sizes (8..11), frame sizes (12..17), then rate(20) channels(3) bits(5) samples(36)
        bits = int.from_bytes(out[18:26], "big")
        shift, width = [(44, 20), (41, 3), (36, 5), (0, 36)][int(rng.integers(0, 4))]
        value = int(rng.choice([0, 1, 3, (1 << width) - 1, 1 << (width - 1)]))
        bits = (bits & ~(((1 << width) - 1) << shift)) | (value << shift)
        out[18:26] = bits.to_bytes(8, "big")
        if rng.random() < 0.3:
            _put(out, 8 + 2 * int(rng.integers(0, 2)), int(rng.choice(EXTREMES_16)), 2, "big")
    elif kind == "ogg" and (page := data.find(b"OggS", int(rng.integers(0, len(data))))) >= 0:
        # a page's granule position (6..13) or segment count (26)
        if rng.random() < 0.7:
            _put(out, page + 6, int(rng.choice([0, 1, (1 << 63) - 1, (1 << 64) - 1, 1 << 40])), 8, "little")
        else:
            _put(out, page + 26, int(rng.choice([0, 1, 255])), 1, "little")
    elif kind == "mp3" and (sync := data.find(b"\xff\xfb", int(rng.integers(0, len(data))))) >= 0:
        # bitrate and rate indexes to their reserved/free values, or the channel mode
        out[sync + 2] = int(rng.choice([0xF0, 0x0C, 0xFC, 0x00]))
        out[sync + 3] = int(rng.choice([0xC0, 0x00, out[sync + 3]]))
    elif kind == "m4a" and (atom := data.find(rng.choice([b"mdhd", b"stsz", b"stco", b"stts", b"esds"]))) >= 0:
        _put(out, atom + 4 + 4 * int(rng.integers(1, 6)), int(rng.choice(EXTREMES_32)), 4, "big")
    else:
        _put(out, int(rng.integers(0, min(len(out), 128))), int(rng.choice(EXTREMES_32)), 4, "little")
    return bytes(out)


BYTE_MUTATORS = {"bitflip": bit_flips, "byterun": byte_run, "truncate": truncate, "duplicate": duplicate,
                 "header": header_field}


# ---- CSV mutators --------------------------------------------------------------------------------


def _cells(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8", errors="replace")
    return [line.split(",") for line in text.splitlines()]


def _joined(rows: list[list[str]], sep: str = ",", newline: str = "\n") -> bytes:
    return (newline.join(sep.join(row) for row in rows) + newline).encode("utf-8", errors="surrogateescape")


def _number_cells(rows: list[list[str]]) -> list[tuple[int, int]]:
    found = []
    for r, row in enumerate(rows[1:], 1):
        for c, cell in enumerate(row):
            try:
                float(cell)
                found.append((r, c))
            except ValueError:
                pass
    return found


def csv_encoding(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    text = data.decode("utf-8", errors="replace")
    choice = int(rng.integers(0, 6))
    if choice == 0:
        return text.encode("utf-16")
    if choice == 1:
        return text.encode("utf-16-le")
    if choice == 2:
        return b"\xef\xbb\xbf" + data
    if choice == 3:
        return text.replace("song_id", "sóng_id", 1).encode("latin-1", errors="replace")
    if choice == 4:
        at = int(rng.integers(0, len(data) + 1))
        return data[:at] + bytes([0xFF, 0xFE, 0xC3]) + data[at:]  # invalid UTF-8 in the middle
    return data.replace(b"\n", b"\r") if rng.random() < 0.5 else data.replace(b"\n", b"\x00\n")


def csv_delimiter(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    sep = [b";", b"\t", b"|", b" ", b",,"][int(rng.integers(0, 5))]
    if rng.random() < 0.3:  # the header only
        head, _, rest = data.partition(b"\n")
        return head.replace(b",", sep) + b"\n" + rest
    return data.replace(b",", sep)


def csv_huge_number(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    rows = _cells(data)
    cells = _number_cells(rows)
    for _ in range(int(rng.integers(1, 4))):
        if cells:
            r, c = cells[int(rng.integers(0, len(cells)))]
            rows[r][c] = str(rng.choice(["1e308", "1e999", "-1e999", "123456789012345678901234567890", "9" * 400,
                                         "-0", "1e-320", "0x1F", "1,5", "4.2.1", "+5", "  7  ", "5e"]))
    return _joined(rows)


def csv_nan(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    rows = _cells(data)
    cells = _number_cells(rows) or [(r, 0) for r in range(1, len(rows))]
    for _ in range(int(rng.integers(1, 6))):
        if cells:
            r, c = cells[int(rng.integers(0, len(cells)))]
            rows[r][c] = str(rng.choice(["NaN", "nan", "", "inf", "-inf", "NA", "null", "None", "#N/A", " ", '"']))
    return _joined(rows)


def csv_columns(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    """Duplicated, dropped, swapped or renamed columns."""
    rows = _cells(data)
    if not rows or not rows[0]:
        return data
    width = len(rows[0])
    c, d = int(rng.integers(0, width)), int(rng.integers(0, width))
    choice = int(rng.integers(0, 4))
    for r, row in enumerate(rows):
        if c >= len(row) or d >= len(row):
            continue
        if choice == 0:  # the column twice, same name
            row.insert(c, row[c])
        elif choice == 1:  # dropped
            del row[c]
        elif choice == 2 and r == 0:  # the header names swapped
            row[c], row[d] = row[d], row[c]
        elif choice == 3 and r == 0:  # two columns of one name
            row[d] = row[c]
    return _joined(rows)


def csv_rows(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    """Ragged, duplicated, junk, very long or missing rows; an empty or header-only file."""
    rows = _cells(data)
    choice = int(rng.integers(0, 8))
    at = int(rng.integers(1, max(2, len(rows))))
    if choice == 0 and len(rows) > 1:
        rows.insert(at, list(rows[min(at, len(rows) - 1)]))
    elif choice == 1:
        rows.insert(at, ["1", "2"])
    elif choice == 2 and len(rows) > 1:
        rows[min(at, len(rows) - 1)] += ["extra", "cells", "9"]
    elif choice == 3:
        rows.insert(at, [rng.integers(0, 256, 64, dtype=np.uint8).tobytes().decode("latin-1")])
    elif choice == 4:
        rows.insert(at, ["x" * 200_000])
    elif choice == 5:
        return rows and _joined(rows[:1]) or b""
    elif choice == 6:
        return b""
    else:
        rows.insert(at, ['"unbalanced', "quote"])
    return _joined(rows)


CSV_MUTATORS = {"encoding": csv_encoding, "delimiter": csv_delimiter, "huge": csv_huge_number, "nan": csv_nan,
                "columns": csv_columns, "rows": csv_rows, "bitflip": bit_flips, "truncate": truncate,
                "duplicate": duplicate}


def mutate(data: bytes, kind: str, mutators: dict[str, Callable], rng: np.random.Generator) -> tuple[bytes, list[str]]:
    """One to three mutators in a row; the empty result of a truncation is a case too."""
    names = list(rng.choice(list(mutators), size=int(rng.integers(1, 4))))
    for name in names:
        if data:
            data = mutators[name](data, rng, kind)
    return data, names


# ---- audio seeds and cases -----------------------------------------------------------------------


def _chord(seconds: float, rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3 * 0.3
    return np.stack([wave * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def write_audio_seeds(folder: Path) -> dict[str, Path]:
    """kind -> seed file: short clips in each format the decoders read (M4A only with ffmpeg)."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = {
        "wav16": (folder / "seed16.wav", 1.0, 22050, 1, "WAV", "PCM_16"),
        "wavfloat": (folder / "seedf.wav", 0.7, 44100, 2, "WAV", "FLOAT"),
        "flac": (folder / "seed.flac", 1.0, 44100, 2, "FLAC", None),
        "ogg": (folder / "seed.ogg", 1.0, 22050, 1, "OGG", None),
        "mp3": (folder / "seed.mp3", 1.5, 44100, 2, "MP3", None),
    }
    out = {}
    for kind, (path, seconds, rate, channels, fmt, subtype) in seeds.items():
        sf.write(path, _chord(seconds, rate, channels), rate, format=fmt, subtype=subtype)
        out[kind] = path
    if shutil.which("ffmpeg"):
        m4a = folder / "seed.m4a"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(seeds["wav16"][0]), "-c:a", "aac", "-b:a", "64k",
                        str(m4a)], check=True)
        out["m4a"] = m4a
    return out


def build_tiny_run(folder: Path) -> Path:
    """A tiny AST run in the real on-disk format (hidden 32, 2 layers; random weights: the
    outcome of a case does not depend on training)."""
    import torch

    from sentio.features.extractor import SentioFeatureExtractor
    from sentio.models import build_model

    torch.manual_seed(0)
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, head_hidden_size=16,
                max_length=64, num_mel_bins=32)
    build_model("ast", from_scratch=True, config_overrides=tiny).save_pretrained(folder)
    SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32).save_pretrained(folder)
    return folder


# ---- annotation seeds and cases ------------------------------------------------------------------


@dataclass
class AnnotationTarget:
    """One annotation source: `write(folder)` writes its seed folder (audio included), `files` are
    the files of it to mutate, `spec(folder)` the DataSourceSpec fields that read it."""

    name: str
    write: Callable[[Path], None]
    files: tuple[str, ...]
    spec: Callable[[Path], dict[str, Any]]


def _tiny_mp3(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _chord(0.5 + 0.1 * seed, 8000, 1), 8000, format="MP3")


DEAM_SONG_LEVEL = "DEAM_Annotations/annotations/annotations averaged per song/song_level"
DEAM_DYNAMIC = "DEAM_Annotations/annotations/annotations averaged per song/dynamic (per second annotations)"


def write_deam(root: Path) -> None:
    """DEAM's layout and header quirks: spaces after commas, CRLF, the 2000-2058 file's extra columns."""
    (root / DEAM_SONG_LEVEL).mkdir(parents=True)
    (root / DEAM_SONG_LEVEL / "static_annotations_averaged_songs_1_2000.csv").write_bytes(
        b"song_id, valence_mean, valence_std, arousal_mean, arousal_std\r\n2,3.1,0.94,3,0.63\r\n3,3.5,1.75,3.3,1.62\r\n"
        b"5,6.2,1.1,5.1,1.3\r\n")
    (root / DEAM_SONG_LEVEL / "static_annotations_averaged_songs_2000_2058.csv").write_bytes(
        b"song_id, valence_mean, valence_std, valence_ max_mean, arousal_mean, arousal_std\r\n"
        b"2001,3.2,0.98,5.0,6.6,0.8\r\n")
    (root / DEAM_DYNAMIC).mkdir(parents=True)
    header = "song_id, " + ", ".join(f"sample_{15000 + 500 * i}ms" for i in range(4))
    for dim in ("valence", "arousal"):
        rows = [f"{sid}," + ",".join(f"{0.1 * sid * (i + 1) % 1:.3f}" for i in range(4)) for sid in (2, 3, 5)]
        (root / DEAM_DYNAMIC / f"{dim}.csv").write_text("\n".join([header, *rows, "2001,0.1,0.2,,"]) + "\n")
    for sid in (2, 3, 5, 2001):
        _tiny_mp3(root / "DEAM_audio" / "MEMD_audio" / f"{sid}.mp3", sid % 5)


def write_emomusic(root: Path) -> None:
    """EmoMusic's files: arousal-first static file, quoted and tab-padded songs_info.csv, 2 Hz files."""
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "static_annotations.csv").write_text(
        "song_id,mean_arousal,std_arousal,mean_valence,std_valence\n2,3.1,0.99443,3,0.66667\n3,7,2,5,1\n4,5,1,5,1\n")
    (root / "songs_info.csv").write_text('"song_id","file_name","Artist","Mediaeval 2013 set"\n'
                                         '2,"\t2.mp3","A\t","development"\n3,"\t3.mp3","B\t","\tevaluation\t"\n')
    header = "song_id," + ",".join(f"sample_{ms}ms" for ms in (15000, 15500, 16000))
    (root / "annotations" / "valence_cont_average.csv").write_text(f"{header}\n2,0.1,0.2,0.3\n3,-0.1,-0.2,-0.3\n")
    (root / "annotations" / "arousal_cont_average.csv").write_text(f"{header}\n2,0.4,0.5,0.6\n3,0.7,0.8,0.9\n")
    for sid in (2, 3, 4):
        _tiny_mp3(root / "clips_45seconds" / f"{sid}.mp3", sid)


def write_label_csv(root: Path) -> None:
    """A generic label CSV: relative paths, a split column, spreads."""
    root.mkdir(parents=True, exist_ok=True)
    rows = ["path,valence,arousal,split,valence_std,arousal_std"]
    for i in range(6):
        _tiny_mp3(root / "audio" / f"song{i}.mp3", i)
        rows.append(f"audio/song{i}.mp3,{2 + i},{8 - i},{['train', 'validation', 'test'][i % 3]},0.5,0.7")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def write_manifest_seed(root: Path) -> None:
    """A manifest.csv as prepare.py writes it, from the label CSV seed."""
    from sentio.data.sources import DataSourceSpec, prepare_manifest

    write_label_csv(root)
    prepare_manifest(DataSourceSpec(**_label_spec(root)), output_dir=root, progress=False)


def _label_spec(root: Path) -> dict[str, Any]:
    return {"data": str(root / "labels.csv"), "label_scale": "1-9", "valence_std_column": "valence_std",
            "arousal_std_column": "arousal_std"}


ANNOTATION_TARGETS = {
    target.name: target
    for target in (
        AnnotationTarget("deam", write_deam, (f"{DEAM_SONG_LEVEL}/static_annotations_averaged_songs_1_2000.csv",
                                              f"{DEAM_SONG_LEVEL}/static_annotations_averaged_songs_2000_2058.csv",
                                              f"{DEAM_DYNAMIC}/valence.csv", f"{DEAM_DYNAMIC}/arousal.csv"),
                         lambda root: {"data": str(root)}),
        AnnotationTarget("emomusic", write_emomusic, ("annotations/static_annotations.csv", "songs_info.csv",
                                                      "annotations/valence_cont_average.csv",
                                                      "annotations/arousal_cont_average.csv"),
                         lambda root: {"data": str(root)}),
        AnnotationTarget("label_csv", write_label_csv, ("labels.csv",), _label_spec),
        AnnotationTarget("manifest", write_manifest_seed, ("manifest.csv",),
                         lambda root: {"data": str(root / "manifest.csv")}),
        # PMEmo: AnnotationTarget("pmemo", write_pmemo, ("annotations/static_annotations.csv", ...),
        #                         lambda root: {"data": str(root)}) once its reader is in sentio.data.
    )
}


def read_annotations(case_dir: Path, target: str) -> str:
    """An annotation case: the mutated source through prepare_manifest (readers, audio checks, manifest)."""
    from sentio.data.sources import DataSourceSpec, prepare_manifest

    spec = DataSourceSpec(**ANNOTATION_TARGETS[target].spec(case_dir))
    manifest, report = prepare_manifest(spec, output_dir=case_dir / "out", progress=False)
    return f"{len(manifest)} rows, {report['rows_skipped']} skipped"


# ---- the campaign --------------------------------------------------------------------------------


@dataclass
class Tally:
    counts: dict[str, Counter] = field(default_factory=dict)
    failures: list[tuple[str, str, Outcome]] = field(default_factory=list)
    peak_mb: float = 0.0
    slowest: float = 0.0

    def add(self, group: str, case: str, outcome: Outcome) -> None:
        self.counts.setdefault(group, Counter())[outcome.outcome] += 1
        self.peak_mb = max(self.peak_mb, outcome.peak_mb)
        self.slowest = max(self.slowest, outcome.seconds)
        if outcome.outcome in FAILURES:
            self.failures.append((group, case, outcome))

    def table(self) -> str:
        lines = [f"| {'cases':<20} | " + " | ".join(f"{o:>9}" for o in OUTCOMES) + " | total |",
                 "|" + "---|" * (len(OUTCOMES) + 2)]
        for group, counts in sorted(self.counts.items()):
            lines.append(f"| {group:<20} | " + " | ".join(f"{counts[o]:>9}" for o in OUTCOMES)
                         + f" | {sum(counts.values())} |")
        return "\n".join(lines)


def _keep(keep: Path | None, source: Path, name: str) -> Path | None:
    """Copy a failing case under `keep` (a file or a case folder); its path there."""
    if keep is None:
        return None
    target = keep / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("out"))
    else:
        shutil.copyfile(source, target)
    return target


def fuzz_audio(args: argparse.Namespace, work: Path, tally: Tally, keep: Path | None) -> None:
    from sentio.inference import EmotionPredictor

    model_dir = args.model_dir or str(build_tiny_run(work / "tiny-run"))
    limits = {"max_duration": args.max_duration} if args.max_duration else {}  # older Sentio versions lack it
    predictor = EmotionPredictor.from_pretrained(model_dir, device="cpu", **limits)
    seeds = write_audio_seeds(work / "seeds")
    kinds = sorted(seeds)
    for kind in kinds:  # the seeds themselves must predict; once here first, so that the children start warm
        predictor.predict(seeds[kind])
        outcome = run_isolated(lambda p=seeds[kind]: str(predictor.predict(p)["num_windows"]), args.timeout,
                               args.memory_mb << 20)
        if outcome.outcome != "ok":
            raise SystemExit(f"fuzz.py: the {kind} seed itself gives {outcome.outcome}: {outcome.detail[-500:]}")
    case_path = work / "case"
    for index in range(args.audio_cases):
        rng = np.random.default_rng([args.seed, 0, index])
        kind = kinds[index % len(kinds)]
        data, names = mutate(seeds[kind].read_bytes(), kind, BYTE_MUTATORS, rng)
        path = case_path.with_suffix(seeds[kind].suffix)
        path.write_bytes(data)
        outcome = run_isolated(lambda: f"{predictor.predict(path)['num_windows']} windows", args.timeout,
                               args.memory_mb << 20)
        case = f"{kind}-{'+'.join(names)}-{hashlib.sha1(data).hexdigest()[:10]}{path.suffix}"
        tally.add(f"audio {kind}", case, outcome)
        if outcome.outcome in FAILURES:
            _keep(keep, path, f"audio/{case}")
        _progress(index + 1, args.audio_cases, "audio", tally)
        path.unlink()


def fuzz_annotations(args: argparse.Namespace, work: Path, tally: Tally, keep: Path | None) -> None:
    targets = sorted(ANNOTATION_TARGETS)
    for name in targets:  # the seeds must read; once here first, so that the children start warm
        seed = work / "annotation-seeds" / name
        ANNOTATION_TARGETS[name].write(seed)
        read_annotations(seed, name)
        outcome = run_isolated(lambda s=seed, n=name: read_annotations(s, n), args.timeout, args.memory_mb << 20)
        if outcome.outcome != "ok":
            raise SystemExit(f"fuzz.py: the {name} seed itself gives {outcome.outcome}: {outcome.detail[-800:]}")
        shutil.rmtree(seed / "out", ignore_errors=True)
    for index in range(args.annotation_cases):
        rng = np.random.default_rng([args.seed, 1, index])
        name = targets[index % len(targets)]
        target = ANNOTATION_TARGETS[name]
        case_dir = work / "annotation-case"
        shutil.rmtree(case_dir, ignore_errors=True)
        shutil.copytree(work / "annotation-seeds" / name, case_dir)
        relative = target.files[int(rng.integers(0, len(target.files)))]
        data, names = mutate((case_dir / relative).read_bytes(), "csv", CSV_MUTATORS, rng)
        (case_dir / relative).write_bytes(data)
        outcome = run_isolated(lambda: read_annotations(case_dir, name), args.timeout, args.memory_mb << 20)
        case = f"{name}-{Path(relative).stem[:24]}-{'+'.join(names)}-{hashlib.sha1(data).hexdigest()[:10]}"
        tally.add(f"annotations {name}", case, outcome)
        if outcome.outcome in FAILURES:
            (case_dir / "case.json").write_text(json.dumps({"target": name, "mutated": relative, "mutators": names}) + "\n")
            _keep(keep, case_dir, f"annotations/{case}")
        _progress(index + 1, args.annotation_cases, "annotations", tally)


def _progress(done: int, total: int, what: str, tally: Tally) -> None:
    if done % 100 == 0 or done == total:
        failed = len(tally.failures)
        print(f"fuzz.py: {what} {done}/{total}, {failed} failures so far", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fuzz.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio_cases", type=int, default=2000)
    parser.add_argument("--annotation_cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the mutations (a campaign is reproducible).")
    parser.add_argument("--model_dir", default=None, help="A run to predict with (default: a tiny run built here).")
    parser.add_argument("--timeout", type=float, default=30.0, help="Seconds one case may take before it is killed.")
    parser.add_argument("--memory_mb", type=int, default=1024,
                        help="Address space a case may map beyond the warm parent's (RLIMIT_AS).")
    parser.add_argument("--max_duration", type=float, default=None, help="The predictor's --max_duration.")
    parser.add_argument("--keep", default=None, help="Copy every failing case under this folder (e.g. tests/fuzz_cases).")
    parser.add_argument("--workdir", default=None, help="Where seeds and cases are written (default: a temporary folder).")
    parser.add_argument("--report", default=None, help="Also write the counts and failures as JSON here.")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the readers' warnings about skipped rows, once per case
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)
    keep = Path(args.keep) if args.keep else None
    tally = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sentio-fuzz-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.audio_cases:
            fuzz_audio(args, work, tally, keep)
        if args.annotation_cases:
            fuzz_annotations(args, work, tally, keep)
    wall = time.monotonic() - started
    print(tally.table())
    total = sum(sum(c.values()) for c in tally.counts.values())
    print(f"\n{total} cases in {wall:.0f} s; slowest case {tally.slowest:.1f} s; largest child peak RSS "
          f"{tally.peak_mb:.0f} MB (limits: {args.timeout:g} s, +{args.memory_mb} MB address space)")
    for group, case, outcome in tally.failures:
        last = outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else ""
        print(f"FAILED {group} {case}: {outcome.outcome}: {last}")
    if args.report:
        Path(args.report).write_text(json.dumps({
            "counts": {g: dict(c) for g, c in tally.counts.items()}, "seconds": wall,
            "failures": [{"group": g, "case": c, "outcome": o.outcome, "detail": o.detail} for g, c, o in tally.failures],
        }, indent=2) + "\n")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a clone without installing
    sys.exit(main())
