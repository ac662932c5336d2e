"""EmotionTrainer: our loss, song-level metrics, and the strict resume / load-best fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from sentio.args import EmotionTrainingArguments
from sentio.features.datasets import EmotionCollator, SongWindowDataset, WindowDataset
from sentio.features.cache import build_feature_dataset
from sentio.features.extractor import SentioFeatureExtractor
from sentio.models import build_model
from sentio.training.trainer import EmotionTrainer
from tests.conftest import write_audio
from tests.tiny import TINY


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """12 short clips (2 windows each) of tiny AST features with random labels and a fixed split."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        path = write_audio(root / f"{i}.wav", seconds=1.2, sr=16000, seed=i)
        split = "train" if i < 8 else ("validation" if i < 10 else "test")
        rows.append({"song_id": str(i), "path": str(path), "valence": rng.uniform(-1, 1), "arousal": rng.uniform(-1, 1),
                     "split": split, "subset": "", "duration": 1.2, "sample_rate": 16000, "channels": 1})
    extractor = SentioFeatureExtractor(feature_kind="ast", max_length=64, num_mel_bins=32)
    ds, report = build_feature_dataset(pd.DataFrame(rows), extractor, str(tmp_path_factory.mktemp("cache")))
    assert report.windows == 24
    return ds


def make_trainer(features, out, seed=0, **overrides):
    torch.manual_seed(seed)
    model = build_model("ast", from_scratch=True, config_overrides=TINY["ast"], head_kwargs={"loss": "mse+ccc"})
    defaults = dict(output_dir=str(out), per_device_train_batch_size=4, learning_rate=1e-3, report_to="none",
                    disable_tqdm=True, seed=seed, warmup_steps=0, logging_steps=1)
    args = EmotionTrainingArguments(**{**defaults, **overrides})
    return EmotionTrainer(model=model, args=args, train_dataset=SongWindowDataset(features, "input_values", "train"),
                          eval_dataset=WindowDataset(features, "input_values", "validation"),
                          data_collator=EmotionCollator("input_values"))


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_restores_weights_and_optimizer(features, tmp_path):
    first = make_trainer(features, tmp_path, max_steps=4, save_strategy="steps", save_steps=2, eval_strategy="no",
                         load_best_model_at_end=False)
    first.train()
    saved = {k: v for k, v in load_file(str(tmp_path / "checkpoint-2" / "model.safetensors")).items()}
    saved_optimizer = torch.load(tmp_path / "checkpoint-2" / "optimizer.pt", weights_only=True)

    # a fresh model with other random weights resumes from step 2 and stops there (max_steps=2)
    second = make_trainer(features, tmp_path, seed=1, max_steps=2, save_strategy="no", eval_strategy="no",
                          load_best_model_at_end=False)
    before = state(second.model)
    second.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    after = state(second.model)
    assert any(not torch.equal(before[k], after[k]) for k in after)
    reloaded = type(second.model).from_pretrained(tmp_path / "checkpoint-2")
    assert_same(after, state(reloaded))
    # every encoder tensor equals the file (names in the file may be old-style, values are what count)
    assert sorted(t.sum().item() for t in saved.values()) == pytest.approx(sorted(t.sum().item() for t in after.values()))
    optimizer = second.optimizer.state_dict()
    assert len(optimizer["state"]) == len(saved_optimizer["state"]) > 0
    for idx, values in saved_optimizer["state"].items():
        for name, tensor in values.items():
            assert torch.equal(optimizer["state"][idx][name], tensor), (idx, name)


def test_load_best_really_loads_the_best_checkpoint(features, tmp_path):
    trainer = make_trainer(features, tmp_path, num_train_epochs=3, save_total_limit=None)
    trainer.train()
    history = [e for e in trainer.state.log_history if "eval_ccc_mean" in e]
    best = max(history, key=lambda e: e["eval_ccc_mean"])
    assert trainer.state.best_metric == pytest.approx(best["eval_ccc_mean"])
    assert trainer.state.best_model_checkpoint.endswith(f"checkpoint-{best['step']}")
    assert_same(state(trainer.model), state(type(trainer.model).from_pretrained(trainer.state.best_model_checkpoint)))
    # and explicitly: pointing at another checkpoint loads exactly that one
    other = next(p for p in sorted(tmp_path.glob("checkpoint-*")) if str(p) != trainer.state.best_model_checkpoint)
    trainer.state.best_model_checkpoint = str(other)
    trainer._load_best_model()
    assert_same(state(trainer.model), state(type(trainer.model).from_pretrained(other)))


def test_loss_and_song_level_metrics(features, tmp_path):
    trainer = make_trainer(features, tmp_path, report_to="none")
    val = WindowDataset(features, "input_values", "validation")
    metrics = trainer.evaluate(val)
    assert metrics["eval_num_songs"] == 2.0  # 4 windows averaged into 2 songs, none dropped
    odd = make_trainer(features, tmp_path, per_device_train_batch_size=3, per_device_eval_batch_size=3)
    assert len(odd.get_train_dataloader()) == 2  # 8 songs: 2 full batches, the partial one dropped
    assert len(odd.get_eval_dataloader(val)) == 2  # 4 windows: 3 + 1, all kept
    output = trainer.predict(val)
    assert output.predictions["predictions"].shape == (4, 2) and set(output.predictions) == {"predictions"}
    batch = EmotionCollator("input_values")([val[i] for i in range(len(val))])
    labels = batch.pop("labels")
    with torch.no_grad():
        pred = trainer.model.eval()(**batch).predictions
    mse = torch.mean((pred - labels) ** 2)
    ccc = []
    for d in range(2):
        x, y = pred[:, d].double(), labels[:, d].double()
        ccc.append(2 * ((x - x.mean()) * (y - y.mean())).mean() / (x.var(unbiased=False) + y.var(unbiased=False) + (x.mean() - y.mean()) ** 2))
    expected = mse + (1 - torch.stack(ccc).mean())
    assert output.metrics["test_loss"] == pytest.approx(expected.item(), rel=1e-4)


def test_defaults_cpu_machine_uses_cpu_mode_without_pinned_memory(tmp_path):
    # use_cpu is what makes torchrun on a CPU-only machine one distributed run (gloo), not N runs
    args = EmotionTrainingArguments(output_dir=str(tmp_path))
    assert args.dataloader_pin_memory == torch.accelerator.is_available()
    assert args.use_cpu == (not torch.accelerator.is_available())
    assert args.metric_for_best_model == "ccc_mean" and args.load_best_model_at_end
