"""The demo corpus: DEAM's exact layout and formats, determinism, reuse, and cues that carry labels."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sentio.data import demo
from sentio.data.demo import (
    ANNOTATION_SUBDIR,
    AUDIO_SUBDIR,
    CSV_1_2000,
    CSV_2000_2058,
    ensure_demo,
    generate_demo,
)
from sentio.data.demo_synth import SYNTH_SR, render

HEADER_A = b"song_id, valence_mean, valence_std, arousal_mean, arousal_std\r\n"
HEADER_B = (
    b"song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, valence_min_mean, "
    b"valence_min_std, arousal_mean, arousal_std, arousal_max_mean, arousal_max_std, "
    b"arousal_min_mean, arousal_min_std\r\n"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return generate_demo(tmp_path_factory.mktemp("demo") / "demo", num_clips=12, seed=1)


def rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_bytes().decode().split("\r\n")[1:] if line]


def truth(path: Path) -> dict[int, dict[str, str]]:
    lines = (path / "truth.csv").read_text().splitlines()
    cols = lines[0].split(",")
    return {int(r.split(",")[0]): dict(zip(cols, r.split(","))) for r in lines[1:]}


def test_layout(corpus: Path) -> None:
    ann = corpus / ANNOTATION_SUBDIR
    assert (ann / CSV_1_2000).is_file() and (ann / CSV_2000_2058).is_file()
    for name in ("truth.csv", "ceiling.json", "demo.json"):
        assert (corpus / name).is_file()
    ids = [int(r[0]) for r in rows(ann / CSV_1_2000) + rows(ann / CSV_2000_2058)]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert sorted(p.name for p in (corpus / AUDIO_SUBDIR).iterdir()) == sorted(f"{i}.mp3" for i in ids)
    assert [p.name for p in corpus.parent.iterdir()] == ["demo"]  # no temporary folder left behind
    assert set(truth(corpus)) == set(ids)


def test_csv_bytes_match_deam(corpus: Path) -> None:
    ann = corpus / ANNOTATION_SUBDIR
    a, b = (ann / CSV_1_2000).read_bytes(), (ann / CSV_2000_2058).read_bytes()
    assert a.startswith(HEADER_A) and b.startswith(HEADER_B)
    for raw in (a, b):
        assert raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n")
    # Whole numbers: `3` in the 1_2000 file, `3.0` in the 2000_2058 file, as in the real ones.
    assert not re.search(rb"\.0(,|\r)", a)
    assert demo._fmt(3.0, 1, True) == "3" and demo._fmt(3.0, 1, False) == "3.0"
    assert demo._fmt(1.4, 2, True) == "1.4" and demo._fmt(0.949, 2, True) == "0.95"

    rows_a, rows_b = rows(ann / CSV_1_2000), rows(ann / CSV_2000_2058)
    ids_a, ids_b = [int(r[0]) for r in rows_a], [int(r[0]) for r in rows_b]
    assert ids_a == sorted(ids_a) and ids_b == sorted(ids_b)
    assert any(i <= 1000 for i in ids_a) and any(1000 < i <= 2000 for i in ids_a)
    assert ids_b and all(2000 < i <= 2058 for i in ids_b)
    assert all(len(r) == 5 for r in rows_a) and all(len(r) == 13 for r in rows_b)
    for r in rows_a + rows_b:
        means = [float(x) for x in r[1::2]]
        assert all(1.0 <= m <= 9.0 for m in means) and all(0.0 <= float(s) < 4.0 for s in r[2::2])
    for r in rows_b:  # max >= mean >= min, per dimension
        v = [float(x) for x in r[1:]]
        assert v[2] >= v[0] >= v[4] and v[8] >= v[6] >= v[10]


def test_headers_equal_real_deam(corpus: Path, shared_data: Path) -> None:
    for name in (CSV_1_2000, CSV_2000_2058):
        real = (shared_data / "deam" / name).read_bytes()
        ours = (corpus / ANNOTATION_SUBDIR / name).read_bytes()
        assert ours[: ours.index(b"\n") + 1] == real[: real.index(b"\n") + 1]


def test_deam_reader_reads_it(corpus: Path) -> None:
    from sentio.data.deam import DeamReader

    table = DeamReader(corpus).read_static()
    assert len(table) == 12 and all(Path(p).is_file() for p in table["path"])
    assert set(table["subset"]) == {"2013", "2014", "2015"}
    t = truth(corpus)
    err = [abs(float(t[int(s)]["arousal"]) - a) for s, a in zip(table["song_id"], table["arousal"])]
    assert max(err) < 4.0  # labels are the true values plus rater noise


def test_audio_formats_and_durations(corpus: Path) -> None:
    infos = {int(p.stem): sf.info(str(p)) for p in (corpus / AUDIO_SUBDIR).glob("*.mp3")}
    rates = [i.samplerate for i in infos.values()]
    channels = [i.channels for i in infos.values()]
    assert {44100, 48000, 22050} <= set(rates) and max(set(rates), key=rates.count) == 44100
    assert set(channels) == {1, 2} and channels.count(2) > len(channels) / 2
    for sid, info in infos.items():
        low, high = (20.0, 30.0) if sid > 2000 else (10.0, 15.0)
        assert low - 0.05 <= info.duration <= high + 0.05, (sid, info.duration)
        assert info.format == "MP3"
    wave, _ = sf.read(str(next((corpus / AUDIO_SUBDIR).glob("*.mp3"))))
    assert np.abs(wave).max() < 1.0  # no clipping


def test_ceiling(corpus: Path) -> None:
    c = json.loads((corpus / "ceiling.json").read_text())
    for kind in ("theoretical", "empirical"):
        assert set(c[kind]) == {"valence", "arousal", "mean"}
        assert all(0.0 < v < 1.0 for v in c[kind].values())
    assert 0.85 <= c["theoretical"]["mean"] <= 0.9
    assert c["parameters"]["num_clips"] == 12 and c["parameters"]["seed"] == 1
    assert c["parameters"]["raters"] == 10 and c["note"]
    t = truth(corpus)
    assert all(1.5 <= float(r[k]) <= 8.5 for r in t.values() for k in ("valence", "arousal"))


def test_loudness_follows_true_arousal(corpus: Path) -> None:
    t = truth(corpus)
    ids = sorted(t)
    rms = [10 * np.log10(np.mean(sf.read(str(corpus / AUDIO_SUBDIR / f"{i}.mp3"))[0] ** 2)) for i in ids]
    assert np.corrcoef(rms, [float(t[i]["arousal"]) for i in ids])[0, 1] > 0.5


def test_cues_carry_labels() -> None:
    """Over 40 short renders with independent valence/arousal, simple statistics follow arousal."""
    rng = np.random.default_rng(0)
    va = rng.uniform(1.5, 8.5, (40, 2))
    stats = []
    for i, (v, a) in enumerate(va):
        x = render(3.0, v, a, np.random.default_rng([9, i]), 1)[0][:, 0]
        frames = np.lib.stride_tricks.sliding_window_view(x, 2048)[::512] * np.hanning(2048)
        spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        centroid = (spec * np.fft.rfftfreq(2048, 1 / SYNTH_SR)).sum(1) / spec.sum(1)
        stats.append([10 * np.log10(np.mean(x**2)), np.median(centroid)])
    stats = np.array(stats)
    assert np.corrcoef(stats[:, 0], va[:, 1])[0, 1] > 0.5  # loudness
    assert np.corrcoef(stats[:, 1], va[:, 1])[0, 1] > 0.5  # brightness


def test_deterministic_and_worker_independent(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", num_clips=4, seed=5, num_workers=1)
    b = generate_demo(tmp_path / "b", num_clips=4, seed=5, num_workers=2)
    for rel in (ANNOTATION_SUBDIR / CSV_1_2000, ANNOTATION_SUBDIR / CSV_2000_2058, Path("truth.csv")):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    clip = sorted((a / AUDIO_SUBDIR).iterdir())[0].name
    wave_a, sr_a = sf.read(str(a / AUDIO_SUBDIR / clip))
    wave_b, sr_b = sf.read(str(b / AUDIO_SUBDIR / clip))
    assert sr_a == sr_b and np.array_equal(wave_a, wave_b)


def test_seed_changes_corpus(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", num_clips=2, seed=7, num_workers=1)
    b = generate_demo(tmp_path / "b", num_clips=2, seed=8, num_workers=1)
    assert (a / ANNOTATION_SUBDIR / CSV_1_2000).read_bytes() != (b / ANNOTATION_SUBDIR / CSV_1_2000).read_bytes()


def test_ensure_demo_reuses_and_regenerates(tmp_path: Path) -> None:
    out = ensure_demo(tmp_path / "demo", num_clips=2, seed=0)
    marker = out / "demo.json"
    stamp = {p: p.stat().st_mtime_ns for p in [marker, *(out / AUDIO_SUBDIR).iterdir()]}
    assert ensure_demo(tmp_path / "demo", num_clips=2, seed=0) == out
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    ensure_demo(tmp_path / "demo", num_clips=3, seed=0)
    assert json.loads(marker.read_text())["num_clips"] == 3
    assert len(list((out / AUDIO_SUBDIR).iterdir())) == 3
    assert sorted(os.listdir(tmp_path)) == ["demo"]


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = demo.write_clip, []

    def failing(spec):  # the second clip is interrupted (Ctrl-C)
        calls.append(spec)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(spec)

    monkeypatch.setattr(demo, "write_clip", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(tmp_path / "demo", num_clips=2, seed=0, num_workers=1)
    assert os.listdir(tmp_path) == []


def test_refuses_foreign_folder_and_bad_args(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_demo(tmp_path / "mine", num_clips=2)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert demo.main(["--output_dir", str(tmp_path / "x"), "--num_clips", "0"]) == 2
    assert "num_clips" in capsys.readouterr().err
