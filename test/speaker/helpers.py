"""What the speaker tests share: the tiny corpus and model options, and running the recipe's scripts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

from conftest import REPO_ROOT

SV_RECIPE = REPO_ROOT / "egs" / "voxceleb" / "SV"
MODEL_DIR = SV_RECIPE / "conformer_am_softmax"
TINY_CORPUS = [
    "--synthetic-speakers", "4", "--synthetic-utterances", "6", "--synthetic-test-speakers", "3",
    "--synthetic-test-utterances", "4", "--valid-per-speaker", "1", "--iden-per-speaker", "1",
]
TINY_MODEL = (
    "--num-layers 1 --encoder-dim 32 --num-heads 2 --feedforward-dim 64 --cnn-module-kernel 3 "
    "--subsampling-channels 8 --embedding-dim 16"
).split()


def run_script(name: str, work_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run conformer_am_softmax/NAME in `work_dir` with one thread; output captured."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(MODEL_DIR / name), *args], cwd=work_dir, capture_output=True, text=True, env=env
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{name} failed:\n{result.stderr[-4000:]}")
    return result


def train_args(exp_dir: Path, *extra: str) -> List[str]:
    return [
        *TINY_MODEL, "--exp-dir", str(exp_dir), "--batch-size", "4", "--num-workers", "0", "--num-threads", "1",
        "--log-interval", "1", "--save-every-n", "2", "--average-period", "1", "--valid-interval", "1000", *extra,
    ]
