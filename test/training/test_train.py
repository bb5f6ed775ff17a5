"""train.py end to end on the tiny prepared corpus: DDP, fp16 on CPU, bad batches, kill and resume, unsafe files."""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from lhotse import NumpyFilesWriter, load_manifest

from conftest import RECIPE_DIR, REPO_ROOT, TINY_VOCAB_SIZE
from icefall_lite.training.checkpoint import read_checkpoint

TRAIN_SCRIPT = RECIPE_DIR / "pruned_transducer_stateless7_streaming" / "train.py"
TINY_MODEL = (
    "--num-encoder-layers 1,1,1,1,1 --encoder-dims 32,32,32,32,32 --attention-dims 16,16,16,16,16 "
    "--feedforward-dims 32,32,32,32,32 --encoder-unmasked-dims 16,16,16,16,16 --nhead 2,2,2,2,2 "
    "--cnn-module-kernels 3,3,3,3,3 --decoder-dim 32 --joiner-dim 32"
).split()


def train_command(exp_dir: Path, *extra: str) -> List[str]:
    return [
        sys.executable, str(TRAIN_SCRIPT), *TINY_MODEL,
        "--bpe-model", f"data/lang_bpe_{TINY_VOCAB_SIZE}/bpe.model", "--exp-dir", str(exp_dir),
        "--num-epochs", "1", "--max-duration", "40", "--num-buckets", "2", "--num-workers", "0",
        "--log-interval", "1", "--save-every-n", "2", "--average-period", "1", "--valid-interval", "1000",
        "--num-threads", "1", "--enable-musan", "0", *extra,
    ]


def run_train(work_dir: Path, exp_dir: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(train_command(exp_dir, *extra), cwd=work_dir, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"train.py failed:\n{result.stderr[-4000:]}")
    return result


def logged_batches(log: str) -> dict:
    """batch number -> cut ids, from the lines --log-batch-cuts writes."""
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"Epoch 1, batch (\d+) cuts: (\[.*?\])", log)}


def test_one_epoch_writes_checkpoints_logs_and_tensorboard(prepared_dir: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    result = run_train(prepared_dir, exp_dir)
    assert re.search(r"Number of model parameters: \d+", result.stderr)
    assert "training cut filter: kept" in result.stderr
    checkpoint = read_checkpoint(exp_dir / "epoch-1.pt")
    assert {"model", "model_avg", "optimizer", "scheduler", "grad_scaler"} <= set(checkpoint)
    assert checkpoint["cur_epoch"] == 1 and checkpoint["batch_idx_train"] > 0
    epoch_bytes = (exp_dir / "epoch-1.pt").read_bytes()
    assert (exp_dir / "best-valid-loss.pt").read_bytes() == epoch_bytes
    assert (exp_dir / "best-train-loss.pt").read_bytes() == epoch_bytes
    assert not list(exp_dir.glob(".*.tmp"))
    assert list((exp_dir / "log").glob("log-train-*-0"))
    assert list((exp_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert re.search(r"loss\[loss=[\d.]+, simple_loss=[\d.]+, pruned_loss=[\d.]+, over", result.stderr)
    assert "audio-s/s" in result.stderr
    assert {"train/loss", "train/simple_loss", "train/pruned_loss", "valid/pruned_loss"} <= tensorboard_tags(exp_dir)


def test_fp16_path_runs_on_cpu_with_a_grad_scaler(prepared_dir: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    result = run_train(prepared_dir, exp_dir, "--use-fp16", "1")
    assert "grad_scale: 1" in result.stderr or "grad_scale: 2" in result.stderr
    scaler_state = read_checkpoint(exp_dir / "epoch-1.pt")["grad_scaler"]
    assert scaler_state and scaler_state["scale"] > 0
    assert all(torch.isfinite(v).all() for v in read_checkpoint(exp_dir / "epoch-1.pt")["model"].values())


def test_two_process_gloo_ddp_run_completes(prepared_dir: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    result = run_train(prepared_dir, exp_dir, "--world-size", "2", "--master-port", "29571")
    assert "rank 1 of 2" in (exp_dir / "log").joinpath(next(p.name for p in (exp_dir / "log").glob("*-1"))).read_text()
    assert (exp_dir / "epoch-1.pt").is_file()
    assert "Done!" in result.stderr


def tensorboard_tags(exp_dir: Path) -> set:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in (exp_dir / "tensorboard").glob("events.out.tfevents.*"):
        tags |= set(EventAccumulator(str(events)).Reload().Tags()["scalars"])
    return tags


def test_full_transducer_loss_trains_with_two_process_ddp(prepared_dir: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    result = run_train(
        prepared_dir, exp_dir, "--world-size", "2", "--master-port", "29573", "--transducer-loss", "full"
    )
    assert "Done!" in result.stderr
    assert re.search(r"loss\[loss=[\d.]+, transducer_loss=[\d.]+, over", result.stderr)
    assert "simple_loss" not in result.stderr.split("Number of model parameters")[1]
    checkpoint = read_checkpoint(exp_dir / "epoch-1.pt")
    assert checkpoint["batch_idx_train"] >= 2 and checkpoint["num_bad_batches"] == 0
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values())
    assert {"train/loss", "train/transducer_loss", "valid/transducer_loss"} <= tensorboard_tags(exp_dir)
    result = run_train(prepared_dir, exp_dir, "--transducer-loss", "exact", check=False)
    assert result.returncode != 0 and "--transducer-loss: invalid choice: 'exact'" in result.stderr


TINY_ATTENTION_DECODER = (
    "--attention-decoder-num-layers 1 --attention-decoder-dim 32 --attention-decoder-attention-dim 16 "
    "--attention-decoder-num-heads 2 --attention-decoder-feedforward-dim 32"
).split()
HEAD_COMBINATIONS = {  # name -> (train.py options, losses logged besides "loss")
    "transducer+ctc": (["--use-ctc", "1"], ["simple_loss", "pruned_loss", "ctc_loss"]),
    "ctc": (["--use-transducer", "0", "--use-ctc", "1", "--ctc-loss-scale", "1"], ["ctc_loss"]),
    "ctc+attention+r2l": (
        ["--use-transducer", "0", "--use-ctc", "1", "--use-attention-decoder", "1",
         "--attention-decoder-reverse-weight", "0.3", *TINY_ATTENTION_DECODER],
        ["ctc_loss", "attention_decoder_loss"],
    ),
}


@pytest.mark.parametrize("heads", list(HEAD_COMBINATIONS))
def test_each_head_combination_trains_with_two_process_ddp(prepared_dir: Path, tmp_path: Path, heads: str) -> None:
    options, names = HEAD_COMBINATIONS[heads]
    exp_dir = tmp_path / "exp"
    port = str(29580 + list(HEAD_COMBINATIONS).index(heads))
    result = run_train(prepared_dir, exp_dir, "--world-size", "2", "--master-port", port, *options)
    assert "Done!" in result.stderr
    logged = ", ".join(f"{name}=[\\d.]+" for name in ["loss", *names])
    assert re.search(f"loss\\[{logged}, over", result.stderr), result.stderr[-2000:]
    checkpoint = read_checkpoint(exp_dir / "epoch-1.pt")
    assert checkpoint["batch_idx_train"] >= 2 and checkpoint["num_bad_batches"] == 0
    assert "ctc_output.output.weight" in checkpoint["model"]
    assert ("joiner.output_linear.weight" in checkpoint["model"]) == (heads == "transducer+ctc")
    assert ("reverse_attention_decoder.output.weight" in checkpoint["model"]) == (heads == "ctc+attention+r2l")
    assert {f"train/{name}" for name in names} | {f"valid/{name}" for name in names} <= tensorboard_tags(exp_dir)


def _manifest_dir_with_a_nan_cut(prepared_dir: Path, target: Path) -> str:
    """A manifest dir like the prepared one whose training cuts have NaN features in one cut; returns its id."""
    fbank_dir = prepared_dir / "data" / "fbank"
    target.mkdir()
    for path in fbank_dir.glob("*.jsonl.gz"):
        if "train" not in path.name:
            os.symlink(path.resolve(), target / path.name)
    cuts = load_manifest(fbank_dir / "librispeech_cuts_train-clean-100.jsonl.gz").to_eager()
    first = cuts[0]
    nan_features = np.full((first.num_frames, 80), np.nan, dtype=np.float32)
    with NumpyFilesWriter(target / "nan_feats") as writer:
        key = writer.write(first.id, nan_features)
    first.features = dataclasses.replace(
        first.features, storage_type=writer.name, storage_path=str(target / "nan_feats"), storage_key=key
    )
    cuts.to_file(target / "librispeech_cuts_train-clean-100.jsonl.gz")
    return first.id


def test_a_nan_batch_is_skipped_and_training_continues(prepared_dir: Path, tmp_path: Path) -> None:
    manifest_dir = tmp_path / "fbank"
    nan_cut_id = _manifest_dir_with_a_nan_cut(prepared_dir, manifest_dir)
    exp_dir = tmp_path / "exp"
    result = run_train(prepared_dir, exp_dir, "--manifest-dir", str(manifest_dir), "--enable-spec-aug", "0")
    skipped = re.findall(r"Skipped batch \d+ .*cuts: (\[.*\])", result.stderr)
    assert len(skipped) == 1 and f"'{nan_cut_id}'" in skipped[0]
    checkpoint = read_checkpoint(exp_dir / "epoch-1.pt")
    assert checkpoint["num_bad_batches"] == 1
    assert checkpoint["batch_idx_train"] >= 2
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values())


def test_too_many_bad_batches_stop_with_the_batch_saved(prepared_dir: Path, tmp_path: Path) -> None:
    manifest_dir = tmp_path / "fbank"
    _manifest_dir_with_a_nan_cut(prepared_dir, manifest_dir)
    exp_dir = tmp_path / "exp"
    result = run_train(
        prepared_dir, exp_dir, "--manifest-dir", str(manifest_dir), "--max-bad-batches-in-a-row", "1", check=False
    )
    assert result.returncode != 0
    assert "1 batches in a row had a non-finite loss or gradient" in result.stderr
    saved = list(exp_dir.glob("batch-*.pt"))
    assert len(saved) == 1 and torch.isnan(read_checkpoint(saved[0])["inputs"]).any()


@pytest.mark.parametrize("heads", [[], ["--use-ctc", "1", "--use-attention-decoder", "1", *TINY_ATTENTION_DECODER]])
def test_sigkill_then_start_batch_resumes_at_the_same_data_position(
    prepared_dir: Path, tmp_path: Path, heads: List[str]
) -> None:
    exp_dir = tmp_path / "exp"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    log_path = tmp_path / "killed.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            train_command(exp_dir, "--log-batch-cuts", "1", "--max-duration", "25", *heads),
            cwd=prepared_dir, stderr=log, stdout=log, env=env,
        )
        deadline = time.time() + 300
        while not (exp_dir / "checkpoint-6.pt").exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_log = log_path.read_text()
    assert (exp_dir / "checkpoint-4.pt").exists(), killed_log[-3000:]
    for path in exp_dir.glob("*.pt"):
        read_checkpoint(path)
    before_kill = logged_batches(killed_log)
    resumed = run_train(
        prepared_dir, exp_dir, "--log-batch-cuts", "1", "--max-duration", "25", "--start-batch", "4", *heads
    )
    after_resume = logged_batches(resumed.stderr)
    assert min(after_resume) == 5
    assert after_resume[5] == before_kill[5] and after_resume[6] == before_kill[6]
    final = read_checkpoint(exp_dir / "epoch-1.pt")
    assert final["batch_idx_train"] == max(after_resume)
    assert ("attention_decoder.output.weight" in final["model"]) == bool(heads)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_checkpoint_that_would_run_code_is_refused(prepared_dir: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    exp_dir.mkdir()
    with open(exp_dir / "epoch-1.pt", "wb") as f:
        pickle.dump({"model": _RunsCode()}, f)
    result = run_train(prepared_dir, exp_dir, "--start-epoch", "2", "--num-epochs", "2", check=False)
    assert result.returncode != 0
    assert "refused" in result.stderr and "epoch-1.pt" in result.stderr
    assert not (prepared_dir / "pwned").exists()


def test_bad_options_are_rejected_before_training(tmp_path: Path) -> None:
    result = run_train(tmp_path, tmp_path / "exp", "--save-every-n", "10", "--average-period", "200", check=False)
    assert result.returncode != 0 and "--save-every-n (10) must be >= --average-period (200)" in result.stderr
    result = run_train(tmp_path, tmp_path / "exp", "--nhead", "2,x", check=False)
    assert result.returncode != 0 and "--nhead expects comma-separated positive integers" in result.stderr
    result = run_train(tmp_path, tmp_path / "exp", "--use-transducer", "0", "--use-ctc", "1", check=False)
    assert result.returncode != 0 and "--ctc-loss-scale must be 1, got 0.2" in result.stderr
    result = run_train(
        tmp_path, tmp_path / "exp", "--use-transducer", "0", "--use-ctc", "1", "--use-attention-decoder", "1",
        "--ctc-loss-scale", "0.5", check=False,
    )
    assert result.returncode != 0 and "must sum to 1, got 1.3" in result.stderr
    result = run_train(tmp_path, tmp_path / "exp", "--use-transducer", "0", "--use-ctc", "0", check=False)
    assert result.returncode != 0 and "at least one of --use-transducer and --use-ctc must be 1" in result.stderr
