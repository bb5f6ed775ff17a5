"""train.py --shar-dir on the tiny prepared corpus: the bucketing sampler holds at most --shar-buffer-size cuts
(their features in memory); a 2-process DDP epoch over Shar shards (2 DataLoader workers per rank) uses every
training cut exactly once; SIGKILL then --start-batch resumes with the same next batches; and
two torchrun "nodes" on 127.0.0.1 train together and write one set of checkpoints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import List

import pytest
import sentencepiece as spm
from lhotse import load_manifest

from conftest import REPO_ROOT, TINY_VOCAB_SIZE
from icefall_lite.data.datamodule import AsrDataConfig, LibriSpeechAsrDataModule, TrainCutFilter
from icefall_lite.training.checkpoint import read_checkpoint

from training.test_train import TRAIN_SCRIPT, logged_batches, run_train, train_command

EXPORT_SCRIPT = REPO_ROOT / "egs" / "librispeech" / "ASR" / "local" / "export_shar.py"
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture(scope="module")
def shar_dir(prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prepared training cuts as Shar shards of 10 cuts (with audio)."""
    directory = tmp_path_factory.mktemp("shar") / "train"
    subprocess.run([sys.executable, str(EXPORT_SCRIPT), "--out-dir", str(directory), "--shard-size", "10",
                    "--include-audio", "1"], cwd=prepared_dir, env=ENV, check=True, capture_output=True)
    return directory


def train_cut_filter(prepared_dir: Path) -> TrainCutFilter:
    """train.py's filter of the training cuts, with the prepared corpus's BPE model."""
    sp = spm.SentencePieceProcessor(model_file=str(prepared_dir / f"data/lang_bpe_{TINY_VOCAB_SIZE}/bpe.model"))
    return TrainCutFilter(sp)


def expected_cut_ids(prepared_dir: Path) -> List[str]:
    """The training cuts train.py keeps (its TrainCutFilter)."""
    cuts = load_manifest(prepared_dir / "data/fbank/librispeech_cuts_train-clean-100.jsonl.gz")
    return sorted(cut.id for cut in cuts.filter(train_cut_filter(prepared_dir)))


def logged_cut_ids(log_dir: Path) -> List[str]:
    """Every cut id that any rank logged with --log-batch-cuts."""
    text = "".join(path.read_text() for path in log_dir.glob("log-train-*"))
    return [cut for match in re.finditer(r"batch \d+ cuts: \[(.*?)\]", text) for cut in re.findall(r"'([^']+)'", match.group(1))]


def test_shards_hold_cuts_features_and_audio(shar_dir: Path) -> None:
    names = sorted(path.name for path in shar_dir.iterdir())
    assert "cuts.000000.jsonl.gz" in names and "features.000000.tar" in names and "recording.000000.tar" in names
    assert len([n for n in names if n.startswith("cuts.")]) == len([n for n in names if n.startswith("features.")]) >= 6


def most_cuts_held(prepared_dir: Path, shar_dir: Path, buffer_size: int) -> int:
    """One epoch of shar_train_batches in this process: the most cuts read from the shards (and kept by the
    filter) but not yet in a batch, at any batch; asserts that every kept cut came out once."""
    keep = train_cut_filter(prepared_dir)
    config = AsrDataConfig(
        manifest_dir=prepared_dir / "data/fbank", max_duration=15.0, num_buckets=2, drop_last=False, num_workers=0,
        enable_musan=False, enable_spec_aug=False, shar_dir=shar_dir, shar_buffer_size=buffer_size,
    )
    emitted: List[str] = []
    held = 0
    for batch in LibriSpeechAsrDataModule(config).shar_train_batches(keep, epoch=1, rank=0, world_size=1):
        emitted += [cut.id for cut in batch["supervisions"]["cut"]]
        held = max(held, keep.kept - len(emitted))
    assert sorted(emitted) == expected_cut_ids(prepared_dir)
    return held


def test_the_shar_sampler_holds_at_most_shar_buffer_size_cuts(prepared_dir: Path, shar_dir: Path) -> None:
    """Cuts read from Shar carry their features and audio in memory: the buffer bounds the memory."""
    num_cuts = len(expected_cut_ids(prepared_dir))
    assert most_cuts_held(prepared_dir, shar_dir, buffer_size=6) <= 6
    assert most_cuts_held(prepared_dir, shar_dir, buffer_size=10 * num_cuts) > num_cuts // 2


def test_ddp_epoch_over_shar_uses_every_cut_exactly_once(prepared_dir: Path, shar_dir: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    run_train(prepared_dir, exp_dir, "--shar-dir", str(shar_dir), "--world-size", "2", "--master-port", "29581",
              "--num-workers", "2", "--log-batch-cuts", "1", "--drop-last", "0", "--max-duration", "25")
    seen = logged_cut_ids(exp_dir / "log")
    duplicates = [cut for cut, count in Counter(seen).items() if count > 1]
    assert not duplicates, duplicates
    assert sorted(seen) == expected_cut_ids(prepared_dir)
    assert read_checkpoint(exp_dir / "epoch-1.pt")["batch_idx_train"] > 0


def test_sigkill_then_start_batch_resumes_shar_training_at_the_same_batch(
    prepared_dir: Path, shar_dir: Path, tmp_path: Path
) -> None:
    exp_dir = tmp_path / "exp"
    options = ["--shar-dir", str(shar_dir), "--num-workers", "2", "--log-batch-cuts", "1", "--max-duration", "25"]
    log_path = tmp_path / "killed.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(train_command(exp_dir, *options), cwd=prepared_dir, stderr=log, stdout=log, env=ENV,
                                   start_new_session=True)
        deadline = time.time() + 300
        while not (exp_dir / "checkpoint-6.pt").exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # the whole job, DataLoader workers included (they outlive a lone kill)
        process.wait()
    before_kill = logged_batches(log_path.read_text())
    assert (exp_dir / "checkpoint-4.pt").exists()
    resumed = logged_batches(run_train(prepared_dir, exp_dir, *options, "--start-batch", "4").stderr)
    assert min(resumed) == 5
    assert resumed[5] == before_kill[5] and resumed[6] == before_kill[6]


def test_two_torchrun_nodes_train_from_shar_and_rank_0_writes_the_checkpoints(
    prepared_dir: Path, shar_dir: Path, tmp_path: Path
) -> None:
    exp_dir = tmp_path / "exp"
    train = train_command(exp_dir, "--shar-dir", str(shar_dir), "--num-workers", "1")
    nodes = []
    for node_rank in (0, 1):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(node_rank),
                   "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:29591",
                   "--rdzv-id", "shar-test", "--master-addr", "127.0.0.1", *train[1:]]
        log = open(tmp_path / f"node{node_rank}.log", "w")
        nodes.append(subprocess.Popen(command, cwd=prepared_dir, stdout=log, stderr=log, env=ENV))
    codes = [node.wait(timeout=600) for node in nodes]
    assert codes == [0, 0], (tmp_path / "node0.log").read_text()[-3000:] + (tmp_path / "node1.log").read_text()[-3000:]
    assert (exp_dir / "epoch-1.pt").is_file()
    assert sorted(p.name for p in exp_dir.glob("epoch-*.pt")) == ["epoch-1.pt"]
    assert len(list((exp_dir / "log").glob("log-train-*-1"))) == 1
    assert TRAIN_SCRIPT.name in train[1]
