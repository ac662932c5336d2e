"""Offline distillation of a trained Sentio run into a small student, and its mobile export (ONNX, int8)."""
