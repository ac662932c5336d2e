"""Running a model over windows: the one loop every caller uses (prediction, evaluation, teacher
outputs, GAN quality, export parity, probe embeddings), for a torch model or an ONNX graph.

A runner maps one collated batch ({input name: [B, ...], attention_mask: [B, T]}) to a dict of
numpy arrays, `predictions` [B, 2] always, plus whatever else the model gives (`embedding`,
`spread`, ...). `run_batches` concatenates them over any number of batches.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..errors import ArgumentError, CheckpointError, first_line

if TYPE_CHECKING:  # torch is imported where a torch model runs: an ONNX model's prediction never loads it
    import torch

# Output fields of a Sentio model that are per-window arrays (hidden states and attentions are not).
WINDOW_OUTPUTS = ("predictions", "embedding", "spread", "frame_predictions", "frame_spread", "frame_mask")


class WindowRunner(Protocol):
    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]: ...


def default_device() -> torch.device:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_device(device: str | torch.device | None) -> torch.device:
    """`device` as a torch.device, refused in one line when this torch cannot use it."""
    import torch

    if device is None or device == "":
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ArgumentError(f"--device {device!r} is not a device name (cpu, cuda, cuda:1, mps, ...)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ArgumentError(f"--device {device}: this torch has no usable CUDA GPU; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ArgumentError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ArgumentError(f"--device {device}: MPS is not available here; use --device cpu")
    return dev


class TorchRunner:
    """Runs batches through a Sentio transformers model in eval mode, without autograd.
    `outputs` names the output fields to return; `forward_kwargs` go to every forward call."""

    def __init__(self, model: torch.nn.Module, device: str | torch.device | None = None,
                 outputs: Sequence[str] = WINDOW_OUTPUTS, forward_kwargs: dict[str, Any] | None = None) -> None:
        self.device = check_device(device)
        self.model = model.to(self.device).eval()  # eval: no dropout, so predictions are deterministic
        self.outputs = tuple(outputs)
        self.forward_kwargs = dict(forward_kwargs or {})

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        import torch

        inputs = {k: torch.as_tensor(v).to(self.device) for k, v in batch.items() if k != "labels"}
        with torch.inference_mode():
            out = self.model(**inputs, **self.forward_kwargs)
        return {k: getattr(out, k).float().cpu().numpy() for k in self.outputs if getattr(out, k, None) is not None}


def onnx_session(path: str | os.PathLike, threads: int | None = None, sequential: bool = False):
    """An onnxruntime CPU session; `threads` intra-op threads (None: onnxruntime's default), and with
    `sequential` one inter-op thread and sequential execution (what latency figures are taken with)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if sequential:
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads sleep instead of spinning: the decoding threads need those cores, and a
    # spinning pool took twice the CPU seconds per batch of the int8 student on 2 busy cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for unreadable graphs
        reason = first_line(exc)
        raise CheckpointError(f"{path}: not a loadable ONNX model ({reason[:200]})") from None


class OnnxRunner:
    """Runs batches through an exported ONNX model (e.g. distill.py's student.int8.onnx) with
    onnxruntime: the forward pass uses no torch. Feeds the graph the inputs it declares and returns
    every output it names."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None, sequential: bool = False) -> None:
        self.session = onnx_session(path, threads, sequential)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise ValueError(f"the ONNX model wants input(s) {missing}; the feature extractor gives {sorted(batch)}")
        inputs = {n: np.asarray(batch[n]) for n in self.input_names}
        values = self.session.run(self.output_names, inputs)
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(self.output_names, values)}


def batches_of(items: Iterable[dict[str, Any]], collate: Callable[[list], dict], batch_size: int) -> Iterator[dict]:
    """Collated batches of `batch_size` items (the last one may be smaller)."""
    if batch_size < 1:
        raise ArgumentError(f"batch_size must be at least 1, got {batch_size}")
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == batch_size:
            yield collate(chunk)
            chunk = []
    if chunk:
        yield collate(chunk)


def run_batches(runner: WindowRunner, batches: Iterable[dict[str, Any]], progress: bool = False,
                desc: str = "windows", total: int | None = None) -> dict[str, np.ndarray]:
    """Every output of `runner` over `batches`, concatenated along the batch axis."""
    parts: dict[str, list[np.ndarray]] = {}
    for batch in tqdm(batches, desc=desc, unit="batch", total=total, disable=not progress, leave=False):
        for key, value in runner(batch).items():
            parts.setdefault(key, []).append(value)
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def dataset_items(dataset: Any) -> Iterator[dict[str, Any]]:
    """The items of an indexable dataset (e.g. WindowDataset), in order."""
    return (dataset[i] for i in range(len(dataset)))
