"""icefall's checkpoint layout both ways: the key rules of shared/reference/icefall-checkpoints.md on the default
70 M model, round trips of tensors and outputs, icefall's files (PosixPath options) loading without running code,
and the converter."""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path, PosixPath

import pytest
import torch

from model.tiny_models import randomize_  # test/model/tiny_models.py (test/ is on sys.path)

from icefall_lite.model.options import add_model_arguments, build_model
from icefall_lite.training.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from icefall_lite.training.convert import convert_checkpoint_file
from icefall_lite.training.icefall_format import from_icefall_state_dict, is_icefall_state_dict, to_icefall_state_dict

TINY = ["--num-encoder-layers", "1,2,1,1,1", "--encoder-dims", "32,32,32,32,32", "--attention-dims", "16,16,16,16,16",
        "--feedforward-dims", "32,32,32,32,32", "--encoder-unmasked-dims", "16,16,16,16,16", "--nhead", "2,2,2,2,2",
        "--decoder-dim", "16", "--joiner-dim", "16"]


def model_of(options, vocab_size: int = 30, seed: int = 0) -> torch.nn.Module:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    torch.manual_seed(seed)
    return randomize_(build_model(parser.parse_args(options), vocab_size)).eval()


def icefall_training_checkpoint(model: torch.nn.Module, path: Path) -> None:
    """A file laid out as icefall's save_checkpoint writes it: icefall's state dicts, its training states and its
    params at the top level, paths as PosixPath."""
    state = to_icefall_state_dict(model.state_dict(), count=4000)
    torch.save({
        "model": state, "model_avg": {k: v.clone() for k, v in state.items()},
        "optimizer": {"state": {}, "param_groups": []}, "scheduler": {"base_lrs": [0.05]}, "grad_scaler": None,
        "sampler": {"epoch": 3}, "batch_idx_train": 4000, "average_period": 200, "cur_epoch": 3,
        "exp_dir": PosixPath("pruned_transducer_stateless7_streaming/exp"), "env_info": {"torch-version": "2.0"},
        "best_valid_loss": float("inf"),
    }, path)


def test_the_default_model_follows_the_three_rules() -> None:
    ours = model_of([], vocab_size=500).state_dict()
    icefall = to_icefall_state_dict(ours)
    assert (len(ours), len(icefall)) == (559, 682)
    assert sum(key.endswith(".count") for key in icefall) == 123
    assert icefall["encoder.encoder_embed.conv.3.weight"].shape == ours["encoder.encoder_embed.conv.1.0.weight"].shape
    pointwise = "encoder.encoders.0.layers.0.conv_module1.pointwise_conv1.weight"
    assert icefall[pointwise].shape == (*ours[pointwise].shape, 1)
    assert icefall["encoder.encoders.1.encoder.layers.3.conv_module2.deriv_balancer2.count"].dtype == torch.int64
    assert is_icefall_state_dict(icefall) and not is_icefall_state_dict(ours)


def test_round_trip_gives_identical_tensors_and_outputs() -> None:
    model = model_of(TINY)
    back = from_icefall_state_dict(to_icefall_state_dict(model.state_dict()))
    assert list(back) == list(model.state_dict())
    assert all(torch.equal(back[name], tensor) for name, tensor in model.state_dict().items())
    twin = model_of(TINY, seed=1)
    twin.load_state_dict(back)
    x, x_lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    with torch.no_grad():
        assert torch.equal(twin.encoder(x, x_lens)[0], model.encoder(x, x_lens)[0])


def test_icefall_training_checkpoint_loads_without_running_code(tmp_path: Path) -> None:
    model = model_of(TINY)
    icefall_training_checkpoint(model, tmp_path / "epoch-3.pt")
    twin, twin_avg = model_of(TINY, seed=1), model_of(TINY, seed=2)
    params = load_checkpoint(tmp_path / "epoch-3.pt", twin, twin_avg)
    for loaded in (twin, twin_avg):
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    assert params["batch_idx_train"] == 4000 and params["exp_dir"] == PosixPath("pruned_transducer_stateless7_streaming/exp")


class _OpensAShell:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_a_pickle_that_would_run_code_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "pretrained.pt"
    with path.open("wb") as f:
        pickle.dump({"model": {}, "exp_dir": PosixPath("x"), "payload": _OpensAShell()}, f)
    with pytest.raises(CheckpointError, match="refused to load checkpoint .*pretrained.pt"):
        read_checkpoint(path)


@pytest.mark.parametrize("entries", [("model",), ("model", "model_avg")], ids=["pretrained", "epoch"])
def test_converter_round_trip(tmp_path: Path, entries) -> None:
    model = model_of(TINY)
    source = tmp_path / "ours.pt"
    if entries == ("model",):
        torch.save({"model": model.state_dict()}, source)
    else:
        save_checkpoint(source, model, model, params={"batch_idx_train": 700, "average_period": 100})
    convert_checkpoint_file(source, tmp_path / "icefall.pt", to="icefall")
    icefall = torch.load(tmp_path / "icefall.pt", weights_only=True)
    assert set(entries) <= set(icefall) and all(is_icefall_state_dict(icefall[key]) for key in entries)
    if "model_avg" in entries:
        assert icefall["batch_idx_train"] == 700 and icefall["optimizer"] is None
        assert int(icefall["model"]["encoder.encoder_embed.conv.1.count"]) == 700
    convert_checkpoint_file(tmp_path / "icefall.pt", tmp_path / "back.pt", to="icefall_lite")
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    for key in entries:
        assert list(back[key]) == list(model.state_dict())
        assert all(torch.equal(back[key][k], v) for k, v in model.state_dict().items())


def test_converter_to_ours_drops_icefalls_training_states_and_paths(tmp_path: Path) -> None:
    icefall_training_checkpoint(model_of(TINY), tmp_path / "epoch-3.pt")
    convert_checkpoint_file(tmp_path / "epoch-3.pt", tmp_path / "ours.pt", to="icefall_lite")
    ours = torch.load(tmp_path / "ours.pt", weights_only=True)  # no allow-listed classes needed any more
    assert ours["optimizer"] is None and ours["sampler"] is None
    assert ours["exp_dir"] == "pruned_transducer_stateless7_streaming/exp" and ours["cur_epoch"] == 3
    assert not is_icefall_state_dict(ours["model"])
