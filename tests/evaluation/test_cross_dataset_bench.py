"""bench/cross_dataset.py's matrix code on tiny data, in seconds (the benchmark itself trains for minutes):
the rows (all-but-Y), the split lists that keep every dataset's own test songs out of a joint run's
training, and the table and heat map read from real eval_report.json files."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pandas as pd

from sentio.args import DataArguments
from sentio.data.sources import prepare_manifest
from sentio.evaluation.report import build_report, prediction_table
from tests.conftest import REPO, write_audio


def load_bench():
    """The benchmark script as a module (bench/ is not a package)."""
    name = "cross_dataset_bench"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / "cross_dataset.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)  # its dataclasses look their module up
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def csv_dataset(root, seed: int, songs: int = 10):
    """`songs` one-second clips with spread labels in a labels.csv (no split column: a seeded split)."""
    rows = []
    for i in range(songs):
        path = write_audio(root / "audio" / f"s{seed}_{i:02d}.wav", seconds=1.0, sr=16000, seed=100 * seed + i)
        rows.append({"path": f"audio/{path.name}", "valence": round(-0.9 + 0.18 * i, 3), "arousal": round(0.8 - 0.15 * i, 3)})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def test_rows_include_all_but_each_dataset_and_a_joint_run():
    bench = load_bench()
    three = [bench.Corpus(name, name) for name in ("deam", "emomusic", "pmemo")]
    rows = bench.rows_of(three)
    assert [name for name, _ in rows] == ["deam", "emomusic", "pmemo", "all but deam", "all but emomusic",
                                          "all but pmemo", "all"]
    assert [c.name for c in dict(rows)["all but emomusic"]] == ["deam", "pmemo"]
    assert [bench.row_label(n, m, three) for n, m in rows][:4] == ["deam", "emomusic", "pmemo", "all but deam"]
    two = three[:2]
    assert [bench.row_label(n, m, two) for n, m in bench.rows_of(two)] == [
        "deam (= all but emomusic)", "emomusic (= all but deam)", "all"]


def test_joint_run_keeps_each_datasets_own_split(tmp_path):
    bench = load_bench()
    corpora = []
    for seed, name in ((1, "a"), (2, "b")):
        data = csv_dataset(tmp_path / name, seed)
        alone, _ = prepare_manifest(DataArguments(data=str(data), label_scale="-1-1"), None, progress=False)
        corpora.append(bench.Corpus(name, str(data), splits=dict(zip(alone["song_id"], alone["split"])),
                                    dataset=alone["dataset"].iloc[0]))
        assert set(alone["split"]) == {"train", "validation", "test"}
    lists = bench.split_lists(corpora, tmp_path / "lists")
    joint, report = prepare_manifest(DataArguments(data=[c.data for c in corpora], split_files=lists, match_audio="no",
                                                   label_scale="-1-1", cache_dir=str(tmp_path / "cache")), None,
                                     progress=False)
    assert len(joint) == 20
    for corpus, prefix in zip(corpora, ("csv:", "csv-2:")):  # the ids a multi-dataset manifest gives
        mine = joint[joint["song_id"].str.startswith(prefix)]
        assert dict(zip(mine["song_id"].str.removeprefix(prefix), mine["split"])) == corpus.splits


def write_eval_report(folder, seed: int, left_out: int = 0):
    rng = np.random.default_rng(seed)
    true = rng.uniform(-0.8, 0.8, (8, 2))
    pred = true + rng.normal(0, 0.2, true.shape)
    table = prediction_table(pred, true, [f"s{i}" for i in range(8)], {})
    report = build_report(table, level="song", split="test", model_dir="run", windows=8, draws=200, seed=0)
    report.left_out_seen_in_training = {"count": left_out, "left_out": []}
    folder.mkdir(parents=True)
    (folder / "eval_report.json").write_text(json.dumps(report.to_json()))
    return report


def test_table_and_heat_map_from_eval_reports(tmp_path):
    bench = load_bench()
    table, reports = {}, {}
    for r, row in enumerate(("demo (= all but shifted)", "shifted (= all but demo)", "all")):
        table[row] = {}
        for c, column in enumerate(("demo", "shifted")):
            folder = tmp_path / f"{r}-{c}"
            reports[row, column] = write_eval_report(folder, seed=10 * r + c, left_out=int(row == "all"))
            table[row][column] = bench.read_cell(folder / "eval_report.json")
    cell, report = table["all"]["shifted"], reports["all", "shifted"]
    assert cell.songs == 8 and cell.left_out == 1
    for dim in ("valence", "arousal", "mean"):
        for metric in ("ccc", "r2"):
            entry = report.metrics[dim][metric]
            assert getattr(cell, metric)[dim] == bench.Estimate(entry["value"], entry["ci_low"], entry["ci_high"])
            assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    text = bench.markdown(table, ["demo", "shifted"])
    lines = text.splitlines()
    assert lines[0] == "| train \\ test | demo | shifted |"
    assert f"CCC {cell.ccc['mean'].show()}<br>R² {cell.r2['mean'].show()}<br>(8 songs, 1 left out)" in text
    detail = [line for line in lines if line.startswith("| all | shifted |")]
    assert detail == ["| all | shifted | 8 (1 left out) | " + " | ".join(
        [cell.ccc[d].show() for d in ("valence", "arousal", "mean")] +
        [cell.r2[d].show() for d in ("valence", "arousal", "mean")]) + " |"]
    assert len(lines) == 2 + 3 + 1 + 2 + 6  # matrix header + 3 rows, a blank line, detail header + 6 cells
    bench.heat_map(table, ["demo", "shifted"], tmp_path / "docs" / "cross.png")
    assert (tmp_path / "docs" / "cross.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert bench.Estimate(None, None, None).show() == "n/a"
