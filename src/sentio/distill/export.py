"""Mobile export of a student: ONNX (fp32), static int8, parity against PyTorch, CPU latency.

The ONNX graph takes `input_values` [batch, frames, mel] float32 and `attention_mask` [batch,
frames] int64 (the collator's inputs, so a padded last window is pooled exactly as in PyTorch)
and returns `predictions` [batch, 2]. The batch axis is dynamic; the frame axis is dynamic where
the exporter can keep it so (the CNN: convolutions and a length mask) and fixed to the training
window where the graph specialises on the input size; `input_shape` tells which, and the report
checks the shipped files against PyTorch at the full 1024-frame window when frames are dynamic.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from ..features.datasets import EmotionCollator
from ..inference.runner import OnnxRunner, TorchRunner, batches_of, onnx_session, run_batches

logger = logging.getLogger(__name__)
INPUT_NAMES = ("input_values", "attention_mask")


class _PredictionsOnly(torch.nn.Module):
    """The student's forward with plain tensors in and predictions out (what the graph exports)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_values, attention_mask).predictions


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, frames: int, num_mel_bins: int) -> Path:
    """Export with torch's dynamo exporter (the TorchScript one traced the CNN's mask wrongly:
    0.01 off). Dim.AUTO keeps an axis dynamic where the graph allows and specialises it otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = (torch.randn(2, frames, num_mel_bins), torch.ones(2, frames, dtype=torch.int64))
    # one INFO line per rewrite pass otherwise, and four warnings about torchvision ops (nms, roi_align,
    # ...) the exporter cannot register without torchvision, which no Sentio model uses
    for noisy, level in (("onnxscript", logging.WARNING), ("onnx_ir", logging.WARNING),
                         ("torch.onnx._internal.exporter._registration", logging.ERROR)):
        logging.getLogger(noisy).setLevel(level)
    auto = torch.export.Dim.AUTO
    # Frames dynamic first; MobileViT's graph then claims dynamic axes but breaks on other shapes
    # (its unfolding bakes sizes in), so every export is probed and, failing that, redone with
    # the frames fixed to the training window.
    for axes in ({0: auto, 1: auto}, {0: auto}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(_PredictionsOnly(model), example, dynamo=True, input_names=list(INPUT_NAMES),
                                        output_names=["predictions"], verbose=False,
                                        dynamic_shapes={"input_values": axes, "attention_mask": axes})
        program.save(str(path))  # weights inside the one file: what a phone app ships
        _name_dynamic_axes(path)
        if _matches_torch(path, model, frames if len(axes) == 1 else 2 * frames, num_mel_bins):
            return path
    raise RuntimeError(f"{path}: the exported graph does not reproduce the model on a batch of 1 and of 3")


def _name_dynamic_axes(path: Path) -> None:
    """Give the exporter's symbolic axes (`s43`, ...) the names a reader of the graph expects:
    `batch`, and `frames` where the time axis stays dynamic; everywhere in the graph, consistently."""
    import onnx

    model = onnx.load(str(path))
    names: dict[str, str] = {}
    for value in model.graph.input:
        for axis, dim in enumerate(value.type.tensor_type.shape.dim[:2]):
            if dim.dim_param:
                names.setdefault(dim.dim_param, ("batch", "frames")[axis])
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]
    onnx.save(model, str(path))


def _matches_torch(path: Path, model: torch.nn.Module, frames: int, num_mel_bins: int, atol: float = 1e-3) -> bool:
    """True when the graph runs batches of 1 and 3 windows of `frames` and agrees with PyTorch."""
    g = np.random.default_rng(0)
    for batch in (1, 3):
        probe = as_batches(g.standard_normal((batch, frames, num_mel_bins)).astype(np.float32),
                           np.full(batch, frames // 2 + 1), batch_size=batch)
        try:
            if np.abs(run_onnx(path, probe) - run_torch(model, probe)).max() > atol:
                return False
        except Exception:  # noqa: BLE001 - onnxruntime's shape errors: the graph is not general
            return False
    return True


def input_shape(path: str | os.PathLike) -> list[int | str]:
    """The exported `input_values` shape: ints for fixed axes, names for dynamic ones."""
    shape = onnx_session(path).get_inputs()[0].shape
    return [d if isinstance(d, int) else str(d) for d in shape]


class SpectrogramCalibration:
    """onnxruntime CalibrationDataReader over real training windows (batches of input dicts)."""

    def __init__(self, batches: Iterable[dict[str, np.ndarray]]):
        self._batches = list(batches)
        self._iter: Iterator[dict[str, np.ndarray]] = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._batches)


def quantize_int8(fp32_path: str | os.PathLike, int8_path: str | os.PathLike,
                  calibration: Iterable[dict[str, np.ndarray]]) -> Path:
    """Static int8 (QDQ, per-channel weights, uint8 activations) calibrated on `calibration`.

    Static rather than dynamic quantization: the convolutions (nearly all the compute) are
    quantized only with calibrated activation ranges. Ops without an int8 kernel stay float.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        # shape inference + graph optimisation first, as onnxruntime recommends (folds BatchNorm etc.)
        # symbolic shape inference cannot follow the exported mask arithmetic; ONNX shape inference can
        quant_pre_process(str(fp32_path), prepared, skip_symbolic_shape=True)
        quantize_static(prepared, str(int8_path), SpectrogramCalibration(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    return Path(int8_path)


def run_onnx(path: str | os.PathLike, batches: Iterable[dict[str, np.ndarray]], threads: int = 1) -> np.ndarray:
    """Predictions [N, 2] of the graph at `path` over input batches."""
    return run_batches(OnnxRunner(path, threads=threads, sequential=True), batches)["predictions"]


def run_torch(model: torch.nn.Module, batches: Iterable[dict[str, np.ndarray]]) -> np.ndarray:
    """Predictions [N, 2] of the PyTorch model (on the CPU, like the graph) over the same batches."""
    return run_batches(TorchRunner(model, "cpu", outputs=("predictions",)), batches)["predictions"]


def median_latency_ms(path: str | os.PathLike, inputs: dict[str, np.ndarray], runs: int = 200, warmup: int = 10) -> float:
    """Median wall time (ms) of one session.run on `inputs`, 1 intra-op and 1 inter-op thread."""
    sess = onnx_session(path, threads=1, sequential=True)
    for _ in range(warmup):
        sess.run(["predictions"], inputs)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(["predictions"], inputs)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def as_batches(features: np.ndarray, lengths: np.ndarray, batch_size: int = 32) -> list[dict[str, np.ndarray]]:
    """Fbank windows [N, T, F] + real lengths -> onnxruntime input dicts, collated exactly as for
    the PyTorch model (the same collator builds the mask)."""
    items = ({"input_values": f, "length": n} for f, n in zip(features, lengths))
    return [{k: v.numpy() for k, v in batch.items()}
            for batch in batches_of(items, EmotionCollator("input_values", time_axis=0), batch_size)]
