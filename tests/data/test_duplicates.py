"""Copies of the same music across datasets: found by audio (Chromaprint), grouped, split and labelled as one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from sentio.args import DataArguments
from sentio.data.duplicates import (
    BIT_ERROR_THRESHOLD,
    LABEL_DISAGREEMENT,
    Member,
    best_alignment,
    connected_groups,
    find_matches,
    known_pairs,
    reconcile,
)
from sentio.data.fingerprint import FRAME_SECONDS, chromaprint_problem, corpus_fingerprints
from sentio.data.manifest import ManifestReport, SplitSpec, finish_manifest
from sentio.data.sources import prepare_manifest
from tests.conftest import REPO

needs_chromaprint = pytest.mark.skipif(chromaprint_problem() is not None, reason="Chromaprint is not installed")
SONG_LEVEL = "DEAM_Annotations/annotations/annotations averaged per song/song_level"


def music(seed: int, seconds: float = 12.0, sr: int = 44100) -> np.ndarray:
    """A little synthetic piece: a random melody of harmonic notes over a bass line and a pulse."""
    rng = np.random.default_rng(seed)
    tempo = rng.uniform(80, 160)
    beat = 60.0 / tempo
    out = np.zeros(int(seconds * sr))
    t_note = np.arange(int(beat * sr)) / sr
    envelope = np.exp(-t_note * rng.uniform(2, 6))
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    for k in range(int(seconds / beat)):
        start = int(k * beat * sr)
        note = root * 2 ** (scale[rng.integers(0, 8)] / 12 + rng.integers(1, 3))
        tone = sum(np.sin(2 * np.pi * note * h * t_note) / h for h in (1, 2, 3))
        bass = np.sin(2 * np.pi * root * 2 ** (scale[rng.integers(0, 5)] / 12) * t_note)
        seg = out[start:start + len(t_note)]
        seg += (0.25 * tone + 0.2 * bass)[: len(seg)] * envelope[: len(seg)]
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


def write_stereo_mp3(path: Path, wave: np.ndarray, sr: int = 44100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([wave, 0.9 * wave], axis=1), sr, format="MP3")
    return path


def write_reencoded(path: Path, wave: np.ndarray, sr: int = 44100, gain: float = 0.5) -> Path:
    """The same music as another dataset would ship it: mono, 22.05 kHz, another gain, MP3 again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, gain * soxr.resample(wave, sr, 22050), 22050, format="MP3")
    return path


@needs_chromaprint
def test_reencoded_copy_found_and_other_music_not_merged(tmp_path):
    waves = [music(seed) for seed in range(5)]
    paths = [write_stereo_mp3(tmp_path / "a" / f"{i}.mp3", w) for i, w in enumerate(waves)]
    paths.append(write_reencoded(tmp_path / "b" / "copy_of_2.mp3", waves[2]))
    # a copy that starts 3 s later (another excerpt of the same recording)
    paths.append(write_reencoded(tmp_path / "b" / "late_copy_of_4.mp3", waves[4][3 * 44100:], gain=1.2))
    fps = corpus_fingerprints([str(p) for p in paths], tmp_path / "cache", progress=False)
    matches, rejected = find_matches(fps)
    found = {(m.a, m.b): m for m in matches}
    assert set(found) == {(2, 5), (4, 6)} and not rejected
    assert found[(2, 5)].bit_error < 0.05 and found[(2, 5)].offset == 0
    assert found[(4, 6)].bit_error < 0.05 and abs(found[(4, 6)].offset * FRAME_SECONDS - 3.0) < 0.3
    # different music stays far above the threshold even at its best alignment among many
    for a in range(5):
        for b in range(a + 1, 5):
            error, _, _ = best_alignment(fps.get(a), fps.get(b), range(-30, 31))
            assert error > BIT_ERROR_THRESHOLD + 0.1, (a, b, error)
    assert connected_groups(len(paths), found) == [[2, 5], [4, 6]]


@needs_chromaprint
def test_fingerprints_are_cached_per_file_and_recomputed_when_a_file_changes(tmp_path):
    path = write_stereo_mp3(tmp_path / "x.mp3", music(1, seconds=6))
    first = corpus_fingerprints([str(path)], tmp_path / "cache", progress=False)
    cached = list((tmp_path / "cache" / "fingerprints").rglob("*.npy"))
    assert len(cached) == 1 and len(first.get(0)) > 20
    again = corpus_fingerprints([str(path)], tmp_path / "cache", progress=False)
    assert np.array_equal(again.get(0), first.get(0))
    write_stereo_mp3(path, music(2, seconds=6))
    os.utime(path, ns=(1, 1))
    changed = corpus_fingerprints([str(path), str(tmp_path / "gone.mp3")], tmp_path / "cache", progress=False)
    assert len(list((tmp_path / "cache" / "fingerprints").rglob("*.npy"))) == 2
    assert not np.array_equal(changed.get(0), first.get(0))
    assert len(changed.get(1)) == 0 and "not found" in changed.errors[1]
    assert not list((tmp_path / "cache").rglob("*.partial-*"))


def test_known_id_map_pairs_only_deam_2013_with_emomusic():
    datasets = ["deam", "emomusic", "deam", "emomusic", "csv", "deam"]
    ids = ["2", "2", "1005", "1005", "2", "3"]
    assert known_pairs(datasets, ids) == [(0, 1)]


def _manifest(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    """song_id, group, split rows with the other manifest columns filled in."""
    return pd.DataFrame([{"song_id": s, "path": f"/x/{s}.mp3", "valence": 0.0, "arousal": 0.0, "split": sp,
                          "subset": "", "duration": 10.0, "sample_rate": 44100, "channels": 2, "valence_std": np.nan,
                          "arousal_std": np.nan, "curve": "", "curve_frames": 0, "dataset": s.split(":")[0],
                          "group": g} for s, g, sp in rows])


def test_seeded_split_keeps_every_group_in_one_split():
    rows = []
    for k in range(60):  # 60 groups of two copies, 40 songs alone
        rows += [(f"deam:{k}", f"deam:{k}", ""), (f"emomusic:{k}", f"deam:{k}", "")]
    rows += [(f"pmemo:{k}", f"pmemo:{k}", "") for k in range(40)]
    manifest, report = finish_manifest(_manifest(rows), SplitSpec(seed=3), ManifestReport("t", "1-9"))
    per_group = manifest.groupby("group")["split"].nunique()
    assert (per_group == 1).all() and len(per_group) == 100
    assert set(manifest["split"]) == {"train", "validation", "test"}
    assert "group-level" in report.split_method


def test_single_dataset_seeded_split_is_the_song_level_split_it_always_was():
    from sentio.data.splits import seeded_split

    ids = [str(i) for i in range(50)]
    manifest, _ = finish_manifest(_manifest([(s, s, "") for s in ids]), SplitSpec(seed=42), ManifestReport("t", "1-9"))
    assert dict(zip(manifest["song_id"], manifest["split"])) == seeded_split(ids, 42)


def test_split_lists_that_disagree_within_a_group_send_it_to_the_most_held_out_split(tmp_path):
    (tmp_path / "train.txt").write_text("1\n2\n")
    (tmp_path / "test.txt").write_text("3\n")
    (tmp_path / "validation.txt").write_text("4\n")
    rows = [("deam:1", "deam:1", ""), ("emomusic:3", "deam:1", ""), ("deam:2", "deam:2", ""),
            ("emomusic:4", "deam:2", ""), ("pmemo:9", "pmemo:9", "")]
    manifest, report = finish_manifest(_manifest(rows), SplitSpec(files=str(tmp_path)), ManifestReport("t", "1-9"))
    splits = dict(zip(manifest["song_id"], manifest["split"]))
    assert splits == {"deam:1": "test", "emomusic:3": "test", "deam:2": "validation", "emomusic:4": "validation"}
    assert report.groups_moved_to_held_out == report.to_dict()["rows_moved_to_their_group_split"] == 2
    assert [s["reason"] for s in report.skipped] == ["id not in any split list"]


def test_label_reconciliation_takes_the_mean_and_flags_copies_that_disagree():
    agree = reconcile([Member("deam", "deam:2", "a", -0.25, 0.5), Member("emomusic", "emomusic:2", "b", -0.2, 0.55)])
    assert (agree.valence, agree.arousal) == pytest.approx((-0.225, 0.525)) and not agree.disagree
    assert agree.rule == "mean of copies" and agree.max_difference == pytest.approx(0.05)
    apart = reconcile([Member("deam", "d", "a", 0.5, -0.5), Member("emomusic", "e", "b", -0.5, 0.5)])
    assert apart.disagree and apart.max_difference == pytest.approx(1.0) and 1.0 > LABEL_DISAGREEMENT


def write_deam(root: Path, songs: dict[str, tuple[float, float]], waves: dict[str, np.ndarray]) -> Path:
    """A DEAM folder (Kaggle layout, real header quirks): static means on 1..9, stereo 44.1 kHz MP3s."""
    folder = root / SONG_LEVEL
    folder.mkdir(parents=True)
    rows = [f"{sid},{v},0.9,{a},1.1" for sid, (v, a) in songs.items()]
    (folder / "static_annotations_averaged_songs_1_2000.csv").write_bytes(
        ("\r\n".join(["song_id, valence_mean, valence_std, arousal_mean, arousal_std", *rows]) + "\r\n").encode())
    for sid in songs:
        write_stereo_mp3(root / "DEAM_audio" / "MEMD_audio" / f"{sid}.mp3", waves[sid])
    return root


def write_emomusic(root: Path, songs: dict[str, tuple[float, float]], waves: dict[str, np.ndarray]) -> Path:
    """An EmoMusic folder: arousal first in its static file, re-encoded (mono 22.05 kHz, other gain) clips."""
    (root / "annotations").mkdir(parents=True)
    rows = [f"{sid},{a},1.0,{v},0.8" for sid, (v, a) in songs.items()]
    (root / "annotations" / "static_annotations.csv").write_text(
        "\n".join(["song_id,mean_arousal,std_arousal,mean_valence,std_valence", *rows]) + "\n")
    for sid in songs:
        write_reencoded(root / "clips_45seconds" / f"{sid}.mp3", waves[sid])
    return root


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory) -> tuple[Path, Path]:
    """DEAM songs 2, 3, 1005 and EmoMusic songs 2, 7, 8: DEAM 2 = EmoMusic 2 (labels exchanged in DEAM,
    as in the real 2013 subset), DEAM 1005 = EmoMusic 8 (other ids: only audio can tell)."""
    root = tmp_path_factory.mktemp("two")
    waves = {name: music(seed, seconds=8) for seed, name in enumerate(["s2", "s3", "s1005", "s7"])}
    deam = write_deam(root / "deam", {"2": (7.0, 3.0), "3": (5.0, 5.0), "1005": (6.0, 6.0)},
                      {"2": waves["s2"], "3": waves["s3"], "1005": waves["s1005"]})
    emo = write_emomusic(root / "emo", {"2": (3.2, 7.0), "7": (4.0, 4.0), "8": (2.0, 2.0)},
                         {"2": waves["s2"], "7": waves["s7"], "8": waves["s1005"]})
    return deam, emo


@needs_chromaprint
def test_two_datasets_in_one_manifest_share_groups_splits_and_labels(two_datasets, tmp_path):
    deam, emo = two_datasets
    args = DataArguments(data=[str(deam), str(emo)], deam_swapped_subsets="2013", cache_dir=str(tmp_path / "cache"),
                         split_fractions="0.4,0.3,0.3")
    manifest, report = prepare_manifest(args, tmp_path / "run", progress=False)
    rows = manifest.set_index("song_id")
    # each group trains as ONE row (its first id), not as several identical ones
    assert sorted(rows.index) == ["deam:1005", "deam:2", "deam:3", "emomusic:7"]
    assert rows["dataset"].to_dict() == {s: s.split(":")[0] for s in rows.index}
    assert rows["group"].to_dict() == {s: s for s in rows.index}
    assert report.rows_kept == 4 and sum(report.splits.values()) == 4
    # DEAM 2's exchanged columns fixed first (v 3, a 7 on 1..9), then the mean with EmoMusic's (3.2, 7)
    assert rows.loc["deam:2", ["valence", "arousal"]].tolist() == pytest.approx([(3.1 - 5) / 4, (7 - 5) / 4])
    written = json.loads((tmp_path / "run" / "data_report.json").read_text())
    dup = written["duplicates"]
    assert dup["groups_found"] == 2 and dup["songs_in_groups"] == 4 and dup["groups_whose_labels_disagree"] == 1
    assert dup["copies_merged"] == 2
    by_name = {g["group"]: g for g in dup["groups"]}
    assert by_name["deam:2"]["trained_as"] == "deam:2" and by_name["deam:1005"]["trained_as"] == "deam:1005"
    written_manifest = pd.read_csv(tmp_path / "run" / "manifest.csv")
    assert sorted(written_manifest["song_id"]) == sorted(rows.index)
    assert {(m["dataset"], m["song_id"]) for m in by_name["deam:2"]["members"]} == {("deam", "deam:2"), ("emomusic", "emomusic:2")}
    assert by_name["deam:2"]["matches"][0]["bit_error"] < 0.05
    assert by_name["deam:2"]["matches"][0]["found_by"] == "fingerprint index"
    assert not by_name["deam:2"]["label"]["disagree"] and by_name["deam:1005"]["label"]["disagree"]
    assert [s["dataset"] for s in written["sources"]] == ["deam", "emomusic"]
    assert written["sources"][0]["deam_label_check"]["swapped_subsets"] == ["2013"]


def test_trusting_ids_only_groups_by_the_known_id_map(two_datasets, tmp_path):
    deam, emo = two_datasets
    args = DataArguments(data=[str(deam), str(emo)], deam_swapped_subsets="2013", match_audio="no",
                         cache_dir=str(tmp_path / "cache"))
    manifest, report = prepare_manifest(args, None, progress=False)
    groups = manifest.set_index("song_id")["group"]
    # only audio finds 1005 = 8; the id map merges EmoMusic 2 into DEAM 2
    assert "emomusic:2" not in groups and groups["deam:2"] == "deam:2" and groups["emomusic:8"] == "emomusic:8"
    assert report.duplicates["groups"][0]["matches"][0]["found_by"] == "id map (audio not checked)"
    assert not (tmp_path / "cache").exists()


def run_prepare(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "prepare.py", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


@pytest.mark.slow
def test_several_sources_bad_input_is_one_line(two_datasets, tmp_path):
    deam, emo = two_datasets
    # Chromaprint missing (a stand-in module that fails to import, as pyacoustid does without the library)
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "chromaprint.py").write_text("raise ImportError(\"couldn't find libchromaprint\")\n")
    pythonpath = os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])
    cases = [
        ([str(deam), str(emo)], {"PYTHONPATH": pythonpath}, "apt-get install libchromaprint1"),
        ([str(deam), str(emo), "--dynamic_labels", str(tmp_path / "d.csv")], {}, "--dynamic_labels goes with one"),
        ([str(deam), str(tmp_path / "nothing")], {}, "no such file or folder"),
    ]
    for data, env, expected in cases:
        result = run_prepare("--data", *data, "--output_dir", str(tmp_path / "out"), "--cache_dir",
                             str(tmp_path / "cache"), env=env)
        assert result.returncode == 2, (data, result.stderr[-2000:])
        lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("WARNING ")]  # logged notes
        assert len(lines) == 1 and expected in lines[0], (data, result.stderr[-2000:])
    # without Chromaprint one dataset still prepares
    ok = run_prepare("--data", str(deam), "--output_dir", str(tmp_path / "one"), env={"PYTHONPATH": pythonpath})
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = run_prepare("--data", str(deam), "--match_audio", "maybe", "--output_dir", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--match_audio" in bad.stderr


@needs_chromaprint
def test_songs_a_run_trained_on_are_found_in_another_dataset(tmp_path):
    from sentio.data.duplicates import songs_seen_in_training

    waves = [music(seed, seconds=8) for seed in range(4)]
    run = _manifest([("deam:1", "deam:1", "train"), ("deam:2", "deam:2", "validation"), ("deam:3", "deam:3", "test")])
    run["path"] = [str(write_stereo_mp3(tmp_path / "run" / f"{i}.mp3", waves[i])) for i in range(3)]
    other = _manifest([("pmemo:a", "pmemo:a", "test"), ("pmemo:b", "pmemo:b", "test"), ("pmemo:c", "pmemo:c", "test")])
    other["path"] = [str(write_reencoded(tmp_path / "other" / "a.mp3", waves[0])),   # trained on
                     str(write_reencoded(tmp_path / "other" / "b.mp3", waves[3])),   # new music
                     str(write_reencoded(tmp_path / "other" / "c.mp3", waves[2]))]   # the run's test song: fine
    seen = songs_seen_in_training(run, other, "auto", str(tmp_path / "cache"), progress=False)
    assert [(r["song_id"], r["run_song_id"], r["run_split"]) for r in seen.left_out] == [("pmemo:a", "deam:1", "train")]
    assert seen.left_out[0]["bit_error"] < 0.05 and seen.to_dict()["count"] == 1
    assert (seen.run_songs_checked, seen.songs_checked) == (2, 3)
    by_ids = songs_seen_in_training(run, other.assign(path=run["path"]), "no", str(tmp_path / "c2"), progress=False)
    assert [r["song_id"] for r in by_ids.left_out] == ["pmemo:a", "pmemo:b"] and "not checked" in by_ids.matched_by


def test_data_flag_takes_one_or_more_sources():
    from sentio.cli import parse_dataclasses, parser_for

    parser = parser_for((DataArguments,))
    (one,) = parse_dataclasses(parser, ["--data", "a"])
    (two,) = parse_dataclasses(parser, ["--data", "a", "b", "--match_audio", "no"])
    assert one.data == "a" and one.data_sources() == ["a"] and one.match_audio == "auto"
    assert two.data == ["a", "b"] and two.data_sources() == ["a", "b"] and two.match_audio == "no"


@needs_chromaprint
@pytest.mark.parametrize("kind, options", [("fbank", {"max_length": 256, "num_mel_bins": 64}),  # AST: 16 kHz
                                           ("waveform", {"sampling_rate": 24000, "window_seconds": 2.0})])  # MERT's
def test_one_decode_pass_gives_features_and_fingerprints_then_groups_and_splits(two_datasets, tmp_path, kind, options):
    """The feature pass fingerprints each clip from the waveform it decodes, at its own rate (bit
    for bit what the fingerprint-only route gives at that rate); the matching then computes
    nothing, and the final manifest's features are the pass's cached rows, never decoded again."""
    from sentio.data.fingerprint import fingerprint_file, fingerprint_folder
    from sentio.features.cache import build_feature_dataset
    from sentio.features.extractor import SentioFeatureExtractor

    deam, emo = two_datasets
    cache = tmp_path / "cache"
    extractor = SentioFeatureExtractor(kind, **options)
    seen = {}

    def decode_pass(rows):
        _, first = build_feature_dataset(rows, extractor, str(cache), fingerprints=True)
        seen["rows"], seen["report"] = rows, first
        seen["prints"] = {p: p.stat().st_mtime_ns for p in fingerprint_folder(cache).rglob("*.npy")}
        return extractor.sampling_rate

    args = DataArguments(data=[str(deam), str(emo)], deam_swapped_subsets="2013", cache_dir=str(cache),
                         split_fractions="0.4,0.3,0.3")
    manifest, report = prepare_manifest(args, tmp_path / "run", progress=False, decode_pass=decode_pass)
    rows = seen["rows"]
    assert len(rows) == 6 and not seen["report"].reused and len(seen["prints"]) == 6
    # the matching read them all from the cache: nothing new, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in fingerprint_folder(cache).rglob("*.npy")} == seen["prints"]
    assert report.duplicates["groups_found"] == 2 and len(manifest) == 4
    from sentio.data.fingerprint import cached_fingerprint, fingerprint_key

    rate = extractor.sampling_rate
    for path in rows["path"]:
        assert np.array_equal(cached_fingerprint(fingerprint_folder(cache), fingerprint_key(path, rate)),
                              fingerprint_file(path, rate))
        if rate != 16000:  # keyed by the rate: nothing of this pass stands for a 16 kHz fingerprint
            assert cached_fingerprint(fingerprint_folder(cache), fingerprint_key(path)) is None
    ds, features = build_feature_dataset(manifest, extractor, str(cache), pass_rows=rows)
    assert features.reused and features.clips == 4 and features.cache_dir == seen["report"].cache_dir
    assert set(ds["song_id"]) == set(manifest["song_id"]) and features.windows == len(ds)
    labels = manifest.set_index("song_id")[["valence", "arousal"]]
    for song, clip, label, split in zip(ds["song_id"], ds["clip"], ds["labels"], ds["split"]):
        assert manifest.at[clip, "song_id"] == song
        assert label == pytest.approx(labels.loc[song].tolist()) and split == manifest.at[clip, "split"]
    alone, _ = build_feature_dataset(manifest, extractor, str(tmp_path / "fresh"))
    assert alone["song_id"] == ds["song_id"] and alone["clip"] == ds["clip"]
    assert np.array_equal(np.asarray(alone[extractor.feature_name]), np.asarray(ds[extractor.feature_name]))


def write_dynamic(path_v: Path, path_a: Path, curves: dict[str, list[tuple[float, float, float]]]) -> None:
    """Wide 2 Hz files (song_id, sample_<ms>ms, ...) of song -> [(time, valence, arousal)], NaN-padded."""
    times = sorted({t for rows in curves.values() for t, _, _ in rows})
    header = ",".join(["song_id", *(f"sample_{int(t * 1000)}ms" for t in times)])
    for path, k in ((path_v, 1), (path_a, 2)):
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [header]
        for song, rows in curves.items():
            by_time = {r[0]: r[k] for r in rows}
            lines.append(",".join([song, *(f"{by_time[t]}" if t in by_time else "NaN" for t in times)]))
        path.write_text("\n".join(lines) + "\n")


@needs_chromaprint
def test_curves_of_a_group_become_one_curve_on_the_trained_copys_timeline(tmp_path):
    """DEAM song 2 and its EmoMusic copy, which starts 1 s later: EmoMusic's half-second at t is DEAM's
    at t + 1, the copies' values are averaged where both label a half-second, and the group trains as
    one row with that one curve."""
    waves = {name: music(seed, seconds=17.5) for seed, name in enumerate(["s2", "s3", "s7"])}
    deam = write_deam(tmp_path / "deam", {"2": (3.0, 7.0), "3": (5.0, 5.0)}, {"2": waves["s2"], "3": waves["s3"]})
    dyn = deam / "DEAM_Annotations" / "annotations" / "annotations averaged per song" / "dynamic (per second annotations)"
    write_dynamic(dyn / "valence.csv", dyn / "arousal.csv",
                  {"2": [(15.0, 0.2, 0.4), (15.5, 0.2, 0.4), (16.0, 0.2, 0.4), (16.5, 0.2, 0.4)],
                   "3": [(15.0, 0.0, 0.0), (15.5, 0.0, 0.0)]})
    emo = write_emomusic(tmp_path / "emo", {"2": (3.0, 7.0), "7": (4.0, 4.0)},
                         {"2": waves["s2"][44100:], "7": waves["s7"]})
    write_dynamic(emo / "annotations" / "valence_cont_average.csv", emo / "annotations" / "arousal_cont_average.csv",
                  {"2": [(15.0, 0.4, 0.4), (15.5, 0.4, 0.4)], "7": [(15.0, 0.1, 0.1)]})
    args = DataArguments(data=[str(deam), str(emo)], deam_swapped_subsets="none", cache_dir=str(tmp_path / "cache"),
                         split_fractions="0.4,0.3,0.3")
    manifest, report = prepare_manifest(args, tmp_path / "run", progress=False)
    assert sorted(manifest["song_id"]) == ["deam:2", "deam:3", "emomusic:7"]
    curves = pd.read_csv(tmp_path / "run" / "curves.csv")
    mine = curves[curves["song_id"] == "deam:2"].sort_values("time")
    assert mine["time"].tolist() == [15.0, 15.5, 16.0, 16.5]
    assert mine["valence"].tolist() == pytest.approx([0.2, 0.2, 0.3, 0.3])  # EmoMusic's 15.0, 15.5 are DEAM's 16.0, 16.5
    assert mine["arousal"].tolist() == pytest.approx([0.4] * 4)
    assert set(curves["song_id"]) == {"deam:2", "deam:3", "emomusic:7"}
    group = next(g for g in json.loads((tmp_path / "run" / "data_report.json").read_text())["duplicates"]["groups"])
    assert group["trained_as"] == "deam:2" and group["merged"] == ["emomusic:2"]
    decision = group["curve"]
    assert decision["shift_seconds"] == {"deam:2": 0.0, "emomusic:2": 1.0}
    assert decision["frames"] == 4 and decision["frames_from_several_copies"] == 2
    assert decision["max_difference"] == pytest.approx(0.2) and not decision["disagree"]


@needs_chromaprint
def test_prepare_with_features_decodes_each_clip_once(two_datasets, tmp_path):
    """prepare.py --features over two datasets: one feature pass over every copy fingerprints them all
    (the matching computes none), and the final manifest reuses that pass's cache (one cache folder)."""
    deam, emo = two_datasets
    cache = tmp_path / "cache"
    result = run_prepare("--data", str(deam), str(emo), "--deam_swapped_subsets", "2013", "--features", "ast",
                         "--output_dir", str(tmp_path / "out"), "--cache_dir", str(cache))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((cache / "fingerprints").rglob("*.npy"))) == 6
    folders = [p for p in cache.iterdir() if p.is_dir() and p.name != "fingerprints" and ".partial-" not in p.name]
    assert len(folders) == 1 and json.loads((folders[0] / "done.json").read_text())["clips"] == 6
    assert "4 clips" in result.stdout and len(pd.read_csv(tmp_path / "out" / "manifest.csv")) == 4
