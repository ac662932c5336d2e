"""Decoding: the one-line reasons a file cannot be used as audio."""

from __future__ import annotations

import shutil

import numpy as np

import pytest

from sentio.features.audio import AudioError, audio_info, load_audio
from sentio.errors import DataError
from tests.conftest import write_audio


def test_a_text_file_is_not_audio_and_gets_no_ffmpeg_advice(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes, not a song\n" * 20)
    for read in (load_audio, audio_info):
        with pytest.raises(AudioError) as err:
            read(text)
        message = str(err.value)
        assert message == f"{text}: not an audio file (no decoder here reads it)"
    assert isinstance(err.value, DataError) and isinstance(err.value, ValueError)


def test_a_damaged_mp3_is_corrupt_not_an_ffmpeg_problem(tmp_path):
    bad = tmp_path / "song.mp3"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(AudioError, match=r"song.mp3: corrupt or not an audio file \(cannot decode it\)$"):
        load_audio(bad)


@pytest.mark.skipif(shutil.which("ffmpeg") is not None, reason="ffmpeg is installed: M4A decodes")
def test_m4a_without_ffmpeg_says_to_install_it(tmp_path):
    m4a = tmp_path / "song.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x18ftypM4A " + bytes(64))
    with pytest.raises(AudioError, match="this format needs ffmpeg"):
        load_audio(m4a)


def test_good_audio_decodes_mono_at_the_asked_rate(tmp_path):
    path = write_audio(tmp_path / "a.flac", seconds=1.0, sr=22050, channels=2)
    wave = load_audio(path, 16000)
    assert wave.ndim == 1 and abs(len(wave) - 16000) <= 1 and wave.dtype.name == "float32"


def test_mp3_read_in_blocks_equals_one_whole_read(tmp_path):
    """libsndfile's MP3 decoder gives other samples near a read that cuts an MP3 frame: blocks are
    whole frames, so the streamed decode is the whole-file decode sample for sample."""
    import soundfile as sf

    from sentio.features.audio import BLOCK_FRAMES, _downmix, load_audio

    path = write_audio(tmp_path / "long.mp3", seconds=3 * BLOCK_FRAMES / 44100, sr=44100, channels=2, seed=4)
    whole, sr = sf.read(path, dtype="float32", always_2d=True)
    assert sr == 44100 and whole.shape[0] > 2 * BLOCK_FRAMES
    np.testing.assert_array_equal(load_audio(path), _downmix(whole))
