"""Loss curves from the tensorboard scalars that train.py writes.

Example::

    >>> plot_loss_curves(Path("exp/tensorboard"), Path("exp/curves.png"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

CURVES = {"train/loss": "training loss (running)", "valid/loss": "validation loss"}


def read_scalars(tensorboard_dir: Path) -> Dict[str, List[Tuple[int, float]]]:
    """tag -> [(step, value)] for every scalar in the event files under `tensorboard_dir`, steps ascending."""
    if not tensorboard_dir.is_dir():
        raise FileNotFoundError(f"{tensorboard_dir} not found: train with --tensorboard 1")
    scalars: Dict[str, Dict[int, float]] = {}
    for events in sorted(tensorboard_dir.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, {}).update({e.step: e.value for e in accumulator.Scalars(tag)})
    return {tag: sorted(points.items()) for tag, points in scalars.items()}


def plot_loss_curves(tensorboard_dir: Path, output: Path) -> None:
    """Write a PNG of the training and validation loss (per frame) against the batch number."""
    scalars = read_scalars(tensorboard_dir)
    missing = [tag for tag in CURVES if tag not in scalars]
    if missing:
        raise ValueError(f"no {missing} scalars in {tensorboard_dir}: was a validation or log interval reached?")
    figure, axes = plt.subplots(figsize=(7, 4))
    for tag, label in CURVES.items():
        steps, values = zip(*scalars[tag])
        axes.plot(steps, values, label=label, marker="o" if tag.startswith("valid") else None)
    axes.set_xlabel("batch")
    axes.set_ylabel("loss per frame")
    axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=100)
    plt.close(figure)
