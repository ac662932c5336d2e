"""Probe mode: the frozen encoder's pooled layers are computed once, cached, reused by any head,
and equal what the saved model computes on raw audio."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sentio.args import EmotionTrainingArguments
from sentio.features.cache import build_feature_dataset
from sentio.features.extractor import SentioFeatureExtractor
from sentio.models import build_model
from sentio.training import probe
from sentio.training.probe import INPUT_NAME, EmbeddingCollator, probe_embeddings
from sentio.models.plan import PROBE_HEAD
from sentio.training.trainer import EmotionTrainer
from tests.conftest import write_audio
from tests.tiny import TINY

RATE = 8000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """12 clips of 1.6 s (2 windows of 1 s each: the second one end-aligned) as waveform features, random labels, fixed split."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        path = write_audio(root / f"{i}.wav", seconds=1.6, sr=RATE, seed=i)
        split = "train" if i < 8 else ("validation" if i < 10 else "test")
        rows.append({"song_id": str(i), "path": str(path), "valence": rng.uniform(-1, 1), "arousal": rng.uniform(-1, 1),
                     "split": split, "subset": "", "duration": 1.6, "sample_rate": RATE, "channels": 1})
    extractor = SentioFeatureExtractor("waveform", sampling_rate=RATE, window_seconds=1.0)
    cache = tmp_path_factory.mktemp("cache")
    features, report = build_feature_dataset(pd.DataFrame(rows), extractor, str(cache))
    return features, report, extractor, cache


def tiny_probe(seed: int = 0, **head) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("mert", from_scratch=True, config_overrides=TINY["mert"],
                       head_kwargs={**PROBE_HEAD, "head_hidden_size": 16, "probe": True, **head}).eval()


def raw_outputs(model, features, extractor):
    x = torch.from_numpy(np.stack(features.with_format("numpy")[extractor.feature_name]))
    lengths = torch.as_tensor(features["length"][:])
    mask = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).long()
    with torch.no_grad():
        return model(x, attention_mask=mask, output_layer_embeddings=True)


def test_embeddings_are_the_encoders_pooled_layers_and_are_reused(corpus, monkeypatch):
    features, report, extractor, cache = corpus
    model = tiny_probe()
    embedded, info = probe_embeddings(features, report, model, extractor, cache, batch_size=5)
    assert not info["reused"] and info["windows"] == len(features) == 24 and info["layers"] == 3
    assert embedded.column_names == ["song_id", "clip", "window", "start", "length", INPUT_NAME, "labels", "split"]
    cached = np.stack(embedded.with_format("numpy")[INPUT_NAME])
    np.testing.assert_allclose(cached, raw_outputs(model, features, extractor).layer_embeddings.numpy(), atol=1e-5)
    assert embedded["labels"][:] == features["labels"][:] and embedded["split"][:] == features["split"][:]

    # Another head on the same encoder and features: no encoder pass at all.
    def no_encoder_pass(*args, **kwargs):
        raise AssertionError("the encoder ran again")

    monkeypatch.setattr(probe, "_embed_batch", no_encoder_pass)
    for other_head in (tiny_probe(layer=1), tiny_probe(head_hidden_size=0, final_dropout=0.0)):
        again, info = probe_embeddings(features, report, other_head, extractor, cache)
        assert info["reused"]
        np.testing.assert_array_equal(np.stack(again.with_format("numpy")[INPUT_NAME]), cached)
    # Another encoder (other weights) is another cache.
    with pytest.raises(AssertionError, match="the encoder ran again"):
        probe_embeddings(features, report, tiny_probe(seed=1), extractor, cache)
    # Other rows of the same feature cache (a manifest that keeps fewer songs) are another cache too.
    with pytest.raises(AssertionError, match="the encoder ran again"):
        probe_embeddings(features.select(range(12)), report, tiny_probe(), extractor, cache)


def test_only_the_head_trains_and_the_saved_run_predicts_raw_audio_as_its_cache(corpus, tmp_path):
    features, report, extractor, cache = corpus
    model = tiny_probe()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("head.", "layer_weights")) for n in trainable)
    encoder_before = {k: v.clone() for k, v in model.hubert.state_dict().items()}
    embedded, _ = probe_embeddings(features, report, model, extractor, cache)
    train = embedded.filter(lambda s: s == "train", input_columns="split").with_format("numpy")
    args = EmotionTrainingArguments(output_dir=str(tmp_path / "out"), max_steps=8, per_device_train_batch_size=4,
                                    learning_rate=1e-2, report_to="none", eval_strategy="no", save_strategy="no",
                                    load_best_model_at_end=False, disable_tqdm=True, seed=0)
    items = [train[i] for i in range(len(train))]
    trainer = EmotionTrainer(model=model, args=args, train_dataset=items, data_collator=EmbeddingCollator())
    weights_before = model.layer_weights.detach().clone()
    trainer.train()
    assert not torch.equal(model.layer_weights.detach(), weights_before)  # the layer weights learn
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.hubert.state_dict().items())  # frozen

    model.save_pretrained(tmp_path / "run")
    from transformers import AutoModel

    from sentio.registration import register

    register()
    reloaded = AutoModel.from_pretrained(tmp_path / "run").eval()
    from_audio = raw_outputs(reloaded, features, extractor).predictions
    with torch.no_grad():
        cached = torch.from_numpy(np.stack(embedded.with_format("numpy")[INPUT_NAME]))
        from_cache = reloaded(layer_embeddings=cached).predictions
    torch.testing.assert_close(from_audio, from_cache, atol=1e-5, rtol=1e-5)
