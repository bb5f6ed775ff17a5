"""A tiny synthesized VoxCeleb-format corpus prepared once per session by the speaker recipe's prepare.sh, and a
tiny model trained on it for two epochs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_prepare

from .helpers import SV_RECIPE, TINY_CORPUS, run_script, train_args


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def speaker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """download/VoxCeleb1 and data/ after prepare.sh stages 0-2 on 4 + 3 speakers."""
    work_dir = tmp_path_factory.mktemp("voxceleb")
    run_prepare(work_dir, *TINY_CORPUS, "--nj", "2", script=SV_RECIPE / "prepare.sh")
    return work_dir


@pytest.fixture(scope="session")
def trained_exp(speaker_dir: Path) -> Path:
    """EXP with epoch-1.pt and epoch-2.pt of the tiny model (4 batches per epoch)."""
    exp_dir = speaker_dir / "exp-session"
    run_script("train.py", speaker_dir, *train_args(exp_dir, "--num-epochs", "2"))
    return exp_dir
