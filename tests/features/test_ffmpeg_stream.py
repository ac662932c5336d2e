"""M4A/AAC streams through an ffmpeg child block by block: bounded memory, same samples as a whole
decode, the child cleaned up however the reading ends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sentio.features.audio import AudioError, audio_blocks, load_audio

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
                                reason="needs ffmpeg and ffprobe")


def _m4a(path, seconds: float, rate: int = 8000) -> str:
    """A mono AAC file: a tone, then silence (8 kHz and a low bit rate encode fast)."""
    tone = min(seconds, 5.0)
    graph = (f"sine=frequency=440:sample_rate={rate}:duration={tone}[a];"
             f"anullsrc=sample_rate={rate}:channel_layout=mono,atrim=duration={seconds - tone}[b];"
             "[a][b]concat=n=2:v=0:a=1")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-c:a", "aac", "-b:a", "16k",
                    "-ac", "1", str(path)], check=True, timeout=120)
    return str(path)


def _children() -> list[int]:
    pid = os.getpid()
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


@pytest.mark.slow
def test_blocks_join_to_the_whole_decode_and_are_resampled(tmp_path):
    path = _m4a(tmp_path / "song.m4a", 7.0)
    whole = load_audio(path, 16000)
    joined = np.concatenate(list(audio_blocks(path, 16000, block_frames=4096)))
    assert joined.dtype == np.float32 and abs(joined.size / 16000 - 7.0) < 0.1
    np.testing.assert_array_equal(joined, whole)
    assert np.abs(whole[: 16000 * 4]).max() > 0.1 and np.abs(whole[16000 * 6 :]).max() < 0.01  # tone, then silence


@pytest.mark.slow
def test_the_child_is_killed_when_reading_stops_early(tmp_path):
    path = _m4a(tmp_path / "song.m4a", 30.0)
    before = set(_children())
    blocks = audio_blocks(path, None, block_frames=1024)
    next(blocks)
    assert len(set(_children()) - before) == 1  # the ffmpeg child, blocked on a full pipe
    blocks.close()
    assert set(_children()) - before == set()  # killed and reaped: no zombie left


def test_a_damaged_m4a_is_one_line(tmp_path):
    bad = tmp_path / "song.m4a"
    bad.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(4096))
    with pytest.raises(AudioError, match=r"song.m4a: "):
        list(audio_blocks(bad, 16000))
    with pytest.raises(AudioError, match=r"song.m4a: "):
        load_audio(bad)


_PEAK = """
import json, resource, sys, time
from sentio.features.audio import audio_blocks
blocks = audio_blocks(sys.argv[1], 16000)
n = next(blocks).size
time.sleep(3)  # a consumer slower than the decoder (a model): a reader that runs ahead would queue the file
n += sum(b.size for b in blocks)
print(json.dumps({"samples": n, "self_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "child_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def _peak(path: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _PEAK, path], capture_output=True, text=True, timeout=300,
                         check=True, env=os.environ)
    return json.loads(out.stdout)


@pytest.mark.slow
def test_an_hour_of_m4a_needs_no_more_memory_than_ten_minutes(tmp_path):
    short, long = _m4a(tmp_path / "ten.m4a", 600.0), _m4a(tmp_path / "hour.m4a", 3600.0)
    p10, p60 = _peak(short), _peak(long)
    assert abs(p60["samples"] - 3600 * 16000) < 16000 and abs(p10["samples"] - 600 * 16000) < 16000
    # A whole decode of the hour would add 3600 s x 16 kHz x 4 B = 230 MB, a reader thread that
    # queues ffmpeg's output while the consumer sleeps 3600 s x 8 kHz x 2 B = 58 MB; streamed
    # through the pipe, both peaks are the interpreter's plus a block or two.
    slack_kb = 8 * 1024
    assert p60["self_kb"] <= p10["self_kb"] + slack_kb, (p10, p60)
    assert p60["child_kb"] <= p10["child_kb"] + slack_kb, (p10, p60)
