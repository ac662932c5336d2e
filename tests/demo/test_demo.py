"""The demo corpus: DEAM's exact layout and formats, determinism, reuse, cues that carry labels,
emotion that moves inside a clip, and listener disagreement that varies per song."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sentio.demo import corpus as demo
from sentio.demo import deam_files
from sentio.demo.__main__ import main as demo_main
from sentio.demo.ceiling import split_dynamic_ceiling
from sentio.demo.corpus import ensure_demo, generate_demo
from sentio.demo.deam_files import (
    ANNOTATION_SUBDIR,
    AUDIO_SUBDIR,
    CSV_1_2000,
    CSV_2000_2058,
    DYNAMIC_FILES,
    DYNAMIC_SUBDIR,
    TRUTH_DYNAMIC,
)
from sentio.demo.synth import PATH_RATE, SYNTH_SR, render

HEADER_A = b"song_id, valence_mean, valence_std, arousal_mean, arousal_std\r\n"
HEADER_B = (
    b"song_id, valence_mean, valence_std, valence_ max_mean, valence_max_std, valence_min_mean, "
    b"valence_min_std, arousal_mean, arousal_std, arousal_max_mean, arousal_max_std, "
    b"arousal_min_mean, arousal_min_std\r\n"
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    # in this process (no pool of spawned interpreters): the fast lane starts no child process, and
    # the clips do not depend on the workers (test_deterministic_and_worker_independent)
    return generate_demo(tmp_path_factory.mktemp("demo") / "demo", num_clips=12, seed=1, num_workers=1)


def rows(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_bytes().decode().split("\r\n")[1:] if line]


def truth(path: Path) -> dict[int, dict[str, str]]:
    lines = (path / "truth.csv").read_text().splitlines()
    cols = lines[0].split(",")
    return {int(r.split(",")[0]): dict(zip(cols, r.split(","))) for r in lines[1:]}


def dynamic_truth(path: Path) -> dict[int, np.ndarray]:
    """truth_dynamic.csv per song: rows of (time, valence, arousal)."""
    table = np.loadtxt(path / TRUTH_DYNAMIC, delimiter=",", skiprows=1)
    return {int(sid): table[table[:, 0] == sid, 1:] for sid in np.unique(table[:, 0])}


def dynamic_rows(path: Path, dim: str) -> tuple[list[str], dict[int, list[str]]]:
    """A dynamic CSV as (header, song_id -> its cells as written)."""
    lines = (path / DYNAMIC_SUBDIR / DYNAMIC_FILES[dim]).read_text().splitlines()
    return lines[0].split(","), {int(r.split(",")[0]): r.split(",")[1:] for r in lines[1:]}


def constant_path(seconds: float, valence: float, arousal: float) -> np.ndarray:
    return np.tile([valence, arousal], (int(round(seconds * PATH_RATE)), 1)).astype(float)


def db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2)))


def test_layout(corpus: Path) -> None:
    ann = corpus / ANNOTATION_SUBDIR
    assert (ann / CSV_1_2000).is_file() and (ann / CSV_2000_2058).is_file()
    for name in ("truth.csv", TRUTH_DYNAMIC, "ceiling.json", "demo.json"):
        assert (corpus / name).is_file()
    assert all((corpus / DYNAMIC_SUBDIR / name).is_file() for name in DYNAMIC_FILES.values())
    assert set(os.listdir(corpus)) <= demo._OWN_NAMES  # a corpus can always be replaced
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
    assert deam_files._fmt(3.0, 1, True) == "3" and deam_files._fmt(3.0, 1, False) == "3.0"
    assert deam_files._fmt(1.4, 2, True) == "1.4" and deam_files._fmt(0.949, 2, True) == "0.95"

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
    assert 1.8 <= c["parameters"]["rater_sd"] <= 2.2  # about DEAM's (and version 1's) 2.0
    t = truth(corpus)
    assert all(1.5 <= float(r[k]) <= 8.5 for r in t.values() for k in ("valence", "arousal"))


def test_dynamic_ceiling(corpus: Path) -> None:
    dyn = json.loads((corpus / "ceiling.json").read_text())["dynamic"]
    for metric in ("ccc", "pearson", "rmse"):
        assert set(dyn[metric]) == {"valence", "arousal", "mean"}
        assert all(0.0 < v < 1.0 for v in dyn[metric].values())
    assert dyn["ccc"]["mean"] > 0.8 and dyn["pearson"]["mean"] < dyn["ccc"]["mean"]  # within-song moves are small
    p = dyn["parameters"]
    assert p["rate_hz"] == 2 and p["start_s"] == 1.0 and p["raters"] == 10 and 0 < p["ar1_correlation"] < 1
    # A perfect model misses the labels by the noise of the raters' mean (less a little: clipping).
    assert 0.7 * p["label_noise_sd"] <= dyn["rmse"]["mean"] <= 1.1 * p["label_noise_sd"]
    assert dyn["note"]


def test_split_dynamic_ceiling(corpus: Path) -> None:
    import pandas as pd

    ids = list(truth(corpus))
    every = split_dynamic_ceiling(corpus, pd.DataFrame({"song_id": [str(i) for i in ids]}))
    dyn = json.loads((corpus / "ceiling.json").read_text())["dynamic"]
    for metric in ("ccc", "pearson", "rmse"):
        for k in ("valence", "arousal", "mean"):
            assert every[f"{metric}_{k}"] == pytest.approx(dyn[metric][k], abs=2e-3)  # labels are rounded
    part = split_dynamic_ceiling(corpus, pd.DataFrame({"song_id": [str(i) for i in ids[:5]]}))
    assert set(part) == set(every) and part != every
    assert all(0.0 < part[f"rmse_{k}"] < 1.0 for k in ("valence", "arousal"))


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
        x = render(3.0, constant_path(3.0, v, a), 0.4, np.random.default_rng([9, i]), 1)[0][:, 0]
        frames = np.lib.stride_tricks.sliding_window_view(x, 2048)[::512] * np.hanning(2048)
        spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        centroid = (spec * np.fft.rfftfreq(2048, 1 / SYNTH_SR)).sum(1) / spec.sum(1)
        stats.append([10 * np.log10(np.mean(x**2)), np.median(centroid)])
    stats = np.array(stats)
    assert np.corrcoef(stats[:, 0], va[:, 1])[0, 1] > 0.5  # loudness
    assert np.corrcoef(stats[:, 1], va[:, 1])[0, 1] > 0.5  # brightness


def test_dynamic_csv_layout(corpus: Path) -> None:
    t = truth(corpus)
    longest = max(float(r["duration"]) for r in t.values())
    for dim in DYNAMIC_FILES:
        raw = (corpus / DYNAMIC_SUBDIR / DYNAMIC_FILES[dim]).read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw and b" " not in raw.split(b"\n")[0]
        header, songs = dynamic_rows(corpus, dim)
        assert header[0] == "song_id"
        times = [int(re.fullmatch(r"sample_(\d+)ms", c).group(1)) for c in header[1:]]
        assert times[0] == 1000 and np.all(np.diff(times) == 500)  # 2 Hz from 1 s
        assert times[-1] == int(longest * 2) * 500  # the longest clip's last full half-second
        assert sorted(songs) == sorted(t) and len(songs) == len(t)
        for sid, cells in songs.items():
            assert len(cells) == len(times)
            # Values up to the song's last half-second within its duration, empty cells after it.
            filled = int(float(t[sid]["duration"]) * 2 + 1e-6) - 1
            assert all(cells[:filled]) and not any(cells[filled:]), sid
            values = np.array(cells[:filled], float)
            assert np.all(np.abs(values) <= 1.0) and all(len(c.split(".")[-1]) <= 3 for c in cells[:filled])


def test_deam_reader_reads_dynamic(corpus: Path) -> None:
    from sentio.data.deam import DeamReader

    curves, report = DeamReader(corpus).dynamic.curves()
    assert sorted(curves, key=int) == [str(i) for i in sorted(truth(corpus))]
    assert sum(report.frames_skipped_by_reason.values()) == 0
    assert all(c.times[0] == 1.0 and np.allclose(np.diff(c.times), 0.5) for c in curves.values())


def test_dynamic_labels_follow_truth(corpus: Path) -> None:
    true = dynamic_truth(corpus)
    for d, dim in enumerate(DYNAMIC_FILES):
        _, songs = dynamic_rows(corpus, dim)
        labels, target = [], []
        for sid, rows in true.items():
            assert np.allclose(rows[:, 0], 1.0 + 0.5 * np.arange(len(rows)))  # the same label times
            labels.append(np.array([float(c) for c in songs[sid] if c]))
            target.append(rows[:, 1 + d])
            assert len(labels[-1]) == len(target[-1])
        labels, target = np.concatenate(labels), np.concatenate(target)
        assert np.all(np.abs(target) <= 1.0)
        assert np.corrcoef(labels, target)[0, 1] > 0.8, dim  # apart from rater noise
        assert np.std(labels - target) < 0.3


def test_static_truth_is_time_average_of_dynamic(corpus: Path) -> None:
    t = truth(corpus)
    for sid, rows in dynamic_truth(corpus).items():
        static = [(float(t[sid][k]) - 5) / 4 for k in ("valence", "arousal")]
        # truth_dynamic leaves out the first half-second and the end after the last full one:
        # up to 1 s of a clip of 10 s or more, so the averages differ by a few hundredths at most.
        assert np.allclose(rows[:, 1:].mean(0), static, atol=0.04), sid


def test_changes_are_clear_and_inside_the_clip(corpus: Path) -> None:
    t, true = truth(corpus), dynamic_truth(corpus)
    changing = {sid: float(r["change_time"]) for sid, r in t.items() if r["change_time"]}
    assert len(changing) == round(0.4 * len(t))
    for sid, at in changing.items():
        duration = float(t[sid]["duration"])
        assert 0.3 * duration < at < 0.7 * duration
        rows = true[sid]
        before = rows[(rows[:, 0] > at - 3.0) & (rows[:, 0] < at - 1.0), 1:].mean(0)
        after = rows[(rows[:, 0] > at + 1.5) & (rows[:, 0] < at + 3.5), 1:].mean(0)
        assert np.abs(after - before).max() * 4 >= 1.6, sid  # 2 points, less the tails and wobble
    for sid in set(t) - set(changing):  # the others drift gently
        assert np.ptp(true[sid][:, 1:], axis=0).max() * 4 < 1.5, sid


def test_change_of_arousal_is_audible(corpus: Path) -> None:
    """Rendered: an arousal step makes the music louder and busier after it; in the corpus, the
    loudness of every clip with a clear arousal change moves with it."""
    seconds, cells = 12.0, int(12.0 * PATH_RATE)
    path = constant_path(seconds, 5.0, 3.0)
    path[:, 1] += 3.0 / (1 + np.exp(-((np.arange(cells) + 0.5) / PATH_RATE - 6.0) * 3))
    x = render(seconds, path, 0.3, np.random.default_rng(4), 1)[0][:, 0]
    before, after = x[int(1.5 * SYNTH_SR) : int(4.5 * SYNTH_SR)], x[int(7.5 * SYNTH_SR) : int(10.5 * SYNTH_SR)]
    assert db(after) - db(before) > 5.0  # 16 dB over the whole range: ~7 dB for 3 points

    def onset_flux(seg: np.ndarray) -> float:  # log-spectral flux: more onsets, more flux, at any level
        frames = np.lib.stride_tricks.sliding_window_view(seg, 1024)[::256] * np.hanning(1024)
        log_mag = np.log(np.abs(np.fft.rfft(frames, axis=1)) + 1e-4)
        return float(np.maximum(np.diff(log_mag, axis=0), 0).mean())

    assert onset_flux(after) > 1.05 * onset_flux(before)

    t, true = truth(corpus), dynamic_truth(corpus)
    checked = 0
    for sid, r in t.items():
        if not r["change_time"]:
            continue
        at, rows = float(r["change_time"]), true[sid]
        step = rows[rows[:, 0] > at + 2.0, 2].mean() - rows[rows[:, 0] < at - 1.0, 2].mean()
        if abs(step) * 4 < 1.5:
            continue
        wave, sr = sf.read(str(corpus / AUDIO_SUBDIR / f"{sid}.mp3"))
        wave = wave if wave.ndim == 1 else wave.mean(1)
        pre, post = wave[int(0.5 * sr) : int((at - 1.0) * sr)], wave[int((at + 2.0) * sr) : int((at + 5.0) * sr)]
        assert np.sign(db(post) - db(pre)) == np.sign(step), sid
        checked += 1
    assert checked >= 1


def test_rater_spread_grows_with_divisiveness(corpus: Path) -> None:
    from scipy.stats import spearmanr

    from sentio.data.deam import DeamReader

    t = truth(corpus)
    table = DeamReader(corpus).read_static()
    d = np.array([float(t[int(s)]["divisiveness"]) for s in table["song_id"]])
    assert np.all((0 <= d) & (d <= 1)) and np.ptp(d) > 0.3
    for dim in ("valence", "arousal"):
        sd = np.array([float(t[int(s)][f"rater_sd_{dim}"]) for s in table["song_id"]])
        assert np.allclose(sd, 0.9 + 2.6 * d, atol=1e-3)
        assert spearmanr(d, table[f"{dim}_std"]).statistic > 0.5, dim


def test_texture_grows_with_divisiveness() -> None:
    """The abrasive texture (2-6 kHz grit) grows with divisiveness; the music under it is unchanged."""
    shares = []
    for d in (0.0, 0.5, 1.0):
        x = render(4.0, constant_path(4.0, 5.0, 5.0), d, np.random.default_rng(3), 1)[0][:, 0]
        power = np.abs(np.fft.rfft(x)) ** 2
        freq = np.fft.rfftfreq(len(x), 1 / SYNTH_SR)
        shares.append(power[(freq > 2000) & (freq < 6000)].sum() / power.sum())
    assert shares[0] < shares[1] < shares[2] and shares[2] > 2 * shares[0]
    quiet = render(4.0, constant_path(4.0, 5.0, 5.0), 0.0, np.random.default_rng(3), 1)[0]
    loud = render(4.0, constant_path(4.0, 5.0, 5.0), 1.0, np.random.default_rng(3), 1)[0]
    low = np.fft.rfftfreq(len(quiet), 1 / SYNTH_SR) < 1000  # the music's fundamentals, the same notes
    spectra = [np.abs(np.fft.rfft(x[:, 0]))[low] for x in (quiet, loud)]
    assert np.corrcoef(*spectra)[0, 1] > 0.95


@pytest.mark.slow  # a pool of spawned interpreters
def test_deterministic_and_worker_independent(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", num_clips=4, seed=5, num_workers=1)
    b = generate_demo(tmp_path / "b", num_clips=4, seed=5, num_workers=2)
    for rel in (ANNOTATION_SUBDIR / CSV_1_2000, ANNOTATION_SUBDIR / CSV_2000_2058, Path("truth.csv"),
                Path(TRUTH_DYNAMIC), *(DYNAMIC_SUBDIR / name for name in DYNAMIC_FILES.values())):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    clip = sorted((a / AUDIO_SUBDIR).iterdir())[0].name
    wave_a, sr_a = sf.read(str(a / AUDIO_SUBDIR / clip))
    wave_b, sr_b = sf.read(str(b / AUDIO_SUBDIR / clip))
    assert sr_a == sr_b and np.array_equal(wave_a, wave_b)


@pytest.mark.slow  # synthesises whole corpora again
def test_seed_changes_corpus(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", num_clips=2, seed=7, num_workers=1)
    b = generate_demo(tmp_path / "b", num_clips=2, seed=8, num_workers=1)
    assert (a / ANNOTATION_SUBDIR / CSV_1_2000).read_bytes() != (b / ANNOTATION_SUBDIR / CSV_1_2000).read_bytes()


@pytest.mark.slow  # synthesises whole corpora again
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


@pytest.mark.slow  # synthesises whole corpora again
def test_ensure_demo_regenerates_version_1(tmp_path: Path) -> None:
    out = ensure_demo(tmp_path / "demo", num_clips=2, seed=0)
    marker = json.loads((out / "demo.json").read_text())
    # A version-1 corpus: the same names, minus what version 2 added.
    (out / "demo.json").write_text(json.dumps({**marker, "version": 1}))
    (out / TRUTH_DYNAMIC).unlink()
    for name in DYNAMIC_FILES.values():
        (out / DYNAMIC_SUBDIR / name).unlink()
    assert ensure_demo(tmp_path / "demo", num_clips=2, seed=0) == out
    assert json.loads((out / "demo.json").read_text())["version"] == demo.GENERATOR_VERSION == 2
    assert (out / TRUTH_DYNAMIC).is_file() and (out / DYNAMIC_SUBDIR / "arousal.csv").is_file()
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
    assert demo_main(["--output_dir", str(tmp_path / "x"), "--num_clips", "0"]) == 2
    assert "num_clips" in capsys.readouterr().err


@pytest.mark.slow  # synthesises whole corpora again
def test_demo_variant_is_other_music_with_biased_raters(tmp_path):
    """Variant 1 (cross-dataset benchmarks): same ids and truth as variant 0, other audio, raters shifted."""
    import pandas as pd

    from sentio.demo.corpus import RATER_BIAS, ensure_demo

    plain = ensure_demo(tmp_path / "a", num_clips=3, seed=4)
    shifted = ensure_demo(tmp_path / "b", num_clips=3, seed=4, variant=1)
    assert "variant" not in json.loads((plain / "demo.json").read_text())
    assert json.loads((shifted / "demo.json").read_text())["variant"] == 1
    assert ensure_demo(tmp_path / "b", num_clips=3, seed=4, variant=1) == shifted  # reused, not regenerated
    a, b = (pd.read_csv(root / "truth.csv") for root in (plain, shifted))
    assert a["song_id"].tolist() == b["song_id"].tolist()
    assert np.allclose(a[["valence", "arousal"]], b[["valence", "arousal"]])
    assert (b["tempo_bpm"] < 0.8 * a["tempo_bpm"]).all()  # a slower tempo range
    audio = sorted((plain / "DEAM_audio" / "MEMD_audio").glob("*.mp3"))
    assert all(p.read_bytes() != (shifted / "DEAM_audio" / "MEMD_audio" / p.name).read_bytes() for p in audio)
    static = "DEAM_Annotations/annotations/annotations averaged per song/song_level/static_annotations_averaged_songs_1_2000.csv"
    la, lb = (pd.read_csv(root / static, skipinitialspace=True) for root in (plain, shifted))
    shift = (lb[["valence_mean", "arousal_mean"]] - la[["valence_mean", "arousal_mean"]]).mean().to_numpy()
    assert shift == pytest.approx(RATER_BIAS[1], abs=0.15)
