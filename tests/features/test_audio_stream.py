"""Streaming decode: blocks equal the whole-file decode, windows equal the whole-file extractor's,
and memory stays flat as files grow."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sentio.features.audio import AudioError, audio_blocks, load_audio
from sentio.features.extractor import SentioFeatureExtractor
from sentio.inference.stream import WindowStream
from tests.conftest import write_audio

# name -> (seconds, rate, channels, format): every libsndfile format, odd rates and lengths
FILES = {
    "long_44k.wav": (5.3, 44100, 2, "WAV"),
    "stereo_22k.flac": (4.1, 22050, 2, "FLAC"),
    "mono_48k.ogg": (4.6, 48000, 1, "OGG"),
    "stereo_44k.mp3": (6.1, 44100, 2, "MP3"),
    "native_16k.wav": (3.37, 16000, 1, "WAV"),
    "short_8k.wav": (0.3, 8000, 1, "WAV"),  # shorter than a window: one padded window
    "tiny_8k.flac": (0.01, 8000, 1, "FLAC"),  # shorter than one fbank frame
}
EXTRACTORS = {
    "fbank": SentioFeatureExtractor("fbank", max_length=64, num_mel_bins=32),
    "fbank overlapping": SentioFeatureExtractor("fbank", max_length=100, num_mel_bins=32, hop_seconds=0.37),
    "fbank on a start grid": SentioFeatureExtractor("fbank", max_length=100, num_mel_bins=32, hop_seconds=1.2,
                                                    start_grid_seconds=0.5),  # a dynamic model's windows
    "waveform": SentioFeatureExtractor("waveform", window_seconds=0.5, hop_seconds=0.3),
    "mel_image": SentioFeatureExtractor("mel_image", image_size=32, window_seconds=0.7),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stream")
    return {name: write_audio(root / name, s, sr, ch, seed=i, fmt=fmt) for i, (name, (s, sr, ch, fmt)) in enumerate(FILES.items())}


@pytest.mark.parametrize("name", FILES)
def test_blocks_join_to_the_whole_file_decode(files, name):
    for rate in (None, 16000, 22050):
        whole = load_audio(files[name], rate)
        for block_frames in (1000, 65536):
            blocks = list(audio_blocks(files[name], rate, block_frames))
            np.testing.assert_array_equal(np.concatenate(blocks), whole)


@pytest.mark.parametrize("kind", EXTRACTORS)
@pytest.mark.parametrize("name", FILES)
def test_stream_windows_equal_the_whole_file_windows(files, name, kind):
    extractor = EXTRACTORS[kind]
    whole = extractor(str(files[name]))
    feature = extractor.feature_name
    for chunk_windows, block_frames in ((1, 4096), (3, 1000)):  # chunks and blocks cut windows anywhere
        stream = WindowStream(extractor, files[name], chunk_windows=chunk_windows, block_frames=block_frames)
        chunks = list(stream)
        assert all(len(c["start"]) <= chunk_windows for c in chunks)
        got = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
        np.testing.assert_array_equal(got["start"], whole["start"])  # the end-aligned last window included
        np.testing.assert_array_equal(got["length"], whole["length"])
        np.testing.assert_allclose(got[feature], whole[feature], atol=1e-5, rtol=0)
        assert stream.starts == [float(s) for s in whole["start"]]
        assert stream.duration == pytest.approx(len(load_audio(files[name], extractor.sampling_rate)) / extractor.sampling_rate)


def test_bad_files_give_the_whole_file_decoders_errors(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.wav").write_text("not audio at all\n")
    (tmp_path / "corrupt.mp3").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2] * 100, dtype=np.float32), 8000, subtype="FLOAT")
    for name in ("empty.wav", "notes.wav", "corrupt.mp3", "nan.wav", "missing.wav"):
        with pytest.raises(AudioError) as whole:
            load_audio(tmp_path / name, 16000)
        with pytest.raises(AudioError) as streamed:
            list(WindowStream(EXTRACTORS["fbank"], tmp_path / name))
        assert str(streamed.value) == str(whole.value)


def test_a_stream_damaged_part_way_is_one_audio_error(tmp_path):
    good = write_audio(tmp_path / "good.mp3", 8.0, 44100, 2, fmt="MP3").read_bytes()
    damaged = tmp_path / "damaged.mp3"
    junk = np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    damaged.write_bytes(good[: len(good) // 2] + junk + good[len(good) // 2 :])
    with pytest.raises(AudioError, match="damaged.mp3: corrupt or not an audio file"):
        list(WindowStream(EXTRACTORS["fbank"], damaged))


def _tone(path: Path, minutes: int, rate: int = 8000) -> Path:
    """A long WAV written ten seconds at a time (never whole in memory)."""
    block = (0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * rate) / rate)).astype(np.float32)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as sink:
        for _ in range(minutes * 6):
            sink.write(block)
    return path


def _peak_bytes(extractor: SentioFeatureExtractor, path: Path) -> tuple[int, int]:
    """(windows, peak bytes numpy allocated) while streaming every window of `path`."""
    tracemalloc.start()
    try:
        windows = sum(len(chunk["start"]) for chunk in WindowStream(extractor, path))
        return windows, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_from_ten_minutes_to_an_hour(tmp_path):
    # 10 s waveform windows at 16 kHz from an 8 kHz file: the resampler streams too
    extractor = SentioFeatureExtractor("waveform", window_seconds=10.0)
    short_windows, short_peak = _peak_bytes(extractor, _tone(tmp_path / "ten.wav", 10))
    long_windows, long_peak = _peak_bytes(extractor, _tone(tmp_path / "hour.wav", 60))
    assert (short_windows, long_windows) == (60, 360)
    chunk_bytes = 8 * 160_000 * 4  # one chunk of eight windows
    assert long_peak - short_peak < 100_000, (short_peak, long_peak)  # the start list only
    assert long_peak < 6 * chunk_bytes  # a chunk, its normalisation and the decoded tail; the hour is 230 MB
