"""The model card written next to a trained model, and the early check before a Hub push."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import CheckpointError, first_line
from ..inference.hf_pipeline import TASK as PIPELINE_TASK  # the card's pipeline_tag is the task registered

if TYPE_CHECKING:
    from .search import SearchSummary

_TABLE_METRICS = ("ccc", "pearson", "r2", "rmse", "mae")


def _metric_rows(results: dict[str, float], prefix: str) -> list[str]:
    rows = []
    for name in _TABLE_METRICS:
        cells = [results.get(f"{prefix}_{name}_{dim}") for dim in ("valence", "arousal", "mean")]
        if all(c is not None for c in cells):
            rows.append(f"| {prefix} | {name} | " + " | ".join(f"{c:.4f}" for c in cells) + " |")
    return rows


@dataclass
class ModelCardInfo:
    """What the card says about a run (train.py and distill.py fill it)."""

    backbone: str
    model_class: str
    num_parameters: int
    init: str  # the checkpoint the encoder came from, or "scratch"
    pooling: str
    loss: str
    features: dict[str, Any]  # the feature extractor's params, with its kind
    data_source: str
    split_method: str
    splits: dict[str, int]
    epochs: float
    batch_size: int
    learning_rate: float
    seed: int
    metric_for_best_model: str | None
    layer: str | int = "last"
    probe: bool = False
    protocol_notes: list[str] = field(default_factory=list)  # a benchmark protocol's rules and leakage counts
    trained: str = ""  # which part trained (training.freeze.TrainedPart), when the run says
    z_scored_labels: bool = False  # a protocol's label transform: an unbounded head trained on z-scored labels
    trainable_parameters: int | None = None
    search: SearchSummary | None = None  # the hyperparameter search that chose this model's settings


def _input_line(features: dict[str, Any]) -> str:
    """The input as a reader wants it: kind, rate and window, then the other parameters."""
    kind = features.get("feature_kind", "?")
    rest = ", ".join(f"{k}={v}" for k, v in features.items()
                     if k not in ("feature_kind", "sampling_rate", "feature_extractor_type"))
    return f"`{kind}` features at {features.get('sampling_rate', '?')} Hz ({rest})"


def _search_lines(search: SearchSummary | None) -> list[str]:
    if search is None:
        return []
    from .search import card_section

    return card_section(search)


def write_model_card(output_dir: str | Path, info: ModelCardInfo, results: dict[str, float]) -> Path:
    """README.md with Hub metadata: backbone, initialisation, data, splits, label scale, metrics."""
    tags = ["sentio", "music-emotion-recognition", "valence-arousal", "audio-regression", info.backbone]
    # pipeline_tag names the task that loads the folder: sentio registers `music-emotion` with
    # transformers.pipeline (see sentio.inference.hf_pipeline).
    front = ["---", "library_name: transformers", f"pipeline_tag: {PIPELINE_TASK}", "tags:"]
    front += [f"- {t}" for t in tags]
    if info.init != "scratch":
        front.append(f"base_model: {info.init}")
    front.append("---")
    rows = _metric_rows(results, "eval") + _metric_rows(results, "test")
    layers = {"last": "the last layer", "weighted": "a learned softmax-weighted sum of all layers"}
    head = (f"{info.pooling} pooling of {layers.get(str(info.layer), f'hidden state {info.layer}')} -> hidden layer "
            + ("-> 2 unbounded outputs trained on z-scored labels (mapped back to the [-1, 1] scale: z * std + mean)"
               if info.z_scored_labels else "-> 2 outputs through tanh") + f"; loss `{info.loss}`")
    training = "the head only (frozen encoder, embeddings cached once: probe mode)" if info.probe else "the whole model"
    if info.trained:
        training = info.trained
    if info.trainable_parameters is not None:
        training += (f"; {info.trainable_parameters:,} of {info.num_parameters:,} parameters trained "
                     f"({100 * info.trainable_parameters / max(info.num_parameters, 1):.2f}%)")
    lines = front + [
        "",
        f"# {Path(output_dir).name}: music emotion regression ({info.backbone})",
        "",
        "Predicts the **valence** and **arousal** of music from audio (Russell's circumplex), trained with",
        f"Sentio {__version__}.",
        "",
        "## Model",
        f"- Backbone: `{info.backbone}` (`{info.model_class}`), {info.num_parameters / 1e6:.2f}M parameters",
        f"- Initialisation: {'random weights (trained from scratch)' if info.init == 'scratch' else f'pretrained `{info.init}`'}",
        f"- Head: {head}",
        f"- Trained: {training}",
        f"- Input: {_input_line(info.features)}",
        "",
        "## Data",
        f"- Source: {info.data_source}",
        f"- Split: {info.split_method}; songs per split: {info.splits}",
        "- Labels: on [-1, 1]; DEAM's 1..9 scale maps by (x - 5) / 4. All metrics below are on [-1, 1].",
        "- Test metrics are song-level: window predictions averaged per song.",
        *(f"- {note}" for note in info.protocol_notes),
        "",
        "## Results",
        "| split | metric | valence | arousal | mean |",
        "|---|---|---|---|---|",
        *(rows or ["| - | - | - | - | - |"]),
        "",
        "## Training",
        f"- Epochs {info.epochs}, batch size {info.batch_size}, learning rate {info.learning_rate}, seed {info.seed}",
        f"- Best checkpoint chosen by validation `{info.metric_for_best_model}`",
        "",
        *_search_lines(info.search),
        "## Use",
        "```bash",
        "python predict.py --model_dir PATH_OR_HUB_ID song.mp3 album/",
        "```",
        "```python",
        "from sentio import EmotionPredictor",
        "",
        'predictor = EmotionPredictor.from_pretrained("PATH_OR_HUB_ID")',
        'predictor.predict("song.mp3")  # valence, arousal on [-1, 1] and 1..9, quadrant',
        "",
        "# or with transformers alone, once sentio is imported (it registers the classes and the task)",
        "import sentio",
        "from transformers import AutoModel, pipeline",
        'model = AutoModel.from_pretrained("PATH_OR_HUB_ID").eval()',
        f'pipeline("{PIPELINE_TASK}", model="PATH_OR_HUB_ID")("song.mp3")',
        "```",
        "",
    ]
    path = Path(output_dir) / "README.md"
    path.write_text("\n".join(lines))
    return path


def check_hub_ready(timeout: float = 15.0) -> None:
    """Fail at once, before any training, if a push to the Hub cannot work (offline or no login)."""
    from huggingface_hub import HfApi

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise CheckpointError("--push_to_hub needs the Hub, but HF_HUB_OFFLINE is set; drop --push_to_hub or go online")
    outcome: dict[str, Any] = {}

    def ask() -> None:
        try:
            outcome["user"] = HfApi().whoami()
        except Exception as exc:  # network errors, 401s, ... all mean "cannot push"
            outcome["error"] = first_line(exc)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    if "user" in outcome:
        return
    reason = outcome.get("error", f"no answer in {timeout:.0f} s")
    raise CheckpointError(f"--push_to_hub: cannot reach the Hub or not logged in ({reason}); "
                  "log in with `hf auth login` or set HF_TOKEN, or drop --push_to_hub")
