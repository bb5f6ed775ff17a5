"""--epoch/--iter/--avg/--use-averaged-model: which files are read, what weights result, and the errors."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

import pytest
import torch
from torch import nn

from icefall_lite.decoding.checkpoint_selection import (
    CheckpointSelectionError,
    add_checkpoint_arguments,
    checkpoint_suffix,
    load_model_for_inference,
    select_checkpoints,
)
from icefall_lite.training.checkpoint import CheckpointError, batch_checkpoint_path, save_checkpoint

AVERAGE_PERIOD = 10
BATCHES_PER_EPOCH = 30


def parse(exp_dir: Path, *options: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_checkpoint_arguments(parser)
    return parser.parse_args(["--exp-dir", str(exp_dir), *options])


def filled(value: float) -> nn.Module:
    """nn.Linear(2, 2) with weights ``value`` and biases ``-value``."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.fill_(value)
        model.bias.fill_(-value)
    return model


def mean_of_snapshots(batches: List[int]) -> float:
    return sum(batches) / len(batches)


def model_at(batch: int) -> nn.Module:
    """The "trained" model at a batch: weights equal to the batch index (so averages are easy to predict)."""
    return filled(float(batch))


def model_avg_at(batch: int) -> nn.Module:
    """The running average at ``batch``: mean of the snapshots at AVERAGE_PERIOD, 2 * AVERAGE_PERIOD, ..."""
    return filled(mean_of_snapshots(list(range(AVERAGE_PERIOD, batch + 1, AVERAGE_PERIOD))))


def save(path: Path, batch: int) -> None:
    save_checkpoint(path, model_at(batch), model_avg_at(batch), params={"batch_idx_train": batch, "average_period": AVERAGE_PERIOD})


@pytest.fixture
def exp_dir(tmp_path: Path) -> Path:
    for epoch in (1, 2, 3, 4):
        save(tmp_path / f"epoch-{epoch}.pt", epoch * BATCHES_PER_EPOCH)
    for batch in (20, 40, 60, 80):
        save(batch_checkpoint_path(tmp_path, batch), batch)
    return tmp_path


def loaded_weight(args: argparse.Namespace) -> float:
    model = load_model_for_inference(args, nn.Linear(2, 2))
    assert not model.training
    values = model.weight.detach().unique()
    assert values.numel() == 1 and torch.equal(model.bias, -model.weight[0])
    return float(values)


@pytest.mark.parametrize(
    "options, expected_files, expected_weight",
    [
        # snapshots after batch 30 up to 120: 40, 50, ..., 120
        (["--epoch", "4", "--avg", "3"], ["epoch-1.pt", "epoch-4.pt"], mean_of_snapshots(list(range(40, 121, 10)))),
        (["--epoch", "4", "--avg", "2", "--use-averaged-model", "0"], ["epoch-3.pt", "epoch-4.pt"], (90 + 120) / 2),
        (["--epoch", "2", "--avg", "1", "--use-averaged-model", "0"], ["epoch-2.pt"], 60.0),
        (["--iter", "70", "--avg", "2"], ["checkpoint-20.pt", "checkpoint-60.pt"], mean_of_snapshots([30, 40, 50, 60])),
        (["--iter", "80", "--avg", "3", "--use-averaged-model", "false"],
         ["checkpoint-80.pt", "checkpoint-60.pt", "checkpoint-40.pt"], 60.0),
    ],
)
def test_selected_files_and_weights(exp_dir: Path, options: List[str], expected_files: List[str], expected_weight: float) -> None:
    args = parse(exp_dir, *options)
    assert [path.name for path in select_checkpoints(args).files] == expected_files
    assert loaded_weight(args) == pytest.approx(expected_weight, rel=1e-6)


def test_suffix() -> None:
    assert checkpoint_suffix(parse(Path("x"), "--epoch", "30", "--avg", "9")) == "epoch-30-avg-9"
    assert checkpoint_suffix(parse(Path("x"), "--iter", "1000", "--avg", "2")) == "iter-1000-avg-2"


def test_defaults_are_icefall_decode_defaults() -> None:
    args = parse(Path("x"))
    assert (args.epoch, args.iter, args.avg, args.use_averaged_model) == (30, 0, 9, True)


@pytest.mark.parametrize(
    "options, mentioned",
    [
        (["--epoch", "6", "--avg", "1"], ["epoch-5.pt", "epoch-6.pt", "missing", "[1, 2, 3, 4]"]),
        (["--epoch", "6", "--avg", "3", "--use-averaged-model", "0"], ["epoch-5.pt", "epoch-6.pt", "[1, 2, 3, 4]"]),
        (["--epoch", "3", "--avg", "3"], ["epoch-0.pt", "--avg < --epoch", "[1, 2, 3, 4]"]),
        (["--epoch", "2", "--avg", "5", "--use-averaged-model", "0"], ["epoch--2.pt", "--avg <= --epoch"]),
        (["--iter", "50", "--avg", "3"], ["checkpoint-B.pt with B <= 50", "found 2", "checkpoint-40.pt"]),
        (["--epoch", "3", "--avg", "0"], ["--avg must be at least 1"]),
    ],
)
def test_missing_checkpoints_and_too_large_avg_are_explained(exp_dir: Path, options: List[str], mentioned: List[str]) -> None:
    with pytest.raises(CheckpointSelectionError) as error:
        load_model_for_inference(parse(exp_dir, *options), nn.Linear(2, 2))
    for text in mentioned:
        assert text in str(error.value)
    assert str(exp_dir) in str(error.value) or "--avg must" in str(error.value)


def test_weights_of_another_model_are_explained(exp_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="do not fit the model built from the options"):
        load_model_for_inference(parse(exp_dir, "--epoch", "2", "--avg", "1"), nn.Linear(3, 2))


def test_checkpoint_without_averaged_model_is_named(tmp_path: Path) -> None:
    for epoch in (1, 2):
        save_checkpoint(tmp_path / f"epoch-{epoch}.pt", model_at(epoch), params={"batch_idx_train": epoch * 30, "average_period": 10})
    with pytest.raises(CheckpointError, match="epoch-1.pt.*model_avg"):
        load_model_for_inference(parse(tmp_path, "--epoch", "2", "--avg", "1"), nn.Linear(2, 2))
