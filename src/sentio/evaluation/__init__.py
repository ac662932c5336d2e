"""Evaluation of a trained run: metrics with bootstrap CIs, per-subset and quadrant reports, plots."""

from .report import PREDICTION_COLUMNS, build_report, markdown, prediction_table

__all__ = ["PREDICTION_COLUMNS", "build_report", "markdown", "prediction_table"]
