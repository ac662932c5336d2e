"""Distil a trained Sentio run into a small student and export it for phones (ONNX fp32 + int8).

    python distill.py --teacher runs/ast-demo --demo --student cnn --output_dir runs/student-cnn
    python distill.py --teacher runs/ast --student mobilevit --alpha 0.3 --hint_weight 0.1 --epochs 40

The teacher's outputs on every window are computed once and cached next to the features; the
student (log-mel input, one channel) learns alpha * MSE(labels) + (1 - alpha) * MSE(teacher).
The output folder is a Sentio model folder (evaluate.py and predict.py take it) plus student.onnx,
student.int8.onnx and distill_report.json. Every TrainingArguments flag passes through.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from sentio.args import DataArguments
from sentio.cli import given_flags, parse_dataclasses, parser_for, run_cli
from sentio.distill.args import DistillArguments, DistillTrainingArguments, apply_demo_defaults

logger = logging.getLogger("distill")


def parse_args() -> tuple[DistillArguments, DataArguments, DistillTrainingArguments]:
    parser = parser_for((DistillArguments, DataArguments, DistillTrainingArguments), prog="distill.py",
                        description="Distil a trained run into a small student and export it for phones.")
    dargs, data_args, targs = parse_dataclasses(parser)
    if not targs.output_dir_given:
        targs.output_dir = os.path.join("runs", f"student-{dargs.student}")
    if data_args.demo:  # demo-sized settings where the command line chose nothing (explicit flags win)
        apply_demo_defaults(dargs, targs, given_flags(parser))
    return dargs, data_args, targs


def main() -> int:
    dargs, data_args, targs = parse_args()
    import torch
    import transformers
    from transformers import set_seed

    if dargs.torch_threads is not None:
        torch.set_num_threads(dargs.torch_threads)

    transformers.utils.logging.set_verbosity_warning()
    set_seed(targs.seed)
    # heavy imports once the arguments are valid
    from sentio.distill.distill import run_distillation
    from sentio.distill.report import card_section, export_and_measure, write_report
    from sentio.training.card import ModelCardInfo, write_model_card

    run = run_distillation(dargs, data_args, targs)
    model, trainer, results, out = run.model, run.trainer, run.results, targs.output_dir
    teacher = run.teacher
    info = {
        "teacher": {"dir": dargs.teacher, "model_class": type(teacher).__name__,
                    "num_parameters": teacher.num_parameters(),
                    "test_ccc": {k: results[f"teacher_test_ccc_{k}"] for k in ("valence", "arousal", "mean")}},
        "student": {"architecture": dargs.student, "model_class": type(model).__name__,
                    "num_parameters": model.num_parameters(), "width_mult": dargs.width_mult if dargs.student == "cnn" else None,
                    "features": f"{run.extractor.feature_kind} {run.extractor.params.to_dict()}"},
        "loss": f"{dargs.alpha} * MSE(student, labels) + {1 - dargs.alpha:g} * MSE(student, teacher)"
                + (f" + {dargs.hint_weight} * MSE(hint projection, teacher embedding)" if dargs.hint_weight > 0 else ""),
        "targets": run.targets,
    }
    measured = {}
    if dargs.export:
        measured = export_and_measure(model, run.extractor, run.features, run.manifest, out,
                                      dargs.calibration_windows, dargs.latency_runs)
        measured["test_ccc"]["teacher"] = info["teacher"]["test_ccc"]
        results.update({f"test_int8_onnx_ccc_{k}": v for k, v in measured["test_ccc"]["student_int8_onnx"].items()})
    report = write_report(out, info, measured)
    trainer.save_metrics("distill", {k: v for k, v in results.items() if k.startswith(("teacher_", "test_int8"))})

    data_report = json.loads((Path(out) / "data_report.json").read_text()) if (Path(out) / "data_report.json").is_file() else {}
    card = ModelCardInfo(
        backbone=f"student-{dargs.student}", model_class=type(model).__name__, num_parameters=model.num_parameters(),
        init="scratch", pooling=model.config.pooling, loss=f"distillation ({info['loss']})",
        features=run.extractor.to_dict(), data_source=run.source, split_method=data_report.get("split_method", ""),
        splits=data_report.get("splits", {}), epochs=targs.num_train_epochs, batch_size=targs.per_device_train_batch_size,
        learning_rate=targs.learning_rate, seed=targs.seed, metric_for_best_model=targs.metric_for_best_model,
    )
    path = write_model_card(out, card, results)
    path.write_text(path.read_text() + "\n" + card_section(report))

    line = (f"test CCC mean: teacher {results['teacher_test_ccc_mean']:.4f}  student {results['test_ccc_mean']:.4f}")
    if measured:
        lat = measured["latency_ms"]
        line += (f"  int8 {measured['test_ccc']['student_int8_onnx']['mean']:.4f};  {model.num_parameters() / 1e6:.2f}M params, "
                 f"int8 {measured['files_mb']['student.int8.onnx']} MB, {lat['clip_int8_ms']:.1f} ms per 10 s clip (1 thread)")
    print(f"{line}   ({out})")
    return 0


if __name__ == "__main__":
    run_cli(main, os.path.basename(sys.argv[0]))
