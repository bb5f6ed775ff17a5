"""A tiny talkative transducer, its checkpoint in an experiment directory, a token table and wave files, for the
export tests; one torch thread (many small operations on a shared machine)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

import numpy as np
import pytest
import soundfile
import torch

from model.tiny_models import randomize_  # test/model/tiny_models.py (test/ is on sys.path)

from icefall_lite.model.options import add_model_arguments, build_model
from icefall_lite.model.transducer import Transducer
from icefall_lite.training.checkpoint import save_checkpoint

TINY_MODEL_OPTIONS = [
    "--num-encoder-layers", "1,1,1,1,1",
    "--encoder-dims", "64,64,64,64,64",
    "--attention-dims", "32,32,32,32,32",
    "--feedforward-dims", "64,64,64,64,64",
    "--encoder-unmasked-dims", "32,32,32,32,32",
    "--nhead", "2,2,2,2,2",
    "--decoder-dim", "64",
    "--joiner-dim", "64",
]
VOCAB_SIZE = 80
SAMPLE_RATE = 16000


def talkative_model(vocab_size: int = VOCAB_SIZE, seed: int = 0) -> Transducer:
    """The tiny model of TINY_MODEL_OPTIONS with random weights of order one and a joiner scaled up so that it
    emits a token on about half of the frames, with clear margins between the best logits."""
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    torch.manual_seed(seed)
    model = randomize_(build_model(parser.parse_args(TINY_MODEL_OPTIONS), vocab_size)).eval()
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(3.0)
        model.joiner.output_linear.bias.zero_()
        model.joiner.output_linear.bias[0] = 4.5
    return model


def write_tokens(path: Path, vocab_size: int = VOCAB_SIZE) -> Path:
    """A token table like prepare.sh's: <blk>, <sos/eos>, <unk>, then word-initial and inner pieces."""
    pieces = ["<blk>", "<sos/eos>", "<unk>"] + [("\u2581" if i % 3 == 0 else "") + f"P{i}" for i in range(vocab_size - 3)]
    path.write_text("".join(f"{piece} {i}\n" for i, piece in enumerate(pieces)))
    return path


def write_wave(path: Path, seconds: float, seed: int, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> Path:
    """Speech-like audio: noise bursts under a slow random envelope, with silent gaps."""
    rng = np.random.default_rng(seed)
    num_samples = int(seconds * sample_rate)
    envelope = np.repeat(rng.uniform(0.0, 0.3, size=num_samples // 1600 + 1), 1600)[:num_samples]
    samples = (rng.standard_normal((num_samples, channels)) * envelope[:, None]).clip(-1, 1)
    soundfile.write(str(path), samples.astype(np.float32), sample_rate, subtype="PCM_16")
    return path


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> Transducer:
    return talkative_model()


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory: pytest.TempPathFactory, model: Transducer) -> Path:
    """An experiment directory with the model as epoch-1.pt and a tokens.txt."""
    directory = tmp_path_factory.mktemp("exp")
    save_checkpoint(directory / "epoch-1.pt", model, params={"batch_idx_train": 100, "average_period": 100})
    write_tokens(directory / "tokens.txt")
    return directory


@pytest.fixture(scope="module")
def waves(tmp_path_factory: pytest.TempPathFactory) -> List[Path]:
    directory = tmp_path_factory.mktemp("waves")
    return [write_wave(directory / f"utt{i}.wav", seconds, seed=i) for i, seconds in enumerate([1.3, 2.05, 0.4])]
