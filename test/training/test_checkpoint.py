"""Tests for icefall_lite/training/checkpoint.py: atomic saving, safe loading, checkpoint files."""

import copy
import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from lhotse import CutSet
from lhotse.dataset import SimpleCutSampler
from lhotse.testing.dummies import dummy_cut

from icefall_lite.training import checkpoint as checkpoint_module
from icefall_lite.training.checkpoint import (
    CheckpointError,
    batch_checkpoint_path,
    find_checkpoints,
    load_checkpoint,
    read_checkpoint,
    remove_checkpoints,
    save_checkpoint,
    to_checkpoint_primitives,
)
from icefall_lite.training.optim import Eden, ScaledAdam

torch.set_num_threads(1)
REPO_ROOT = Path(__file__).resolve().parents[2]


def _tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def _sampler() -> SimpleCutSampler:
    cuts = CutSet.from_cuts(dummy_cut(index, duration=1.0) for index in range(12))
    return SimpleCutSampler(cuts, max_duration=2.0, shuffle=True, seed=3)


def _batch_ids(sampler: SimpleCutSampler) -> list:
    return [[cut.id for cut in batch] for batch in sampler]


@dataclasses.dataclass
class _Options:
    exp_dir: Path
    base_lr: float


class _RunsCodeWhenUnpickled:
    """Unpickling this calls open(marker, "w"), creating the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _training_state(seed: int):
    model = _tiny_model(seed)
    model_avg = copy.deepcopy(model).to(torch.float64)
    optimizer = ScaledAdam(model.parameters(), lr=0.05, clipping_scale=2.0)
    scheduler = Eden(optimizer, lr_batches=5000, lr_epochs=3.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    return model, model_avg, optimizer, scheduler, scaler


def _train_one_step(model: torch.nn.Module, optimizer: ScaledAdam) -> None:
    model(torch.randn(5, 3)).pow(2).mean().backward()
    optimizer.step()
    optimizer.zero_grad()


def test_round_trip_restores_every_state(tmp_path):
    model, model_avg, optimizer, scheduler, scaler = _training_state(seed=0)
    _train_one_step(model, optimizer)
    scheduler.step_batch(1000)
    with torch.no_grad():
        model_avg[0].weight.add_(1e-12)  # below float32 resolution: the stored copy is float32
    sampler = _sampler()
    iterator = iter(sampler)
    next(iterator)
    next(iterator)
    sampler_state = copy.deepcopy(sampler.state_dict())
    params = {"batch_idx_train": 1000, "cur_epoch": 2, "best_valid_loss": 0.5,
              "options": _Options(exp_dir=tmp_path / "exp", base_lr=0.05)}
    filename = tmp_path / "epoch-2.pt"
    save_checkpoint(filename, model, model_avg, optimizer, scheduler, scaler, sampler, params)
    assert model_avg[0].weight.dtype == torch.float64  # saving leaves the in-memory average alone

    restored, restored_avg, restored_optimizer, restored_scheduler, restored_scaler = _training_state(seed=1)
    restored_sampler = _sampler()
    extra = load_checkpoint(filename, restored, restored_avg, restored_optimizer, restored_scheduler,
                            restored_scaler, restored_sampler)

    assert extra == {"batch_idx_train": 1000, "cur_epoch": 2, "best_valid_loss": 0.5,
                     "options": {"exp_dir": str(tmp_path / "exp"), "base_lr": 0.05}}
    for name, tensor in model.state_dict().items():
        assert torch.equal(restored.state_dict()[name], tensor), name
    for name, averaged in model_avg.state_dict().items():
        assert torch.equal(restored_avg.state_dict()[name], averaged.float().to(averaged.dtype)), name
    assert restored_scheduler.get_last_lr() == scheduler.get_last_lr()
    assert restored_scaler.get_scale() == 4.0
    saved_state, restored_state = optimizer.state_dict()["state"], restored_optimizer.state_dict()["state"]
    assert restored_state.keys() == saved_state.keys()
    assert all(torch.equal(restored_state[key]["delta"], saved_state[key]["delta"]) for key in saved_state)
    reference_sampler = _sampler()
    reference_sampler.load_state_dict(sampler_state)
    assert _batch_ids(restored_sampler) == _batch_ids(reference_sampler)


def test_state_not_requested_is_returned_unconsumed(tmp_path):
    model, model_avg, optimizer, scheduler, scaler = _training_state(seed=0)
    sampler = _sampler()
    save_checkpoint(tmp_path / "c.pt", model, model_avg, optimizer, scheduler, scaler, sampler, {"cur_epoch": 1})
    extra = load_checkpoint(tmp_path / "c.pt", _tiny_model(1))
    assert set(extra) == {"model_avg", "optimizer", "scheduler", "grad_scaler", "sampler", "cur_epoch"}
    assert extra["sampler"]["seed"] == 3


def test_ddp_wrapper_is_unwrapped(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        model = torch.nn.parallel.DistributedDataParallel(_tiny_model(0))
        save_checkpoint(tmp_path / "ddp.pt", model)
        assert all(not name.startswith("module.") for name in read_checkpoint(tmp_path / "ddp.pt")["model"])
        restored = torch.nn.parallel.DistributedDataParallel(_tiny_model(1))
        load_checkpoint(tmp_path / "ddp.pt", restored)
        assert torch.equal(restored.module[0].weight, model.module[0].weight)
    finally:
        dist.destroy_process_group()


def test_params_that_weights_only_would_refuse_are_rejected_before_writing(tmp_path):
    filename = tmp_path / "c.pt"
    with pytest.raises(TypeError, match=r"params\['args'\]\['callback'\] is a function"):
        save_checkpoint(filename, _tiny_model(0), params={"args": {"callback": _tiny_model}})
    with pytest.raises(ValueError, match="collide"):
        save_checkpoint(filename, _tiny_model(0), params={"optimizer": 1})
    assert not filename.exists()


def test_primitive_conversion_keeps_structure():
    converted = to_checkpoint_primitives({"paths": (Path("a"), Path("b")), "n": [1, 2.5, None, True]})
    assert converted == {"paths": ("a", "b"), "n": [1, 2.5, None, True]}


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_checkpoint(tmp_path / "nowhere.pt", _tiny_model(0))


@pytest.mark.parametrize("kept_fraction", [0.0, 0.5, 0.99])
def test_truncated_file_is_reported_as_corrupt(tmp_path, kept_fraction):
    filename = tmp_path / "epoch-1.pt"
    save_checkpoint(filename, _tiny_model(0))
    data = filename.read_bytes()
    filename.write_bytes(data[: int(len(data) * kept_fraction)])
    with pytest.raises(CheckpointError, match="epoch-1.pt is truncated or corrupt"):
        load_checkpoint(filename, _tiny_model(0))


def test_pickled_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "code-ran"
    filename = tmp_path / "malicious.pt"
    torch.save({"model": _tiny_model(0).state_dict(), "payload": _RunsCodeWhenUnpickled(marker)}, filename)
    with pytest.raises(CheckpointError, match="refused to load checkpoint .*malicious.pt"):
        load_checkpoint(filename, _tiny_model(0))
    assert not marker.exists()


def test_mismatched_model_names_the_file(tmp_path):
    save_checkpoint(tmp_path / "c.pt", _tiny_model(0))
    with pytest.raises(CheckpointError, match="c.pt: 'model' does not fit"):
        load_checkpoint(tmp_path / "c.pt", torch.nn.Linear(3, 4))
    load_checkpoint(tmp_path / "c.pt", torch.nn.Sequential(torch.nn.Linear(3, 4)), strict=False)


def test_failed_save_keeps_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    filename = tmp_path / "checkpoint-100.pt"
    model = _tiny_model(0)
    save_checkpoint(filename, model, params={"batch_idx_train": 100})

    def write_half_then_fail(obj, file):
        file.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", write_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(filename, _tiny_model(1), params={"batch_idx_train": 200})
    monkeypatch.undo()
    assert read_checkpoint(filename)["batch_idx_train"] == 100
    assert [path.name for path in tmp_path.iterdir()] == ["checkpoint-100.pt"]


_KILLED_WRITER = """
import os, signal, sys, torch
from icefall_lite.training import checkpoint

def write_half_then_die(obj, file):
    file.write(b"PK\\x03\\x04 partial")
    file.flush()
    os.kill(os.getpid(), signal.SIGKILL)

checkpoint.torch.save = write_half_then_die
checkpoint.save_checkpoint(sys.argv[1], torch.nn.Linear(3, 4), params={"batch_idx_train": 200})
"""


def test_killed_save_never_leaves_a_partial_file_under_the_final_name(tmp_path):
    filename = tmp_path / "checkpoint-100.pt"
    save_checkpoint(filename, _tiny_model(0), params={"batch_idx_train": 100})
    result = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(filename)], cwd=REPO_ROOT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    assert read_checkpoint(filename)["batch_idx_train"] == 100
    assert find_checkpoints(tmp_path) == [filename]


def test_find_and_remove_checkpoints_by_batch(tmp_path):
    for batch in (100, 2000, 300):
        batch_checkpoint_path(tmp_path, batch).write_bytes(b"")
    for other in ("epoch-1.pt", "checkpoint-x.pt", ".checkpoint-5000.pt.1.ab.tmp"):
        (tmp_path / other).write_bytes(b"")
    assert [path.name for path in find_checkpoints(tmp_path)] == [
        "checkpoint-2000.pt", "checkpoint-300.pt", "checkpoint-100.pt"]
    assert [path.name for path in find_checkpoints(tmp_path, max_batch=1999)] == [
        "checkpoint-300.pt", "checkpoint-100.pt"]
    assert [path.name for path in remove_checkpoints(tmp_path, keep_last_k=2)] == ["checkpoint-100.pt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".checkpoint-5000.pt.1.ab.tmp", "checkpoint-2000.pt", "checkpoint-300.pt", "checkpoint-x.pt", "epoch-1.pt"]
    with pytest.raises(ValueError, match="keep_last_k"):
        remove_checkpoints(tmp_path, keep_last_k=0)
