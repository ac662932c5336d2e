"""Time-resolved (2 Hz) targets: windows on the label grid, labels that line up with the audio, frame
pooling, and a dynamic head for every backbone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sentio.data.dynamic import FRAME_SECONDS, Curve, stitch_frames, stitch_labelled
from sentio.features.cache import build_feature_dataset
from sentio.features.extractor import SentioFeatureExtractor
from sentio.features.params import FbankParams, MelImageParams, WaveformParams
from sentio.models import BACKBONES, build_model
from sentio.models.head import pool_frames
from tests.tiny import TINY

STEP_AT = 3.0  # seconds: where the synthetic clip's "emotion" (and its loudness) steps up


def test_windows_start_on_the_label_grid():
    for params in (FbankParams(max_length=256, start_grid_seconds=0.5),  # 2.575 s windows
                   WaveformParams(window_seconds=1.3, sampling_rate=24000, start_grid_seconds=0.5),
                   MelImageParams(window_seconds=2.2, start_grid_seconds=0.5)):
        grid = int(0.5 * params.sampling_rate)
        assert params.hop_samples % grid == 0 and params.hop_samples <= params.window_samples
        for seconds in (1.0, 7.3, 11.9):
            starts = params.starts(int(seconds * params.sampling_rate))
            assert all(s % grid == 0 for s in starts) and starts == sorted(set(starts))
            if seconds > params.window_duration:  # only a tail shorter than min_last of a window (+ the grid) is left
                uncovered = seconds * params.sampling_rate - (starts[-1] + params.window_samples)
                assert uncovered <= params.min_last * params.window_samples + grid
    with pytest.raises(ValueError, match="not a whole number of samples"):
        FbankParams(sampling_rate=16001, start_grid_seconds=0.5).starts(10_000)


def test_labels_line_up_with_the_audio_of_a_known_step(tmp_path):
    """A clip quiet until 3.0 s and loud after, labelled -0.5 then +0.5 at 2 Hz: in every window,
    the frames labelled +0.5 are exactly the loud half-seconds."""
    import soundfile as sf

    rate, seconds = 16000, 9.0
    t = np.arange(int(seconds * rate)) / rate
    wave = np.sin(2 * np.pi * 440 * t) * np.where(t < STEP_AT, 0.01, 0.5)
    sf.write(tmp_path / "step.wav", wave.astype(np.float32), rate)
    times = np.arange(1, int(seconds / FRAME_SECONDS) + 1) * FRAME_SECONDS  # 0.5 .. 9.0: [T - 0.5, T)
    values = np.where(times - FRAME_SECONDS < STEP_AT, -0.5, 0.5)[:, None].repeat(2, axis=1).astype(np.float32)
    manifest = pd.DataFrame({"song_id": ["s"], "path": [str(tmp_path / "step.wav")], "valence": [0.0],
                             "arousal": [0.0], "split": ["train"]})
    extractor = SentioFeatureExtractor("fbank", max_length=256, do_normalize=False, start_grid_seconds=0.5)
    ds, _ = build_feature_dataset(manifest, extractor, str(tmp_path / "cache"), curves={"s": Curve(times, values)})
    view = ds.with_format("numpy")
    assert len(view) >= 3
    # the loudness of each half-second: its 10 ms fbank frames' peak band, averaged
    halves = [(float(row["start"]) + 0.5 * j, row["input_values"][j * 50 : (j + 1) * 50].max(axis=1).mean(),
               row["frame_labels"][j, 0]) for row in view for j in range(5)]
    assert all(row["frame_labels"].shape == (5, 2) for row in view)  # 2.575 s windows: five whole half-seconds
    middle = (min(h[1] for h in halves) + max(h[1] for h in halves)) / 2
    for begin, loudness, label in halves:
        loud = begin >= STEP_AT
        assert (loudness > middle) == loud and label == (0.5 if loud else -0.5), (begin, loudness, label)


def test_pool_frames_averages_the_tokens_centred_in_each_half_second():
    tokens = torch.arange(6, dtype=torch.float32).view(1, 6, 1).repeat(2, 1, 1)
    centers = torch.tensor([0.1, 0.3, 0.6, 0.9, 1.2, 1.4])  # frames 0, 0, 1, 1, 2, 2
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)  # second row: padded after 0.75 s
    frames, frame_mask = pool_frames(tokens, mask, centers, num_frames=3)
    torch.testing.assert_close(frames[0, :, 0], torch.tensor([0.5, 2.5, 4.5]))
    torch.testing.assert_close(frames[1, :2, 0], torch.tensor([0.5, 2.0]))
    assert frame_mask.tolist() == [[True, True, True], [True, True, False]]
    # coarse tokens: a frame with no centre of its own takes its nearest token
    coarse, _ = pool_frames(tokens[:, :2], None, torch.tensor([0.35, 1.05]), num_frames=3)
    torch.testing.assert_close(coarse[0, :, 0], torch.tensor([0.0, 1.0, 1.0]))  # frame 1: 1.05 is nearer 0.75


# Every backbone of the registry but CLAP, which repeat-pads a short clip and so masks nothing (its
# dynamic head is tested in test_clap.py): a new backbone joins this test, or fails it, on its own.
MASKING = [name for name in BACKBONES if name != "clap"]


@pytest.mark.parametrize("name", MASKING)
def test_dynamic_head_predicts_each_half_second_and_masks_padding(name):
    torch.manual_seed(0)
    step = {"ast": 0.05, "wav2vec2": 1 / 1600, "vit": 0.1, "mert": 1 / 1600}[name]  # 3.2 s windows
    model = build_model(name, from_scratch=True, config_overrides={**TINY[name], "input_step_seconds": step},
                        head_kwargs={"target": "both", "uncertainty": True}).train()
    x = {"ast": torch.randn(3, 64, 32), "wav2vec2": torch.randn(3, 5120), "vit": torch.randn(3, 32, 32),
         "mert": torch.randn(3, 5120)}[name]
    steps = x.shape[1] if name == "ast" else x.shape[-1]
    mask = torch.ones(3, steps, dtype=torch.long)
    mask[2, steps // 2 :] = 0  # the last window is half padding
    frame_labels = torch.rand(3, 6, 2) * 2 - 1
    frame_labels[0, :2] = float("nan")  # unlabelled half-seconds (e.g. before DEAM's 15 s)
    out = model(x, attention_mask=mask, labels=torch.rand(3, 2) * 2 - 1, frame_labels=frame_labels)
    assert out.frame_predictions.shape == (3, 6, 2) and out.frame_spread.shape == (3, 6, 2)
    assert out.frame_mask[:2].all() and out.frame_mask[2, :2].all() and not out.frame_mask[2, -2:].any()
    weights = out.frame_mask[2].float()
    torch.testing.assert_close(out.predictions[2], (out.frame_predictions[2] * weights[:, None]).sum(0) / weights.sum())
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_stitching_averages_overlapping_windows_at_each_label_time():
    values = np.array([[[1.0], [2.0], [3.0]], [[5.0], [7.0], [9.0]]])  # two windows of 3 frames, 1 s apart
    curves = stitch_frames(["a", "a"], [0.0, 1.0], values, np.array([[1, 1, 1], [1, 1, 0]], bool))
    times, stitched = curves["a"]
    assert times.tolist() == [0.5, 1.0, 1.5, 2.0]
    assert stitched[:, 0].tolist() == [1.0, 2.0, (3.0 + 5.0) / 2, 7.0]


def test_stitched_labelled_curves_keep_only_real_labelled_frames():
    """Training's and evaluation's 2 Hz scores read the same curves: predictions and labels stitched
    alike over frames that are real and labelled; a song without such a frame has no curve."""
    pred = np.array([[[1.0, -1.0], [2.0, -2.0]], [[3.0, -3.0], [4.0, -4.0]], [[9.0, 9.0], [9.0, 9.0]]])
    labels = np.array([[[0.1, 0.2], [np.nan, np.nan]], [[0.3, 0.4], [0.5, 0.6]], [[np.nan, np.nan]] * 2])
    mask = np.array([[1, 1], [1, 0], [1, 1]], bool)
    curves = stitch_labelled(["a", "a", "b"], [0.0, 0.5, 0.0], pred, mask, labels)
    assert list(curves) == ["a"]  # b has no labelled frame
    times, predicted, true = curves["a"]
    assert times.tolist() == [0.5, 1.0]  # frame 2 of window 1 is unlabelled; frame 2 of window 2 is padding
    assert predicted.tolist() == [[1.0, -1.0], [3.0, -3.0]]
    np.testing.assert_allclose(true, [[0.1, 0.2], [0.3, 0.4]])
