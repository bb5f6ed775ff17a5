"""Shared fixtures: a tiny synthetic corpus prepared once per test session by the real prepare.sh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO_ROOT / "egs" / "librispeech" / "ASR"
TINY_VOCAB_SIZE = 80
TINY_SYNTHETIC_HOURS = "0.03"


def run_prepare(
    work_dir: Path,
    *args: str,
    check: bool = True,
    env: dict | None = None,
    script: Path = RECIPE_DIR / "prepare.sh",
) -> subprocess.CompletedProcess:
    """Run `script` (the recipe's prepare.sh) in `work_dir`; return the finished process, output captured."""
    return subprocess.run(
        [str(script), *args],
        cwd=work_dir,
        capture_output=True,
        text=True,
        check=check,
        env=env if env is not None else {**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding download/ and data/ after stages 0-5 on a tiny synthetic corpus."""
    work_dir = tmp_path_factory.mktemp("recipe")
    result = run_prepare(
        work_dir,
        "--synthetic-hours", TINY_SYNTHETIC_HOURS,
        "--vocab-size", str(TINY_VOCAB_SIZE),
        "--stage", "0", "--stop-stage", "5",
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise RuntimeError(f"prepare.sh failed with exit code {result.returncode}")
    return work_dir


@pytest.fixture
def in_prepared_dir(prepared_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Manifests store paths relative to the directory prepare.sh ran in (as in icefall): run from there."""
    monkeypatch.chdir(prepared_dir)
