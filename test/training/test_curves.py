"""Loss curves from tensorboard scalars."""

from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from icefall_lite.training.curves import plot_loss_curves, read_scalars


def write_scalars(directory: Path, tags: dict) -> None:
    writer = SummaryWriter(str(directory))
    for tag, points in tags.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()


def test_scalars_are_read_back_in_step_order_and_plotted(tmp_path: Path) -> None:
    write_scalars(tmp_path / "tb", {"train/loss": [(20, 2.0), (10, 3.0)], "valid/loss": [(20, 2.5)]})
    scalars = read_scalars(tmp_path / "tb")
    assert [step for step, _ in scalars["train/loss"]] == [10, 20]
    assert scalars["valid/loss"][0][1] == pytest.approx(2.5)
    plot_loss_curves(tmp_path / "tb", tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_validation_scalars_are_named(tmp_path: Path) -> None:
    write_scalars(tmp_path / "tb", {"train/loss": [(10, 3.0)]})
    with pytest.raises(ValueError, match="valid/loss"):
        plot_loss_curves(tmp_path / "tb", tmp_path / "curves.png")
    with pytest.raises(FileNotFoundError, match="nothing"):
        read_scalars(tmp_path / "nothing")
