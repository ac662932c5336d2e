"""Files from strangers: implausible headers are refused before anything is allocated, memory stays
bounded by a block whatever the header claims, a file that decodes to nothing is one line, and
`max_duration` cuts long audio at the same samples the whole decode gives."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sentio.features.audio import AudioBlocks, AudioError, audio_info, load_audio
from sentio.features.extractor import SentioFeatureExtractor
from sentio.inference.stream import WindowStream
from tests.conftest import REPO, write_audio

EXTRACTOR = SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32)


def _patched(source: Path, target: Path, offset: int, value: bytes) -> Path:
    data = bytearray(source.read_bytes())
    data[offset : offset + len(value)] = value
    target.write_bytes(bytes(data))
    return target


def _noise_wav(path: Path, frames: int, rate: int = 44100) -> Path:
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(frames)).astype(np.float32), rate, subtype="PCM_16")
    return path


def _peak_rss_mb(path: Path) -> tuple[float, str]:
    """(peak resident MB, outcome) of a fresh process that streams `path` into windows, under a 6 GB
    address-space limit (the 1 Hz file asked for 4 GB in one array before the header check)."""
    code = (
        "import json, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))\n"
        "from sentio.features.audio import AudioError\n"
        "from sentio.features.extractor import SentioFeatureExtractor\n"
        "from sentio.inference.stream import WindowStream\n"
        "extractor = SentioFeatureExtractor('fbank', max_length=64, num_mel_bins=32)\n"
        "try:\n"
        "    outcome = f'{sum(len(c[\"start\"]) for c in WindowStream(extractor, sys.argv[1]))} windows'\n"
        "except AudioError as exc:\n"
        "    outcome = exc.reason\n"
        "print(json.dumps([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, outcome]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    peak, outcome = json.loads(done.stdout.strip().splitlines()[-1])
    return peak, outcome


@pytest.mark.slow
def test_a_1_hz_header_is_refused_before_allocating(tmp_path):
    good = _noise_wav(tmp_path / "good.wav", 132_000)  # 264 KB, 3 s at 44.1 kHz
    bomb = _patched(good, tmp_path / "bomb.wav", 24, struct.pack("<II", 1, 2))  # rate 1 Hz, byte rate 2
    assert bomb.stat().st_size == 264_044 and sf.info(bomb).samplerate == 1
    for read in (load_audio, lambda p: load_audio(p, 16000), audio_info, lambda p: list(WindowStream(EXTRACTOR, p))):
        with pytest.raises(AudioError, match=r"bomb.wav: the header claims a sample rate of 1 Hz, outside"):
            read(bomb)
    base_peak, base_outcome = _peak_rss_mb(good)
    bomb_peak, bomb_outcome = _peak_rss_mb(bomb)
    assert base_outcome.endswith("windows") and "sample rate of 1 Hz" in bomb_outcome
    assert bomb_peak < base_peak + 50, (base_peak, bomb_peak)  # it was over 4 GB


@pytest.mark.parametrize("offset, value, reason", [
    (22, struct.pack("<H", 300), r"the header claims 300 channels \(at most 64 are read\)"),
    (24, struct.pack("<I", 0xFFFFFFFF), "the header claims a sample rate of 4294967295 Hz"),
    (24, struct.pack("<I", 3_000_000), "the header claims a sample rate of 3000000 Hz"),
    (24, struct.pack("<I", 100), "the header claims a sample rate of 100 Hz"),
    # libsndfile refuses 0 channels itself; ffmpeg, where installed, reads the header and it is refused
    (22, struct.pack("<H", 0), "(corrupt or not an audio file|the header claims 0 channels)"),
])  # fmt: skip
def test_implausible_wav_headers_are_one_line(tmp_path, offset, value, reason):
    bad = _patched(_noise_wav(tmp_path / "good.wav", 8000), tmp_path / "bad.wav", offset, value)
    for read in (load_audio, lambda p: list(WindowStream(EXTRACTOR, p))):
        with pytest.raises(AudioError) as error:
            read(bad)
        assert re.match(f"{re.escape(str(bad))}: {reason}", str(error.value)) and "\n" not in str(error.value)


def test_a_frame_count_the_file_cannot_hold_is_refused(tmp_path):
    flac = write_audio(tmp_path / "good.flac", 1.0, 44100)
    # STREAMINFO's 36-bit total sample count (bytes 21..25 after "fLaC" and the block header): all ones
    data = bytearray(flac.read_bytes())
    data[21] |= 0x0F
    data[22:26] = b"\xff" * 4
    forged = tmp_path / "forged.flac"
    forged.write_bytes(bytes(data))
    for read in (audio_info, load_audio, lambda p: list(WindowStream(EXTRACTOR, p))):
        with pytest.raises(AudioError, match=r"forged.flac: the header claims 68719476735 frames .* more than its \d+ bytes"):
            read(forged)


def test_a_file_that_decodes_to_no_samples_is_one_line(tmp_path):
    one = tmp_path / "one.wav"
    sf.write(one, np.array([0.5], np.float32), 48000, subtype="PCM_16")  # one frame: none left at 16 kHz
    for read in (lambda p: load_audio(p, 16000), lambda p: list(WindowStream(EXTRACTOR, p))):
        with pytest.raises(AudioError, match=r"one.wav: no audio samples at 16000 Hz \(the file holds 1 frames\)"):
            read(one)
    header_only = tmp_path / "header_only.wav"
    header_only.write_bytes(one.read_bytes()[:44])  # the header and no data at all
    with pytest.raises(AudioError, match="no audio samples"):
        list(WindowStream(EXTRACTOR, header_only))


def test_upsampling_blocks_stay_a_block_whatever_the_ratio(tmp_path):
    low = _noise_wav(tmp_path / "low.wav", 4000 * 60, rate=4000)  # the lowest rate read, 12x up to 48 kHz
    blocks = AudioBlocks(low, 48000)
    sizes = [len(b) for b in blocks]
    assert sum(sizes) == len(load_audio(low, 48000)) == 48000 * 60
    assert max(sizes) <= 1.1 * blocks.block_frames, max(sizes)  # unbounded by the ratio: 12 x 65536 before


def test_max_duration_cuts_at_the_whole_decodes_samples(tmp_path):
    song = write_audio(tmp_path / "song.mp3", 6.0, 44100, 2, fmt="MP3")
    whole = load_audio(song, 16000)
    for block_frames in (1000, 65536):
        blocks = AudioBlocks(song, 16000, block_frames, max_duration=2.5)
        np.testing.assert_array_equal(np.concatenate(list(blocks)), whole[:40000])
        assert blocks.cut
    np.testing.assert_array_equal(load_audio(song, 16000, max_duration=2.5), whole[:40000])
    longer = AudioBlocks(song, 16000, max_duration=60)
    np.testing.assert_array_equal(np.concatenate(list(longer)), whole)
    assert not longer.cut
    stream = WindowStream(EXTRACTOR, song, max_duration=2.5)
    windows = list(stream)
    expected = EXTRACTOR(whole[:40000])
    np.testing.assert_array_equal(np.concatenate([w["start"] for w in windows]), expected["start"])
    assert stream.cut and stream.duration == 2.5
