"""Feature cache: computed once, reloaded without recomputing, keyed on audio + params, not labels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sentio.features.cache as fc
from sentio.features.datasets import WindowDataset
from sentio.features.extractor import SentioFeatureExtractor
from sentio.features.params import FbankParams, kaldi_fbank
from sentio.features.stats import compute_fbank_stats
from tests.conftest import REPO, write_audio

SECONDS = [1.0, 1.2, 2.5, 2.2, 0.8]  # max_length=128: 1.295 s windows -> 1, 1, 2, 2, 1 windows


def make_manifest(root: Path, broken: bool = True) -> pd.DataFrame:
    rows = []
    for i, seconds in enumerate(SECONDS):
        path = write_audio(root / f"s{i}.wav", seconds=seconds, sr=22050, channels=1 + i % 2, seed=i)
        rows.append({"song_id": f"s{i}", "path": str(path), "valence": 0.1 * i, "arousal": -0.2 * i,
                     "split": ["train", "train", "validation", "test", "train"][i], "subset": ""})
    if broken:
        (root / "corrupt.mp3").write_bytes(np.random.default_rng(0).bytes(4000))
        (root / "empty.mp3").write_bytes(b"")
        for name in ("corrupt", "empty"):
            rows.append({"song_id": name, "path": str(root / f"{name}.mp3"), "valence": 0.0, "arousal": 0.0,
                         "split": "train", "subset": ""})
    return pd.DataFrame(rows)


@pytest.fixture
def corpus(tmp_path):
    return make_manifest(tmp_path / "audio"), tmp_path / "cache"


def extractor(**overrides) -> SentioFeatureExtractor:
    return SentioFeatureExtractor("fbank", **{"max_length": 128, **overrides})


def forbid_compute(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("features were recomputed")

    monkeypatch.setattr(fc, "load_audio", fail)  # no clip is decoded again


def test_build_schema_labels_and_failures(corpus):
    manifest, cache = corpus
    ds, report = fc.build_feature_dataset(manifest, extractor(), str(cache))
    assert report.clips == 7 and report.clips_ok == 5 and report.windows == 7 == len(ds)
    assert not report.reused
    reasons = {f.song_id: f.reason for f in report.failed}
    assert set(reasons) == {"corrupt", "empty"}
    assert "empty file" in reasons["empty"] and "corrupt" in reasons["corrupt"]

    assert ds.column_names == ["song_id", "clip", "window", "start", "length", "input_values", "labels", "split"]
    assert type(ds.features["input_values"]).__name__ == "Array2D"
    assert ds.features["input_values"].shape == (128, 128)
    assert ds["song_id"][:] == ["s0", "s1", "s2", "s2", "s3", "s3", "s4"]
    assert ds["window"][:] == [0, 0, 0, 1, 0, 1, 0]
    lengths = ds["length"][:]
    assert lengths[2] == lengths[3] == 128 and lengths[0] < 128 and lengths[6] < 128
    np.testing.assert_allclose(ds["labels"][5], [0.3, -0.6], rtol=1e-6)
    assert ds["split"][:] == ["train", "train", "validation", "validation", "test", "test", "train"]

    # Cached values equal the extractor on the same file; numpy reads give whole float32 blocks.
    direct = extractor()(manifest.at[2, "path"], return_tensors="np")["input_values"]
    stored = ds.with_format("numpy")[2:4]["input_values"]
    assert stored.dtype == np.float32 and stored.shape == (2, 128, 128)
    np.testing.assert_array_equal(stored, direct)

    train = WindowDataset(ds, "input_values", "train")  # what training and evaluation read of a split
    item = train[2]
    assert len(train) == 3 and set(item) == {"input_values", "length", "labels"}
    assert item["input_values"].shape == (128, 128) and item["labels"].shape == (2,)
    assert train.song_ids == [ds["song_id"][i] for i in (0, 1, 6)]


@pytest.mark.parametrize("kind,column_type", [("waveform", "List"), ("mel_image", "Array2D")])
def test_other_kinds_round_trip_through_the_cache(tmp_path, kind, column_type):
    manifest = make_manifest(tmp_path / "audio", broken=False).iloc[:3]
    ex = SentioFeatureExtractor(kind, window_seconds=1.0)
    ds, report = fc.build_feature_dataset(manifest, ex, str(tmp_path / "cache"))
    assert type(ds.features[ex.feature_name]).__name__ == column_type
    assert report.windows == len(ds) == 4  # 1.0 s, 1.2 s, 2.5 s clips: 1, 1, 2 windows
    stored = ds.with_format("numpy")[2:4][ex.feature_name]
    np.testing.assert_array_equal(stored, ex(manifest.at[2, "path"], return_tensors="np")[ex.feature_name])


def test_reload_without_recompute_and_fresh_labels(corpus, monkeypatch):
    manifest, cache = corpus
    first, report = fc.build_feature_dataset(manifest, extractor(), str(cache))
    marker = Path(report.cache_dir) / "done.json"
    stamp = marker.stat().st_mtime_ns
    assert json.loads(marker.read_text())["files"] == ["features.arrow"]

    forbid_compute(monkeypatch)
    relabelled = manifest.assign(valence=-manifest["valence"], split=["test"] * len(manifest))
    again, report2 = fc.build_feature_dataset(relabelled, extractor(), str(cache))
    assert report2.reused and report2.cache_dir == report.cache_dir
    assert marker.stat().st_mtime_ns == stamp
    assert report2.failed == report.failed
    np.testing.assert_array_equal(again.with_format("numpy")["input_values"][:],
                                  first.with_format("numpy")["input_values"][:])
    # Labels and splits come from the new manifest, not from the cache.
    np.testing.assert_allclose(again["labels"][5], [-0.3, -0.6], rtol=1e-6)
    assert set(again["split"][:]) == {"test"}


def test_recompute_on_param_change_and_touched_file(corpus, monkeypatch):
    manifest, cache = corpus
    _, base = fc.build_feature_dataset(manifest, extractor(), str(cache))

    ds, changed = fc.build_feature_dataset(manifest, extractor(max_length=64), str(cache))
    assert not changed.reused and changed.cache_dir != base.cache_dir
    assert ds.features["input_values"].shape == (64, 128)

    path = manifest.at[1, "path"]
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    _, touched = fc.build_feature_dataset(manifest, extractor(), str(cache))
    assert not touched.reused and touched.cache_dir != base.cache_dir

    # Without a completion marker (a crashed run), the directory is recomputed, not trusted.
    os.remove(Path(touched.cache_dir) / "done.json")
    _, again = fc.build_feature_dataset(manifest, extractor(), str(cache))
    assert not again.reused and again.windows == touched.windows


def test_ast_stats_stream_over_real_frames(corpus):
    manifest, _ = corpus
    p = FbankParams(max_length=128)
    mean, std = compute_fbank_stats(manifest, p)  # broken rows are skipped
    values = []
    for path in manifest["path"][:5]:
        from sentio.features.audio import load_audio

        fbank, lengths, _ = kaldi_fbank(load_audio(path, 16000), p)
        values += [w[:n] for w, n in zip(fbank, lengths)]
    values = np.concatenate([v.ravel() for v in values]).astype(np.float64)
    assert mean == pytest.approx(values.mean(), rel=1e-6) and std == pytest.approx(values.std(), rel=1e-5)
    assert compute_fbank_stats(manifest, p, max_clips=1) != (mean, std)


NUM_PROC_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import pandas as pd, torch
    from sentio.features.cache import build_feature_dataset
    from sentio.features.extractor import SentioFeatureExtractor
    torch.set_num_threads(2)
    a = torch.randn(512, 512)
    (a @ a).sum()  # a multi-threaded op in the parent before the workers fork
    manifest = pd.read_csv(sys.argv[1], keep_default_na=False)
    ds, report = build_feature_dataset(manifest, SentioFeatureExtractor("fbank", max_length=128), sys.argv[2], num_proc=2)
    print(json.dumps({"windows": len(ds), "failed": sorted(f.song_id for f in report.failed),
                      "songs": list(ds["song_id"])}))
    """
)


@pytest.mark.slow
def test_num_proc_2_after_parent_torch_op(corpus, tmp_path):
    manifest, cache = corpus
    csv = tmp_path / "manifest.csv"
    manifest.to_csv(csv, index=False)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    # Own session, so a hang (the fork-after-torch trap) fails the test and its forked workers die too.
    proc = subprocess.Popen([sys.executable, "-c", NUM_PROC_SCRIPT, str(csv), str(cache)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("build_feature_dataset(num_proc=2) hung after a torch op in the parent")
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["windows"] == 7 and result["failed"] == ["corrupt", "empty"]
    assert result["songs"] == ["s0", "s1", "s2", "s2", "s3", "s3", "s4"]  # manifest order across shards
    files = json.loads(next(cache.glob("fbank-*/done.json")).read_text())["files"]
    assert len(files) == 2
