"""Training schedules driven by the global batch count, and the function that pushes it into a model."""

from torch import nn

ICEFALL_WARMUP_BATCHES = 4000.0
"""icefall's model warm-up in batches: the schedules of layer drop, dropout and the bypass clamp scale with it."""


def linear_warmup(batch_count: float, begin: float, end: float, initial: float, final: float) -> float:
    """``initial`` until ``begin``, ``final`` from ``end`` on, linear in between."""
    if batch_count <= begin:
        return initial
    if batch_count >= end:
        return final
    return initial + (final - initial) * (batch_count - begin) / (end - begin)


def set_batch_count(model: nn.Module, batch_count: float) -> None:
    """Tell every sub-module with a ``batch_count`` attribute how many batches training has done.

    train.py calls this after each optimizer step; layer drop, dynamic dropout, the bypass-scale clamp and
    the skip-connection dropout of the Zipformer read it.
    """
    for module in model.modules():
        if hasattr(module, "batch_count"):
            module.batch_count = float(batch_count)
