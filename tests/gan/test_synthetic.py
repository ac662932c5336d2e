"""The synthetic split on disk: schema equal to the real features, train only, loadable and checked;
Griffin-Lim WAVs, PNG grids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from datasets import load_from_disk

from sentio.features.datasets import SongWindowDataset
from sentio.features.cache import build_feature_dataset
from sentio.features.extractor import SentioFeatureExtractor
from sentio.gan.data import SpecLayout, real_features, train_images
from sentio.gan.models import Generator
from sentio.gan.render import label_distributions, spectrogram_grid, write_audio_samples
from sentio.gan.synthetic import (
    MANIFEST,
    generated_blocks,
    load_synthetic,
    sample_labels,
    with_synthetic,
    write_synthetic,
)
from tests.conftest import write_audio
from tests.gan.helpers import TINY_GAN

EXTRACTOR = dict(max_length=64, num_mel_bins=32)  # 0.64 s windows, 32 bins


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Real cached features of 6 short clips: 4 train, 1 validation, 1 test."""
    root = tmp_path_factory.mktemp("real")
    paths = [write_audio(root / f"c{i}.wav", seconds=1.5, sr=16000, seed=i) for i in range(6)]
    manifest = pd.DataFrame({"song_id": [f"s{i}" for i in range(6)], "path": [str(p) for p in paths],
                             "valence": np.linspace(-0.8, 0.8, 6), "arousal": np.linspace(0.5, -0.5, 6),
                             "split": ["train"] * 4 + ["validation", "test"]})
    extractor = SentioFeatureExtractor("fbank", **EXTRACTOR)
    features, _ = build_feature_dataset(manifest, extractor, str(root / "cache"))
    return features, extractor


@pytest.fixture(scope="module")
def written(real, tmp_path_factory):
    features, extractor = real
    layout = SpecLayout.for_extractor(extractor, 16, 16)
    images, labels, songs = train_images(features, layout)
    layout.fit(images)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("gan")
    syn_labels = sample_labels(labels, 10, seed=0)
    dataset = write_synthetic(out, generated_blocks(Generator(TINY_GAN), layout, syn_labels, seed=0), layout, extractor)
    return out, dataset, layout, syn_labels


def test_train_images_are_train_split_full_windows(real):
    features, extractor = real
    layout = SpecLayout.for_extractor(extractor, 16, 16)
    images, labels, songs = train_images(features, layout)
    assert set(songs) == {"s0", "s1", "s2", "s3"}
    assert images.shape[1:] == (1, 16, 16)
    # 1.5 s at 10 ms frames, 64-frame windows: 2 full ones per clip (the tail window is padded)
    assert len(images) == 8
    with pytest.raises(ValueError, match="waveform features are not spectrograms"):
        SpecLayout.for_extractor(SentioFeatureExtractor("waveform"), 16, 16)


def test_layout_round_trip_keeps_smooth_content(real):
    features, extractor = real
    layout = SpecLayout.for_extractor(extractor, 32, 32)
    arrays, _, _ = real_features(features, layout, "train")
    images = layout.fit(layout.to_gan(arrays))
    back = layout.from_gan(images)
    assert back.shape == arrays.shape and back.dtype == np.float32
    # down-sampling 2x in both axes loses detail but keeps the coarse picture
    assert np.corrcoef(back.ravel(), arrays.ravel())[0, 1] > 0.9


def test_split_round_trips_with_the_real_schema(real, written):
    features, extractor = real
    out, dataset, layout, syn_labels = written
    loaded = load_from_disk(str(out / "synthetic"))
    real_schema = dict(features.features)
    assert {k: v for k, v in loaded.features.items() if k != "source"} == real_schema
    assert loaded.column_names == features.column_names + ["source"]
    assert len(loaded) == 10 and loaded["song_id"][:2] == ["syn-000001", "syn-000002"]
    assert set(loaded["split"]) == {"train"} and set(loaded["source"]) == {"synthetic"}
    assert set(loaded["length"]) == {64}
    assert np.allclose(np.asarray(loaded["labels"]), syn_labels)
    first = np.asarray(loaded.with_format("numpy")[0]["input_values"])
    assert first.shape == (64, 32) and np.isfinite(first).all() and first.std() > 0
    manifest = pd.read_csv(out / MANIFEST)
    assert manifest["song_id"].tolist() == loaded["song_id"] and set(manifest["split"]) == {"train"}


def test_load_synthetic_checks_the_run_extractor(written):
    out = written[0]
    assert len(load_synthetic(out, SentioFeatureExtractor("fbank", **EXTRACTOR))) == 10
    with pytest.raises(ValueError, match=r"shape \[64, 32\], this run's extractor makes \[128, 32\]"):
        load_synthetic(out, SentioFeatureExtractor("fbank", max_length=128, num_mel_bins=32))
    with pytest.raises(ValueError, match="made with mean="):
        load_synthetic(out, SentioFeatureExtractor("fbank", mean=-3.0, **EXTRACTOR))
    with pytest.raises(ValueError, match="do not fit this mel_image run"):
        load_synthetic(out, SentioFeatureExtractor("mel_image"))
    with pytest.raises(FileNotFoundError, match="no synthetic split here"):
        load_synthetic(out / "audio", SentioFeatureExtractor("fbank", **EXTRACTOR))


def test_synthetic_rows_join_training_only(real, written):
    from sentio.args import ModelArguments
    from sentio.training.setup import training_datasets

    features, extractor = real
    out = written[0]
    train, val, test = training_datasets(features, extractor, ModelArguments())
    mixed, info = with_synthetic(train, out, 0.5, extractor, seed=0)
    assert info["synthetic_rows"] == 2 and info["real_train_songs"] == 4  # 0.5 per real train song
    assert len(mixed) == len(train) + 2
    assert sum(s.startswith("syn-") for s in mixed.song_ids) == 2
    item = mixed[len(mixed) - 1]
    assert item["input_values"].shape == (64, 32) and int(item["length"]) == 64
    for ds in (val, test):
        assert not any(s.startswith("syn-") for s in ds.song_ids)
    everything, info = with_synthetic(train, out, None, extractor)
    assert info["synthetic_rows"] == 10
    with pytest.raises(ValueError, match="asks for 40 synthetic rows"):
        with_synthetic(train, out, 10.0, extractor)
    assert isinstance(train, SongWindowDataset)


def test_sampled_labels_follow_the_train_labels():
    songs = np.array([[0.5, 0.5], [-0.5, -0.5]], np.float32)
    labels = sample_labels(songs, 2000, seed=0, jitter=0.05)
    assert labels.shape == (2000, 2) and labels.min() >= -1 and labels.max() <= 1
    assert np.abs(labels.mean(0)).max() < 0.05
    nearest = np.abs(labels[:, None, :] - songs[None]).max(-1).min(-1)
    assert np.quantile(nearest, 0.99) < 0.2


def test_griffin_lim_wavs_and_png_grids(real, written, tmp_path):
    features, extractor = real
    out, dataset, layout, syn_labels = written
    syn = np.asarray(dataset.with_format("numpy")[:2]["input_values"])
    paths = write_audio_samples(tmp_path, syn, syn_labels[:2], extractor, "synthetic")
    wave, sr = sf.read(paths[0])
    assert sr == 16000 and wave.ndim == 1
    # 64 frames of 10 ms: about 0.64 s of audio
    assert abs(len(wave) - 0.64 * sr) < 0.05 * sr and 0.5 < np.abs(wave).max() <= 0.91
    arrays, labels, _ = real_features(features, layout, "train")
    grid = spectrogram_grid(tmp_path / "grid.png", arrays, labels, syn, syn_labels[:2], 1)
    dist = label_distributions(tmp_path / "labels.png", labels, syn_labels)
    import matplotlib.image

    for png in (grid, dist):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(grid).shape[0] > 200  # two rows of spectrograms


def test_consistency_filter_keeps_exactly_the_windows_within_the_threshold():
    from sentio.gan.guide import consistent_windows, within

    labels = np.random.default_rng(0).uniform(-1, 1, (150, 2)).astype(np.float32)
    drawn = []  # every (label, reading) the filter was shown

    def generate(y, call):  # a "window" is the label plus a reading error that new noise redraws
        error = np.random.default_rng(call).uniform(-0.4, 0.4, y.shape).astype(np.float32)
        drawn.append((y.copy(), y + error))
        return y + error

    blocks, report = consistent_windows(generate, lambda x: x, labels, threshold=0.15, tries=3, chunk=64)
    kept = [b for b in blocks]
    windows = np.concatenate([w for w, _ in kept])
    kept_labels = np.concatenate([y for _, y in kept])
    assert (np.abs(windows - kept_labels) <= 0.15).all()
    shown_labels = np.concatenate([y for y, _ in drawn])
    shown = np.concatenate([w for _, w in drawn])
    passing = within(shown, shown_labels, 0.15)
    assert np.array_equal(np.sort(windows, axis=0), np.sort(shown[passing], axis=0))  # every passing one, no other
    assert report.windows_generated == len(shown) and report.windows_kept == len(windows) == passing.sum()
    assert report.windows_kept + report.labels_dropped == report.labels_requested == 150
    assert 0 < report.labels_dropped < 150 and report.to_dict()["pass_rate"] == pytest.approx(passing.mean())
    # a label is retried only until it passes: each label appears at most once among the kept windows
    assert len(np.unique(kept_labels, axis=0)) == len(kept_labels)
