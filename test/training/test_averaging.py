"""Tests for icefall_lite/training/averaging.py: running average and checkpoint averages."""

import copy
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import torch

from icefall_lite.training.averaging import (
    average_checkpoints,
    average_checkpoints_with_averaged_model,
    update_averaged_model,
)
from icefall_lite.training.checkpoint import CheckpointError, save_checkpoint

torch.set_num_threads(1)
AVERAGE_PERIOD = 3


class _TiedModel(torch.nn.Module):
    """A linear layer, a second one sharing its weight, and an integer buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Linear(2, 2)
        self.second = torch.nn.Linear(2, 2)
        self.second.weight = self.first.weight
        self.register_buffer("counter", torch.tensor(0))


def _perturb(model: torch.nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator))


def _float_state(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {name: t.detach().double().clone() for name, t in model.state_dict().items() if t.is_floating_point()}


def _mean(states: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    return {name: torch.stack([state[name] for state in states]).mean(dim=0) for name in states[0]}


def _train(num_batches: int, save_at: Dict[int, str], exp_dir: Optional[Path] = None):
    """Perturb a model every batch, average every AVERAGE_PERIOD, save at the given batches.

    Returns the snapshots at multiples of AVERAGE_PERIOD (float64) and the averaged model.
    """
    generator = torch.Generator().manual_seed(0)
    model = _TiedModel()
    model_avg = copy.deepcopy(model).to(torch.float64)
    snapshots = []
    for batch_idx_train in range(1, num_batches + 1):
        _perturb(model, generator)
        if batch_idx_train % AVERAGE_PERIOD == 0:
            snapshots.append(_float_state(model))
            update_averaged_model(AVERAGE_PERIOD, batch_idx_train, model, model_avg)
        if batch_idx_train in save_at:
            save_checkpoint(exp_dir / save_at[batch_idx_train], model, model_avg,
                            params={"batch_idx_train": batch_idx_train, "average_period": AVERAGE_PERIOD})
    return snapshots, model_avg


def test_running_average_is_uniform_mean_of_snapshots():
    snapshots, model_avg = _train(num_batches=5 * AVERAGE_PERIOD, save_at={})
    averaged = model_avg.state_dict()  # "first.weight" and the tied "second.weight" must be updated once
    for name, value in _mean(snapshots).items():
        torch.testing.assert_close(averaged[name], value, rtol=1e-6, atol=1e-6)


def test_update_rejects_batch_before_first_period():
    model = _TiedModel()
    with pytest.raises(ValueError, match="batch_idx_train=2"):
        update_averaged_model(AVERAGE_PERIOD, 2, model, copy.deepcopy(model))


def test_start_end_formula_recovers_mean_over_interval(tmp_path):
    # batch 7 rounds down to 6 and batch 16 to 15: the interval holds the snapshots at 9, 12, 15.
    snapshots, _ = _train(num_batches=16, save_at={7: "epoch-1.pt", 16: "epoch-3.pt"}, exp_dir=tmp_path)
    averaged = average_checkpoints_with_averaged_model(tmp_path / "epoch-1.pt", tmp_path / "epoch-3.pt")
    expected = _mean(snapshots[2:5])
    for name, value in expected.items():
        assert averaged[name].dtype == torch.float32
        torch.testing.assert_close(averaged[name].double(), value, rtol=1e-5, atol=1e-5)


def test_start_end_formula_needs_a_later_end(tmp_path):
    _train(num_batches=8, save_at={7: "a.pt", 8: "b.pt"}, exp_dir=tmp_path)  # both round down to 6
    with pytest.raises(CheckpointError, match="must come after"):
        average_checkpoints_with_averaged_model(tmp_path / "a.pt", tmp_path / "b.pt")


def test_plain_average_floor_divides_integer_buffers(tmp_path):
    models = [_TiedModel() for _ in range(3)]
    filenames = []
    for index, (model, counter) in enumerate(zip(models, (3, 4, 6))):
        model.counter.fill_(counter)
        filenames.append(tmp_path / f"epoch-{index + 1}.pt")
        save_checkpoint(filenames[-1], model)
    averaged = average_checkpoints(filenames)
    assert averaged["counter"].item() == 13 // 3
    expected = _mean([_float_state(model) for model in models])
    for name, value in expected.items():
        torch.testing.assert_close(averaged[name].double(), value, rtol=1e-6, atol=1e-6)


def test_plain_average_names_a_mismatching_file(tmp_path):
    save_checkpoint(tmp_path / "epoch-1.pt", _TiedModel())
    save_checkpoint(tmp_path / "epoch-2.pt", torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="epoch-2.pt has different parameter names"):
        average_checkpoints([tmp_path / "epoch-1.pt", tmp_path / "epoch-2.pt"])
