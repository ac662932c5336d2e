"""gan_quality.json: every synthetic-vs-real number beside the same number for real vs real.

Sets (windows, full length only): reference = real train songs of half A; "real_vs_real" = real
train songs of half B (disjoint songs); "synthetic" = as many synthetic windows as half B. The
GAN saw both halves, so real_vs_real is the best a perfect generator of the train data could get.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch import nn

from ..features.datasets import EmotionCollator, SongWindowDataset, WindowDataset
from ..features.extractor import SentioFeatureExtractor
from ..errors import ArgumentError, DataError
from ..inference.loading import Run
from ..inference.runner import TorchRunner, batches_of, dataset_items, run_batches
from ..metrics import average_by_song, regression_metrics
from .data import SpecLayout
from .quality import embedding_metrics, frechet_distance, kid, label_consistency, spectral_statistics

logger = logging.getLogger(__name__)
_BATCH = 32


def random_cnn_embeddings(images: torch.Tensor, seed: int = 0) -> np.ndarray:
    """Embeddings of GAN-resolution images from a randomly initialised CNN (fixed seed).

    Random conv features are a download-free stand-in for an Inception network: they respond to
    local spectro-temporal texture without any training (see Naeem et al. 2020 on random embeddings).
    """
    with torch.random.fork_rng(devices=[]):  # a fixed network, without moving the caller's random state
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(1, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    with torch.no_grad():
        return torch.cat([net(x) for x in images.split(_BATCH)]).numpy().astype(np.float64)


def regressor_outputs(regressor: Run, arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(embedding [N, H], predictions [N, 2]) of a Sentio regressor run on full-length windows."""
    extractor = regressor.extractor
    full = extractor.params.feature_shape[extractor.time_axis]
    items = ({extractor.feature_name: x, "length": full} for x in np.asarray(arrays, np.float32))
    out = run_batches(regressor.runner, batches_of(items, EmotionCollator.for_extractor(extractor), _BATCH))
    return out["embedding"].astype(np.float64), out["predictions"].astype(np.float64)


@dataclass
class QualityTracker:
    """FD and KID of EMA-generator samples during training (GanTrainer.fit's tracker).

    The samples are always the same: fixed labels (drawn from the real train windows) and fixed
    noise, so the curve over epochs moves only with the generator. The embedding is the trained
    regressor's when one is given (with its label consistency per dimension), else the random CNN's.
    """

    layout: SpecLayout
    reference: np.ndarray  # embeddings of real train windows
    labels: torch.Tensor  # [N, 2] conditioning labels of the tracked samples
    regressor: Run | None = None
    seed: int = 0

    @classmethod
    def build(cls, layout: SpecLayout, real: np.ndarray, real_labels: np.ndarray, regressor: Run | None,
              samples: int, seed: int = 0) -> "QualityTracker":
        """A tracker comparing `samples` fakes against up to `samples` of the given real windows."""
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(real), min(samples, len(real)), replace=False))
        labels = torch.from_numpy(np.asarray(real_labels, np.float32)[rng.choice(len(real), samples)])
        tracker = cls(layout, np.zeros((0, 0)), labels, regressor, seed)
        tracker.reference = tracker.embed(real[rows])[0]
        return tracker

    def embed(self, arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(embeddings, predictions or None) of full-size feature arrays."""
        if self.regressor is None:
            return random_cnn_embeddings(self.layout.to_gan(arrays), self.seed), None
        return regressor_outputs(self.regressor, arrays)

    def __call__(self, trainer: Any) -> dict[str, float]:
        embedding, predictions = self.embed(self.layout.from_gan(trainer.sample(self.labels, seed=self.seed)))
        quality = {"fd": frechet_distance(self.reference, embedding),
                   "kid": kid(self.reference, embedding, seed=self.seed)[0]}
        if predictions is not None:
            consistency = label_consistency(predictions, self.labels.numpy())
            quality.update(ccc_valence=consistency["ccc_valence"], ccc_arousal=consistency["ccc_arousal"])
        return quality


def check_regressor(extractor: SentioFeatureExtractor, regressor: Run, where: str) -> None:
    """The regressor must be a torch run (its embedding is measured) that takes exactly the
    features the GAN imitates."""
    if regressor.model is None:
        raise ArgumentError(f"{where}: --regressor must be a train.py run with torch weights, not an ONNX export")
    mine = (extractor.feature_kind, tuple(extractor.params.feature_shape))
    theirs = (regressor.extractor.feature_kind, tuple(regressor.extractor.params.feature_shape))
    if mine != theirs:
        raise ArgumentError(f"{where}: the regressor takes {theirs[0]} features of shape {list(theirs[1])}, the GAN "
                            f"makes {mine[0]} {list(mine[1])}; pass a run trained with the same --model/--demo")


def quality_report(layout: SpecLayout, real: np.ndarray, real_labels: np.ndarray, real_songs: list[str],
                   synthetic: np.ndarray, synthetic_labels: np.ndarray, regressor: Run | None = None,
                   real_test: tuple[np.ndarray, np.ndarray] | None = None, seed: int = 0) -> dict[str, Any]:
    """All metrics of the synthetic windows against real train windows (see the module docstring)."""
    songs = sorted(set(real_songs))
    half_a = set(np.random.default_rng(seed).permutation(songs)[: len(songs) // 2].tolist())
    in_a = np.array([s in half_a for s in real_songs])
    if in_a.sum() < 3 or (~in_a).sum() < 3:
        raise DataError("too few real train windows for quality metrics (3 per half at least)")
    a, b, b_labels = real[in_a], real[~in_a], real_labels[~in_a]
    n = min(len(b), len(synthetic))
    fake, fake_labels = synthetic[:n], synthetic_labels[:n]
    report: dict[str, Any] = {
        "sets": {"reference": "real train windows, song half A", "real_vs_real": "real train windows, song half B",
                 "synthetic": "synthetic windows (EMA generator)", "reference_windows": int(len(a)),
                 "compared_windows": int(n), "real_half_b_windows": int(len(b))},
    }
    as_freq_time = (lambda x: x.transpose(0, 2, 1)) if layout.freq_axis == 1 else (lambda x: x)
    report["spectral"] = {"real_vs_real": spectral_statistics(as_freq_time(a), real_labels[in_a], as_freq_time(b), b_labels),
                          "synthetic": spectral_statistics(as_freq_time(a), real_labels[in_a], as_freq_time(fake), fake_labels)}
    emb = {name: random_cnn_embeddings(layout.to_gan(x), seed) for name, x in (("a", a), ("b", b[:n]), ("fake", fake))}
    report["random_cnn"] = {"real_vs_real": embedding_metrics(emb["a"], emb["b"], seed),
                            "synthetic": embedding_metrics(emb["a"], emb["fake"], seed)}
    if regressor is None:
        report["regressor"] = "skipped: no --regressor run given (pass a train.py output folder)"
        report["label_consistency"] = "skipped: no --regressor run given"
        return report
    (ea, _), (eb, pb), (ef, pf) = (regressor_outputs(regressor, x) for x in (a, b[:n], fake))
    report["regressor"] = {"real_vs_real": embedding_metrics(ea, eb, seed), "synthetic": embedding_metrics(ea, ef, seed)}
    consistency = {"synthetic": label_consistency(pf, fake_labels), "real_train_half_b": label_consistency(pb, b_labels[:n])}
    if real_test is not None and len(real_test[0]) >= 2:
        consistency["real_test"] = label_consistency(regressor_outputs(regressor, real_test[0])[1],
                                                     real_test[1])
    consistency["note"] = "window level; real_test is the regressor's own held-out accuracy, the fair yardstick"
    report["label_consistency"] = consistency
    return report


def train_steps(model: Any, train_ds: torch.utils.data.Dataset, extractor: SentioFeatureExtractor, max_steps: int,
                seed: int = 0, learning_rate: float = 3e-4, batch_size: int = 16) -> Any:
    """Exactly `max_steps` EmotionTrainer steps on `train_ds` (no evaluation, no checkpoint); the model
    after the last step (no best-checkpoint selection: that would consult validation songs)."""
    from ..args import EmotionTrainingArguments
    from ..training.trainer import EmotionTrainer

    with tempfile.TemporaryDirectory() as tmp:
        args = EmotionTrainingArguments(output_dir=tmp, max_steps=max_steps, per_device_train_batch_size=batch_size,
                                        learning_rate=learning_rate, report_to="none", eval_strategy="no",
                                        save_strategy="no", load_best_model_at_end=False, seed=seed,
                                        disable_tqdm=True, logging_steps=max(1, max_steps // 5),
                                        dataloader_pin_memory=torch.cuda.is_available())
        trainer = EmotionTrainer(model=model, args=args, train_dataset=train_ds,
                                 data_collator=EmotionCollator.for_extractor(extractor))
        trainer.train()
    return trainer.model


def song_predictions(model: Any, dataset: WindowDataset,
                     extractor: SentioFeatureExtractor) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(predictions, labels, song ids): the model's window predictions averaged per song."""
    out = run_batches(TorchRunner(model), batches_of(dataset_items(dataset), EmotionCollator.for_extractor(extractor),
                                                     _BATCH))
    pred, songs = average_by_song(out["predictions"], dataset.song_ids)
    true, _ = average_by_song(dataset.labels(), dataset.song_ids)
    return pred, true, songs


def train_and_test(model: Any, train_ds: torch.utils.data.Dataset, test_ds: WindowDataset,
                   extractor: SentioFeatureExtractor, max_steps: int, seed: int = 0, learning_rate: float = 3e-4,
                   batch_size: int = 16) -> dict[str, float]:
    """`train_steps`, then song-level test_* metrics on `test_ds`."""
    model = train_steps(model, train_ds, extractor, max_steps, seed, learning_rate, batch_size)
    pred, true, songs = song_predictions(model, test_ds, extractor)
    return {**{f"test_{k}": v for k, v in regression_metrics(pred, true).items()}, "test_num_songs": float(len(songs))}


def tstr(make_model: Any, synthetic: Dataset, features: Dataset, extractor: SentioFeatureExtractor, epochs: int,
         seed: int = 0, batch_size: int = 16) -> dict[str, Any]:
    """Train on synthetic, test on real (test split) -- beside train on real, test on real, same steps."""
    feature_name = extractor.feature_name
    syn = SongWindowDataset(synthetic, feature_name, "train", every_window=True)
    real = SongWindowDataset(features, feature_name, "train")
    test = WindowDataset(features, feature_name, "test")
    if len(test) == 0:
        return {"skipped": "the test split is empty"}
    batch_size = max(2, min(batch_size, len(syn), len(real)))  # a tiny corpus still gets full batches
    steps = max(1, epochs * (len(syn) // batch_size))
    keep = ("test_ccc_valence", "test_ccc_arousal", "test_ccc_mean", "test_mae_mean", "test_num_songs")
    out: dict[str, Any] = {"steps": steps, "batch_size": batch_size}
    for name, train in (("train_synthetic_test_real", syn), ("train_real_test_real", real)):
        metrics = train_and_test(make_model(), train, test, extractor, steps, seed, batch_size=batch_size)
        out[name] = {k: metrics[k] for k in keep if k in metrics}
    return out
