"""distill.py's own arguments; data and training flags are the shared DataArguments / EmotionTrainingArguments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..args import EmotionTrainingArguments
from ..errors import ArgumentError
from ..choices import STUDENT_ARCHITECTURES, TRAIN_WINDOWS


@dataclass
class DistillArguments:
    """Which teacher, which student, how the loss mixes labels and teacher, and what to export."""

    teacher: str = field(metadata={"help": "Output folder of a train.py run (config.json, model.safetensors, preprocessor_config.json)."})
    student: str = field(default="cnn", metadata={"help": "cnn (EfficientAT-style MobileNetV3) or mobilevit (xx-small).",
                                                  "choices": list(STUDENT_ARCHITECTURES)})
    width_mult: float = field(default=0.4, metadata={"help": "CNN width multiplier (0.4 ~ EfficientAT mn04, ~0.6M parameters)."})
    alpha: float = field(default=0.5, metadata={"help": "Loss = alpha * MSE(student, labels) + (1 - alpha) * MSE(student, teacher)."})
    hint_weight: float = field(default=0.0, metadata={"help": "Weight of a feature hint: MSE of the projected student embedding to the teacher's (0 = off)."})
    train_windows: str = field(default="all", metadata={"help": "all: every cached window per epoch (teacher targets exist for each); random: one per song.",
                                                        "choices": list(TRAIN_WINDOWS)})
    spec_augment: bool = field(default=True, metadata={"help": "SpecAugment masks on the student's inputs (the teacher's targets stay those of the clean window)."})
    teacher_batch_size: int = field(default=32, metadata={"help": "Windows per teacher forward pass when caching its outputs."})
    export: bool = field(default=True, metadata={"help": "Write student.onnx, student.int8.onnx and the parity/latency figures."})
    calibration_windows: int = field(default=256, metadata={"help": "Training windows that calibrate the int8 activation ranges."})
    latency_runs: int = field(default=200, metadata={"help": "session.run calls timed per latency figure (median reported)."})
    torch_threads: int | None = field(default=None, metadata={"help": "torch CPU threads for the teacher pass and training "
                                                              "(default: torch's; --demo: 1)."})

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:  # also refuses NaN
            raise ArgumentError(f"--alpha must be in [0, 1], got {self.alpha}")
        if not self.hint_weight >= 0:
            raise ArgumentError(f"--hint_weight must be >= 0, got {self.hint_weight}")
        if not 0 < self.width_mult <= 4:
            raise ArgumentError(f"--width_mult must be in (0, 4], got {self.width_mult}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ArgumentError(f"--torch_threads must be >= 1, got {self.torch_threads}")
        for name in ("teacher_batch_size", "calibration_windows", "latency_runs"):
            if getattr(self, name) < 1:
                raise ArgumentError(f"--{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class DistillTrainingArguments(EmotionTrainingArguments):
    """EmotionTrainingArguments with defaults for a small student trained from scratch."""

    num_train_epochs: float = field(default=30.0, metadata={"help": "Training epochs (short form: --epochs)."})
    learning_rate: float = field(default=2e-3, metadata={"help": "Peak learning rate (AdamW); students start from scratch."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Batch size per device for training."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})


# What --demo changes where the command line chose nothing (as train.py's --demo picks the compact
# teacher): the demo's students converge within a few epochs over every window (~37 steps of 32 at
# the demo teacher's 256-frame windows); 30 epochs tripled the run for no better test CCC.
DEMO_TRAINING = {"num_train_epochs": 8.0}
# One torch thread: the demo student's small convolutions gain little from a second one, and on
# 2 shared cores a 2-thread pool waits on a descheduled thread: a demo step took 3.5-4 s wall with
# 2 threads against ~1 s with 1 on the same busy machine (and 10 vs 0.7 CPU s, bench/distill_step.py).
DEMO_DISTILL = {"torch_threads": 1}


def apply_demo_defaults(dargs: DistillArguments, targs: DistillTrainingArguments, given: set[str]) -> dict[str, Any]:
    """Demo-sized settings for every DEMO_TRAINING / DEMO_DISTILL field the user did not set
    (OMP_NUM_THREADS in the environment counts as a thread count set); returns what changed."""
    changed: dict[str, Any] = {}
    for target, defaults in ((targs, DEMO_TRAINING), (dargs, DEMO_DISTILL)):
        for name, value in defaults.items():
            if name in given or (name == "torch_threads" and os.environ.get("OMP_NUM_THREADS")):
                continue
            setattr(target, name, value)
            changed[name] = value
    return changed
