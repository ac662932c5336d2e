"""Benchmark protocols: MARBLE's EMO split, MediaEval 2015's test songs, Music2Emo's lists and their leakage."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from sentio.args import DataArguments
from sentio.data.emomusic import EmoMusicReader
from sentio.data.protocols import PROTOCOLS, get_protocol, published_results
from sentio.data.protocols.marble_emo import artist_split, normalise_artist
from sentio.data.protocols.music2emo import known_group, published_conflicts, published_lists
from sentio.data.sources import prepare_manifest
from sentio.errors import ArgumentError
from tests.data.helpers import write_deam, write_emomusic, write_pmemo


def test_registry_and_published_numbers():
    assert set(PROTOCOLS) == {"marble-emo", "mediaeval-2015", "music2emo"}
    with pytest.raises(ArgumentError, match="--protocol 'marble' is not a protocol Sentio knows; choose one of"):
        get_protocol("marble")
    marble = {r.model: (r.valence_r2, r.arousal_r2) for r in published_results("marble-emo")}
    assert marble["MERT-330M"] == (0.612, 0.747) and marble["MuQ-iter"] == (0.628, 0.761)
    m2e = published_results("music2emo")
    joint = {r.dataset: (r.valence_r2, r.arousal_r2) for r in m2e if r.trained_with_leaked_test_songs}
    single = {r.dataset: (r.valence_r2, r.arousal_r2) for r in m2e if not r.trained_with_leaked_test_songs}
    assert joint == {"deam": (0.5184, 0.6228), "emomusic": (0.6512, 0.7616), "pmemo": (0.5473, 0.7940)}
    assert single == {"deam": (0.5131, 0.6025), "emomusic": (0.5957, 0.7489), "pmemo": (0.5360, 0.7772)}
    assert all(r.source for r in published_results())


def test_marble_artist_rule():
    assert normalise_artist("  The New-Mystikal  Troubadours\t") == "the newmystikal troubadours"
    assert normalise_artist("Kevin MacLeod") == "kevin macleod"
    # the same artist always lands in the same split, whatever its spelling's case and padding
    assert artist_split("Kevin MacLeod\t") == artist_split("kevin   macleod")


def test_marble_emo_prepare(tmp_path):
    artists = ["Kevin MacLeod", "Josh Woodward", "Ars Sonor", "Broke For Free", "Jahzzar", "Podington Bear"]
    songs = [(i + 2, artists[i % len(artists)], "evaluation" if i % 4 == 0 else "development") for i in range(16)]
    root = write_emomusic(tmp_path / "emo", songs)
    manifest, report = prepare_manifest(DataArguments(data=str(root), protocol="marble-emo"), tmp_path / "run",
                                        progress=False)
    rows = manifest.set_index("song_id")
    for sid, artist, subset in songs:
        assert rows.loc[str(sid), "split"] == ("test" if subset == "evaluation" else artist_split(artist))
    assert set(manifest["protocol"]) == {"marble-emo"}
    section = json.loads((tmp_path / "run" / "data_report.json").read_text())["protocol"]
    norm = section["label_normalisation"]
    fit = manifest[manifest["split"] != "test"]
    assert norm["songs"] == len(fit) == 12
    assert norm["mean"]["valence"] == pytest.approx(fit["valence"].mean())
    assert norm["std"]["arousal"] == pytest.approx(fit["arousal"].std(ddof=0))  # population std, as MARBLE
    assert section["window_seconds"] == 5.0 and section["max_seconds"] == 30.0
    assert report.split_method == "split column of the source"


def test_protocols_refuse_other_datasets(tmp_path):
    emo = write_emomusic(tmp_path / "emo", [(2, "A", "development"), (3, "B", "evaluation")])
    deam = write_deam(tmp_path / "deam", [5, 2001])
    with pytest.raises(ArgumentError, match=r"--protocol marble-emo applies to emomusic data, and DEAM folder .* is deam"):
        prepare_manifest(DataArguments(data=str(deam), protocol="marble-emo"), progress=False)
    with pytest.raises(ArgumentError, match=r"--protocol mediaeval-2015 applies to deam data, and EmoMusic folder"):
        prepare_manifest(DataArguments(data=str(emo), protocol="mediaeval-2015"), progress=False)
    with pytest.raises(ArgumentError, match=r"--protocol music2emo applies to deam, emomusic, pmemo data, and demo corpus"):
        prepare_manifest(DataArguments(demo=True, demo_dir=str(tmp_path / "nodemo"), protocol="music2emo"), progress=False)
    with pytest.raises(ArgumentError, match="--keep_published_leakage belongs to --protocol music2emo"):
        prepare_manifest(DataArguments(data=str(emo), protocol="marble-emo", keep_published_leakage=True), progress=False)
    with pytest.raises(ArgumentError, match="fixes the split itself; drop --split_files"):
        prepare_manifest(DataArguments(data=str(emo), protocol="marble-emo", split_files=str(tmp_path)), progress=False)


def test_mediaeval_2015_tests_the_full_songs(tmp_path):
    ids = [2, 10, 11, 12, 13, 1005, 1006, 1007, 1008, 1009, 2001, 2002, 2058]
    root = write_deam(tmp_path / "deam", ids)
    manifest, report = prepare_manifest(DataArguments(data=str(root), protocol="mediaeval-2015"), tmp_path / "run",
                                        progress=False)
    split = dict(zip(manifest["song_id"], manifest["split"]))
    assert sorted(s for s, v in split.items() if v == "test") == ["2001", "2002", "2058"]
    assert {v for s, v in split.items() if int(s) <= 2000} == {"train", "validation"}
    assert report.protocol["headline_metric"] == "dynamic"


def test_music2emo_leaves_out_copies_of_test_songs(tmp_path):
    lists = published_lists()
    deam_test = {s for s, v in lists["deam"].items() if v == "test"}
    # EmoMusic songs: two in its train list that are DEAM test songs, two clean train songs, two test songs
    leaked = sorted((s for s, v in lists["emomusic"].items() if v == "train" and s in deam_test), key=int)[:2]
    clean = sorted((s for s, v in lists["emomusic"].items() if v == "train" and s not in deam_test
                    and known_group("deam", s) not in {known_group("deam", t) for t in deam_test}), key=int)[:2]
    tests = sorted((s for s, v in lists["emomusic"].items() if v == "test"), key=int)[:2]
    songs = [(int(s), f"Artist {s}", "development") for s in leaked + clean + tests]
    root = write_emomusic(tmp_path / "emo", songs)
    manifest, report = prepare_manifest(DataArguments(data=str(root), protocol="music2emo"), tmp_path / "run",
                                        progress=False)
    assert sorted(manifest["song_id"], key=int) == sorted(clean + tests, key=int)
    assert report.protocol["left_out"] == 2 and report.protocol["test_songs_trained_on"] == 0
    assert report.skipped_by_reason == {"test song of the published lists": 2}
    assert {r["song_id"] for r in report.skipped} == set(leaked)
    assert all(f"(deam:{r['song_id']})" in r["reason"] for r in report.skipped)
    kept, report = prepare_manifest(DataArguments(data=str(root), protocol="music2emo", keep_published_leakage=True),
                                    tmp_path / "kept", progress=False)
    assert len(kept) == 6 and report.protocol["test_songs_trained_on"] == 2
    assert dict(zip(kept["song_id"], kept["split"]))[leaked[0]] == "train"


def test_music2emo_uses_the_group_column_where_there_is_one(tmp_path):
    """Copies found by content (the manifest's `group`) count as copies too, beyond the known id map."""
    protocol = get_protocol("music2emo")
    lists = published_lists()
    pm_test = next(s for s, v in lists["pmemo"].items() if v == "test")
    pm_train = next(s for s, v in lists["pmemo"].items() if v == "train")
    table = pd.DataFrame({"song_id": [pm_test, pm_train], "group": ["g1", "g1"], "path": ["a", "b"]})
    out = protocol.assign(table, "pmemo", DataArguments()).table
    assert out["skip_reason"].tolist()[0] == "" and out["skip_reason"].tolist()[1].startswith("test song of the")


def test_real_marble_split_sizes(shared_data, tmp_path):
    real = shared_data / "emomusic"
    root = tmp_path / "emo"
    (root / "clips_45seconds").mkdir(parents=True)
    for name in ("static_annotations.csv", "songs_info.csv"):
        shutil.copy(real / name, root / name)
    table = EmoMusicReader(root).read_static()
    out = get_protocol("marble-emo").assign(table, "emomusic", DataArguments()).table
    assert out["split"].value_counts().to_dict() == {"train": 504, "validation": 115, "test": 125}
    # MARBLE's test set is the one Music2Emo's EmoMusic test list names
    listed = set((real / "emomusic_test.txt").read_text().split())
    assert set(out.loc[out["split"] == "test", "song_id"]) == listed


def test_real_music2emo_conflicts(shared_data):
    """The shipped lists are the published ones, and their cross-dataset conflicts are as documented."""
    for dataset, songs in published_lists().items():
        for split in ("train", "validation", "test"):
            real = (shared_data / dataset / f"{dataset}_{split}.txt").read_text().split()
            assert sorted(real) == sorted(s for s, v in songs.items() if v == split)
    conflicts = published_conflicts()
    assert conflicts["emomusic_test_in_deam_train"] == 82
    assert conflicts["emomusic_test_in_deam_validation"] == 16
    assert conflicts["deam_test_in_emomusic_train"] == 66
    assert sum(v == "test" for v in published_lists()["emomusic"].values()) == 125
    assert sum(v == "test" for v in published_lists()["deam"].values()) == 270
    assert not any(k.startswith("pmemo") or k.endswith(("pmemo_train", "pmemo_validation")) for k in conflicts)


def test_z_scale_keeps_r2_and_ccc():
    """Why reports on [-1, 1] are the protocol's numbers: R² and CCC do not change under the z map."""
    from sentio.data.protocols import to_z
    from sentio.metrics import regression_metrics

    rng = np.random.default_rng(0)
    true = rng.uniform(-0.8, 0.8, (50, 2))
    pred = true + rng.normal(0, 0.2, (50, 2))
    stats = {"mean": {"valence": 0.1, "arousal": -0.2}, "std": {"valence": 0.3, "arousal": 0.4}}
    a, b = regression_metrics(pred, true), regression_metrics(to_z(pred, stats), to_z(true, stats))
    for key in ("r2_valence", "r2_arousal", "ccc_mean"):
        assert a[key] == pytest.approx(b[key])


def test_headline_of_each_kind_and_the_leakage_notes():
    from sentio.data.protocols import protocol_notes
    from sentio.evaluation.benchmark import protocol_headline
    from sentio.evaluation.report import prediction_table

    true = np.array([[0.1, 0.2], [-0.3, 0.5], [0.4, -0.6]])
    table = prediction_table(true + 0.05, true, ["1", "2", "3"], {})
    manifest = pd.DataFrame({"song_id": ["1", "2", "3"], "split": ["test"] * 3})
    # mediaeval-2015: the per-song curve metrics of a dynamic model, nothing for a static one
    dyn = {dim: {"song_rmse": {"value": 0.1 + i}, "song_pearson": {"value": 0.5 + i}}
           for i, dim in enumerate(("valence", "arousal", "mean"))}
    section = protocol_headline(get_protocol("mediaeval-2015"), table, {"metrics": dyn, "songs": 3},
                                manifest, {"dataset": "deam"})
    assert section["headline"]["song_rmse"]["arousal"] == 1.1 and section["headline"]["songs"] == 3
    assert "  (no published numbers kept for this protocol and dataset)" in section["table"]
    static = protocol_headline(get_protocol("mediaeval-2015"), table, None, manifest, {"dataset": "deam"})
    assert static["headline"] is None and "needs a run trained with --target dynamic" in static["notes"][-1]
    # music2emo: R² on [-1, 1], the dataset's published rows, the joint ones marked
    m2e = protocol_headline(get_protocol("music2emo"), table, None, manifest,
                            {"dataset": "pmemo", "protocol": {"name": "music2emo", "left_out": 0}})
    assert m2e["headline"]["r2"]["valence"] == pytest.approx(1 - 3 * 0.05 ** 2 / np.sum((true[:, 0] - true[:, 0].mean()) ** 2))
    assert [r["dataset"] for r in m2e["published"]] == ["pmemo", "pmemo"]
    assert sum("[trained with leaked test songs]" in line for line in m2e["table"]) == 1
    kept = protocol_notes({"name": "music2emo", "summary": "s", "keep_published_leakage": True, "test_songs_trained_on": 98})
    assert "98 train/validation songs are test songs of the published lists" in kept[-1]


def test_music2emo_takes_its_three_datasets_in_one_run(tmp_path):
    """DEAM + EmoMusic + PMEmo together (the paper's joint training): the lists split every dataset, a
    DEAM test song's EmoMusic train copy is left out, and the copies of one song train as one row."""
    emo = write_emomusic(tmp_path / "emo", [(2, "A", "development"), (24, "B", "development"), (3, "C", "evaluation")])
    deam = write_deam(tmp_path / "deam", [2, 24, 1795])  # 2: train in both lists; 24: DEAM test, EmoMusic train
    pmemo = write_pmemo(tmp_path / "PMEmo2019")
    args = DataArguments(data=[str(deam), str(emo), str(pmemo)], protocol="music2emo", match_audio="no",
                         deam_swapped_subsets="none")
    manifest, report = prepare_manifest(args, tmp_path / "run", progress=False)
    split = dict(zip(manifest["song_id"], manifest["split"]))
    # emomusic:2 merged into deam:2 (one row), emomusic:24 left out (a DEAM test song), pmemo 1 and 4 in train
    assert split == {"deam:2": "train", "deam:24": "test", "deam:1795": "test", "emomusic:3": "test",
                     "pmemo:1": "train", "pmemo:4": "train"}
    assert report.protocol["left_out"] == 1 and report.protocol["test_songs_trained_on"] == 0
    assert [r["song_id"] for r in report.skipped if r["reason"].startswith("test song of")] == ["emomusic:24"]
    assert report.duplicates["copies_merged"] == 1
    assert set(manifest["protocol"]) == {"music2emo"}
    written = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert written["protocol"]["name"] == "music2emo" and [s["dataset"] for s in written["sources"]] == \
        ["deam", "emomusic", "pmemo"]
    # the paper's condition: the lists as published, copies apart, the leaked song trained on
    kept, report = prepare_manifest(DataArguments(data=[str(deam), str(emo), str(pmemo)], protocol="music2emo",
                                                  match_audio="no", deam_swapped_subsets="none",
                                                  keep_published_leakage=True), tmp_path / "kept", progress=False)
    split = dict(zip(kept["song_id"], kept["split"]))
    assert split["emomusic:24"] == "train" and split["deam:24"] == "test" and split["emomusic:2"] == "train"
    assert report.protocol["test_songs_trained_on"] == 1


def test_protocols_refuse_several_sources_they_do_not_take(tmp_path):
    emo = write_emomusic(tmp_path / "emo", [(2, "A", "development"), (3, "B", "evaluation")])
    deam = write_deam(tmp_path / "deam", [5, 2001])
    csv = tmp_path / "labels.csv"
    csv.write_text("path,valence,arousal\nx.mp3,5,5\n")
    cases = [
        ("marble-emo", [emo, deam], r"--protocol marble-emo reads one emomusic dataset per run; give one --data source"),
        ("mediaeval-2015", [deam, emo], r"--protocol mediaeval-2015 reads one deam dataset per run"),
        ("music2emo", [deam, csv], r"--protocol music2emo applies to deam, emomusic, pmemo data, and CSV .*labels.csv is csv"),
    ]
    for name, data, message in cases:
        with pytest.raises(ArgumentError, match=message):
            prepare_manifest(DataArguments(data=[str(p) for p in data], protocol=name, match_audio="no",
                                           label_scale="1-9"), progress=False)
