"""Optimizer, learning-rate schedule, checkpoints and model averaging."""
