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


@pytest.mark.parametrize("channels,sr", [(1, 44100), (2, 22050), (2, 44100)])
def test_mp3_blocks_equal_one_whole_read(tmp_path, channels, sr):
    """libsndfile's MP3 decoder gives wrong samples after the first of several reads (mono files and
    22.05 kHz stereo at any block size): an MP3 that fits the bound is decoded in one read, so its
    blocks, at any block size, are soundfile.read's samples exactly."""
    import soundfile as sf

    from sentio.features.audio import BLOCK_FRAMES, AudioBlocks, _downmix, load_audio

    path = write_audio(tmp_path / "long.mp3", seconds=3 * BLOCK_FRAMES / sr, sr=sr, channels=channels, seed=4)
    whole, file_sr = sf.read(path, dtype="float32", always_2d=True)
    assert file_sr == sr and whole.shape[0] > 2 * BLOCK_FRAMES
    np.testing.assert_array_equal(load_audio(path), _downmix(whole))
    small = np.concatenate(list(AudioBlocks(path, block_frames=5000)))
    np.testing.assert_array_equal(small, _downmix(whole))


@pytest.mark.parametrize("channels,sr", [(1, 44100), (2, 22050), (2, 48000)])
def test_a_long_mp3_streams_in_blocks_equal_to_one_whole_read_without_ffmpeg(tmp_path, monkeypatch, channels, sr):
    """Past the one-read bound an MP3 is read by libsndfile block by block, each read from a seek
    before the block (its damaged start dropped): the samples of one whole read, to float32
    rounding, at any block size, and no ffmpeg needed."""
    import soundfile as sf

    from sentio.features import audio, ffmpeg_pipe

    path = write_audio(tmp_path / "long.mp3", seconds=4.0, sr=sr, channels=channels, seed=2)
    with sf.SoundFile(path) as sound:
        sound.seek(0)
        whole = audio._downmix(sound.read(dtype="float32", always_2d=True))
    monkeypatch.setattr(audio, "MP3_WHOLE_READ_VALUES", sr)  # 1 s: this file is "long"
    monkeypatch.setattr(ffmpeg_pipe, "available", lambda: False)
    for block_frames in (3000, 20000, audio.BLOCK_FRAMES):
        blocks = list(audio.AudioBlocks(path, block_frames=block_frames))
        assert len(blocks) == -(-whole.size // min(block_frames, audio.BLOCK_SAMPLES // channels))
        streamed = np.concatenate(blocks)
        assert streamed.shape == whole.shape
        assert np.abs(streamed - whole).max() <= 2e-7  # plain block reads are off by up to 0.98
    resampled = np.concatenate(list(audio.AudioBlocks(path, 16000, block_frames=3000)))
    np.testing.assert_allclose(audio.load_audio(path, 16000), resampled, atol=1e-6)


def test_a_long_mp3_whose_seek_lands_elsewhere_is_refused_in_one_line(tmp_path, monkeypatch):
    """The overlap decoded again must equal the previous block's end: a seek that lands on other
    samples (simulated: 300 frames late) is one line naming the file, never wrong audio."""
    import soundfile as sf

    from sentio.features import audio

    path = write_audio(tmp_path / "long.mp3", seconds=4.0, sr=44100, channels=2, seed=3)
    monkeypatch.setattr(audio, "MP3_WHOLE_READ_VALUES", 44100)
    true_seek = sf.SoundFile.seek
    monkeypatch.setattr(sf.SoundFile, "seek", lambda self, frames, *a: true_seek(self, frames + 300 * (frames > 0), *a))
    with pytest.raises(AudioError, match=r"long.mp3: libsndfile cannot decode this long MP3 block by block .* FLAC$") as err:
        audio.load_audio(path)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg writes the header-less MP3 and decodes it")
def test_a_vbr_mp3_without_a_length_header_decodes_to_its_end(tmp_path):
    """libsndfile takes a header-less MP3's length from its first frame and stops there (a third of
    this file); such a file goes to ffmpeg, which decodes to the end."""
    import subprocess

    import soundfile as sf

    source = write_audio(tmp_path / "source.wav", seconds=12.0, sr=44100, channels=2, seed=6)
    path = tmp_path / "old_rip.mp3"
    made = subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c:a", "libmp3lame", "-q:a", "4",
                           "-write_xing", "0", str(path)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("this ffmpeg has no MP3 encoder (libmp3lame)")
    with sf.SoundFile(path) as sound:
        guessed = sound.frames / sound.samplerate
    wave = load_audio(path)
    assert abs(wave.size / 44100 - 12.0) < 0.1, (wave.size / 44100, guessed)
