"""Library-scale prediction: threads and shared batches give EmotionPredictor's numbers, outputs
resume after a kill, tags go into the files without touching their audio, memory stays flat."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
import torch

from sentio.features.audio import AudioError
from sentio.features.extractor import SentioFeatureExtractor
from sentio.inference import EmotionPredictor
from sentio.inference.batch import predict_library
from sentio.inference.tags import tag_values, write_tags
from sentio.inference.writers import FileKey, ResultLog
from sentio.models import build_model
from tests.conftest import REPO, write_audio
from tests.helpers import CALIBRATED, run_python
from tests.tiny import TINY

@pytest.fixture(scope="module")
def predictor(run) -> EmotionPredictor:
    return EmotionPredictor.from_pretrained(run, device="cpu", batch_size=7)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Twelve files of different lengths, rates and formats."""
    root = tmp_path_factory.mktemp("library")
    formats = ["WAV", "FLAC", "OGG", "MP3"]
    for i in range(12):
        fmt = formats[i % 4]
        write_audio(root / f"song{i:02d}.{fmt.lower()}", 0.4 + 0.7 * i, (8000, 22050, 44100)[i % 3], 1 + i % 2, seed=i, fmt=fmt)
    return root


def _cli(*args: str) -> subprocess.CompletedProcess:
    return run_python(["predict.py", *args], timeout=180)


def test_threads_and_shared_batches_give_the_predictors_numbers(predictor, folder):
    files = sorted(str(p) for p in folder.iterdir())
    expected = {f: predictor.predict(f, timeline=True) for f in files}
    for workers in (1, 3):
        outcomes = list(predict_library(predictor, files, timeline=True, num_workers=workers))
        assert sorted(o.path for o in outcomes) == files
        for outcome in outcomes:
            want = expected[outcome.path]
            assert outcome.error is None and outcome.result.keys() == want.keys()
            np.testing.assert_allclose([outcome.result["valence"], outcome.result["arousal"]],
                                       [want["valence"], want["arousal"]], atol=1e-5)
            assert [w["start"] for w in outcome.result["timeline"]] == [w["start"] for w in want["timeline"]]
            assert outcome.duration == pytest.approx(sf.info(outcome.path).duration, abs=1e-3)


def test_a_bad_file_among_good_ones_is_reported_and_the_rest_go_on(predictor, folder, tmp_path):
    bad = tmp_path / "corrupt.mp3"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files = [str(bad), *sorted(str(p) for p in folder.iterdir())[:3], str(tmp_path / "missing.flac")]
    outcomes = {o.path: o for o in predict_library(predictor, files, num_workers=2)}
    assert sorted(outcomes) == sorted(files)
    assert isinstance(outcomes[str(bad)].error, AudioError) and outcomes[str(bad)].result is None
    assert outcomes[str(tmp_path / "missing.flac")].error.reason == "file not found"
    assert all(outcomes[f].result is not None for f in files[1:4])


def test_leaving_early_stops_the_threads(predictor, folder):
    before = set(threading.enumerate())
    stream = predict_library(predictor, sorted(str(p) for p in folder.iterdir()), num_workers=3)
    next(stream)
    assert len(set(threading.enumerate()) - before) == 3
    stream.close()  # what Ctrl-C or a consumer that stops early does
    assert set(threading.enumerate()) == before


def _records(path: Path) -> list[dict]:
    """The file records of an output (CSV: the file rows, not the window rows)."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in csv.DictReader(path.open(newline="")) if not r.get("start")]


def _finished(output: Path) -> int:
    """How many files a running predict.py has written so far (a torn last one included)."""
    if not output.exists():
        return 0
    lines = output.read_text().splitlines()
    if output.suffix == ".jsonl":
        return len(lines)
    return sum(1 for line in lines[1:] if line.split(",")[1:2] == [""])


@pytest.mark.slow
def test_a_killed_run_resumes_without_redoing_or_repeating_files(run, tmp_path):
    music = tmp_path / "music"
    for i in range(16):  # long enough that the kill lands mid-folder
        write_audio(music / f"{i:02d}.wav", 8.0, 16000, seed=i)
    output = tmp_path / "out.csv"  # with a timeline: several rows per file, the hardest to cut cleanly
    args = ["--model_dir", str(run), str(music), "--output", str(output), "--timeline"]
    slow = ["--num_workers", "1", "--batch_size", "1"]
    process = subprocess.Popen([sys.executable, "predict.py", *args, *slow], cwd=REPO,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _finished(output) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    copy = tmp_path / "copy.csv"
    shutil.copy(output, copy)
    log = ResultLog(copy, timeline=True)  # what a rerun finds done; drops a record the kill cut short
    log.close()
    assert 3 <= len(log.done) < 16, len(log.done)  # killed mid-folder

    result = _cli(*args)
    assert result.returncode == 0, result.stderr
    assert f"(0 failed, {len(log.done)} already done)" in result.stderr.splitlines()[-1]
    assert output.read_bytes().startswith(copy.read_bytes())  # finished files are not redone
    records = _records(output)
    assert sorted(r["file"] for r in records) == sorted(str(p) for p in music.iterdir())  # each file exactly once
    for record in records:
        key = FileKey.of(record["file"])
        assert (int(record["size_bytes"]), int(record["mtime_ns"])) == (key.size_bytes, key.mtime_ns)
    rows = list(csv.DictReader(output.open(newline="")))
    assert len(rows) == sum(1 + int(r["num_windows"]) for r in records)  # every file's window rows, none torn
    log = ResultLog(output, timeline=True)
    log.close()
    assert len(log.done) == 16 and output.read_bytes().endswith(b"\n")


def test_a_record_cut_short_is_dropped_and_redone(tmp_path, predictor, folder):
    files = sorted(str(p) for p in folder.iterdir())[:3]
    results = {o.path: o.result for o in predict_library(predictor, files, timeline=True)}

    def write(output: Path, names: list[str]) -> bytes:
        log = ResultLog(output, timeline=True)
        for f in names:
            log.write(f, results[f], FileKey.of(f))
        log.close()
        return output.read_bytes()

    for suffix in (".jsonl", ".csv"):
        two, whole = write(tmp_path / f"two{suffix}", files[:2]), write(tmp_path / f"whole{suffix}", files)
        output = tmp_path / f"cut{suffix}"
        # a kill inside the last file's record: mid-line, before its newline, after its CSV file row
        cuts = [len(two) + 5, len(whole) - 1] + ([whole.index(b"\n", len(two)) + 1] if suffix == ".csv" else [])
        for cut in cuts:
            output.write_bytes(whole[:cut])
            log = ResultLog(output, timeline=True)
            log.close()
            assert log.done == {FileKey.of(f) for f in files[:2]}, (suffix, cut)
            assert output.read_bytes() == two
        assert write(output, files[2:]) == whole  # the rerun completes it


def test_outputs_of_another_kind_are_refused_in_one_line(run, folder, tmp_path, predict_py):
    song = str(next(folder.iterdir()))
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("file,valence\nx.wav,0.1\n")
    plain = tmp_path / "plain.csv"
    assert predict_py("--model_dir", str(run), song, "--output", str(plain))[0] == 0
    cases = [
        (["--output", str(foreign)], "was not written by predict.py --output"),
        (["--output", str(plain), "--timeline"], "plain.csv was written without --timeline"),
        (["--output", str(tmp_path / "no" / "out.jsonl")], "does not exist"),
        (["--num_workers", "0"], "--num_workers must be >= 1"),
    ]
    for extra, message in cases:
        code, err = predict_py("--model_dir", str(run), song, *extra)
        lines = err.strip().splitlines()
        assert code == 2 and "Traceback" not in err, err
        assert lines[-1].startswith("predict.py: error: ") and message in lines[-1], lines[-1]
    assert foreign.read_text() == "file,valence\nx.wav,0.1\n"  # nothing lost


def test_optional_fields_are_written_and_resumed(run, folder, tmp_path, predict_py, monkeypatch):
    import sentio.inference.results as results_module  # the one result builder's song_result

    plain = results_module.song_result
    monkeypatch.setattr(results_module, "song_result", lambda *args, **kwargs: {**plain(*args, **kwargs), **CALIBRATED})
    songs = sorted(str(p) for p in folder.iterdir())[:3]
    out_csv, out_jsonl = tmp_path / "calibrated.csv", tmp_path / "calibrated.jsonl"
    for out in (out_csv, out_jsonl):
        code, err = predict_py("--model_dir", str(run), *songs, "--timeline", "--output", str(out))
        assert code == 0, err
    rows = list(csv.DictReader(out_csv.open(newline="")))
    levels = [f"{dim}_{end}_{level}" for level in ("80", "90", "95") for dim in ("valence", "arousal") for end in ("low", "high")]
    assert list(rows[0]) == ["file", "start", "time", "valence", "arousal", "valence_1_9", "arousal_1_9", "quadrant",
                             "num_windows", "scale", "valence_spread", "arousal_spread", *levels,
                             "p_happy", "p_tense", "p_sad", "p_calm", "size_bytes", "mtime_ns", "kind"]
    files = [r for r in rows if not r["start"] and not r["time"]]
    assert sorted(r["file"] for r in files) == songs
    assert {(r["scale"], r["p_calm"], r["valence_low_90"], r["arousal_spread"]) for r in files} == {
        ("[-1, 1]", "0.400000", "0.050000", "0.170000")}
    curve = [r for r in rows if r["time"]]
    assert [float(r["time"]) for r in curve] == [0.5, 1.0, 1.5, 2.0] * 3  # one row per 0.5 s of each file's curve
    assert {r["kind"] for r in files} == {"file"} and {r["kind"] for r in curve} == {"curve"}
    assert {r["kind"] for r in rows if r["start"]} == {"window"}
    assert curve[0]["valence_1_9"] == "5.400000" and curve[0]["quadrant"] == "calm"
    records = _records(out_jsonl)
    assert all({k: r[k] for k in CALIBRATED} == CALIBRATED for r in records)
    for out in (out_csv, out_jsonl):  # a rerun finds them all done
        assert "(0 failed, 3 already done)" in predict_py("--model_dir", str(run), *songs, "--timeline", "--output", str(out))[1]


def _samples(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32")[0]


def _tag(path: Path, name: str) -> list[str]:
    tags = mutagen.File(path).tags
    return list(tags[f"TXXX:{name}"].text) if path.suffix in (".mp3", ".wav") else list(tags[name])


def test_write_tags_keeps_the_audio_and_reads_back(run, tmp_path, predict_py):
    music = tmp_path / "tagged"
    music.mkdir()
    for i, (ext, fmt, subtype) in enumerate([("mp3", "MP3", None), ("ogg", "OGG", "VORBIS"), ("opus", "OGG", "OPUS"),
                                             ("flac", "FLAC", None), ("wav", "WAV", None)]):
        wave = np.random.default_rng(i).uniform(-0.3, 0.3, (48000 * 2, 2)).astype(np.float32)
        sf.write(music / f"song.{ext}", wave, 48000, format=fmt, subtype=subtype)
    before = {p: _samples(p) for p in music.iterdir()}
    output = tmp_path / "tags.jsonl"
    args = ["--model_dir", str(run), str(music), "--write_tags", "--output", str(output)]
    code, err = predict_py(*args)
    assert code == 0, err
    records = {r["file"]: r for r in _records(output)}
    for path, samples in before.items():
        np.testing.assert_array_equal(_samples(path), samples)  # the audio data is untouched
        for name, value in tag_values(records[str(path)]).items():
            assert _tag(path, name) == [value], (path, name)
    assert "(0 failed, 5 already done)" in predict_py(*args)[1]  # the key is taken after tagging


@pytest.mark.slow
def test_write_tags_m4a(predictor, tmp_path):
    if shutil.which("ffmpeg") is None:
        pytest.skip("no ffmpeg to make an M4A file (soundfile cannot write one)")
    from mutagen.mp4 import MP4

    wav = write_audio(tmp_path / "song.wav", 2.0, 44100, 2)
    m4a = tmp_path / "song.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True, timeout=60)
    audio = _mdat(m4a)
    result = predictor.predict(m4a)
    write_tags(str(m4a), result)
    assert _mdat(m4a) == audio
    for name, value in tag_values(result).items():
        assert bytes(MP4(m4a).tags[f"----:com.apple.iTunes:{name}"][0]).decode() == value


def _mdat(path: Path) -> bytes:
    """The bytes of an MP4 file's media data box (its encoded audio)."""
    data = path.read_bytes()
    at = data.index(b"mdat") - 4
    size = int.from_bytes(data[at : at + 4], "big")
    return data[at + 8 : at + size]


def test_a_file_that_cannot_be_tagged_is_one_failure(run, tmp_path, predict_py):
    song = write_audio(tmp_path / "song.au", 1.0, 16000, fmt="AU")  # no tag format mutagen writes
    code, err = predict_py("--model_dir", str(run), str(song), "--write_tags")
    assert code == 1 and "Traceback" not in err
    assert f"predict.py: skipped {song}: cannot write tags" in err
    with pytest.raises(AudioError, match="cannot write tags"):
        write_tags(str(song), {"valence": 0.1, "arousal": 0.2, "quadrant": "happy"})


def test_progress_and_summary(run, folder, predict_py):
    code, err = predict_py("--model_dir", str(run), str(folder), "--num_workers", "2")
    assert code == 0, err
    assert ("file/s" in err or "s/file" in err) and "audio-h/s" in err
    summary = err.strip().splitlines()[-1]
    match = re.fullmatch(r"predict\.py: 12 files \(0 failed\), ([\d.]+) s of audio in .+: real-time factor [\d.]+", summary)
    assert match, summary
    assert float(match.group(1)) == pytest.approx(sum(sf.info(p).duration for p in folder.iterdir()), abs=0.1)


def _tone(path: Path, minutes: int, rate: int = 8000) -> Path:
    block = (0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * rate) / rate)).astype(np.float32)
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as sink:
        for _ in range(minutes * 6):  # written ten seconds at a time
            sink.write(block)
    return path


PEAK_RSS = """
import resource, sys
from sentio.inference import EmotionPredictor
from sentio.inference.batch import predict_library
model_dir, *songs = sys.argv[1:]
predictor = EmotionPredictor.from_pretrained(model_dir, device="cpu", batch_size=8)
for song in songs:  # one after the other: the peak can only grow
    (done,) = predict_library(predictor, [song])
    assert done.error is None, done.error
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_file(tmp_path):
    run = tmp_path / "run"  # 10.24 s windows, 128 patches: the model is cheap, the hour's audio is not
    torch.manual_seed(0)
    config = dict(TINY["ast"], max_length=1024, frequency_stride=16, time_stride=16)
    build_model("ast", from_scratch=True, config_overrides=config).save_pretrained(run)
    SentioFeatureExtractor("fbank", max_length=1024, num_mel_bins=32).save_pretrained(run)
    songs = [_tone(tmp_path / f"{minutes}.wav", minutes) for minutes in (10, 60)]
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(run), *map(str, songs)], cwd=REPO,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    ten, hour = (int(kb) * 1024 for kb in out.stdout.split())
    # the hour at 16 kHz is 230 MB of samples alone; streamed, the peak is set by the batch
    assert hour - ten < 25e6, (ten, hour)
