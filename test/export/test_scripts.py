"""The recipe's export and *_pretrained.py scripts end to end on a tiny checkpoint, and their error messages."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from icefall_lite.model.transducer import Transducer
from icefall_lite.training.checkpoint import save_checkpoint

from .conftest import TINY_MODEL_OPTIONS, write_tokens, write_wave

RECIPE_DIR = Path(__file__).resolve().parents[2] / "egs" / "librispeech" / "ASR" / "pruned_transducer_stateless7_streaming"


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(RECIPE_DIR / script), *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def run_in_process(script: str, argv: List[str]) -> int:
    """The script's exit code as ``sys.exit(run_script(main))`` would give it (errors are logged to stderr)."""
    namespace = runpy.run_path(str(RECIPE_DIR / script))
    return namespace["run_script"](lambda: namespace["main"](argv))


def selection(exp_dir: Path) -> List[str]:
    return ["--exp-dir", str(exp_dir), "--epoch", "1", "--avg", "1", "--use-averaged-model", "0", "--tokens", str(exp_dir / "tokens.txt")]


def transcripts(output: str) -> Dict[str, str]:
    return dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in output.splitlines())


@pytest.fixture(scope="module")
def exported(exp_dir: Path) -> Path:
    """exp_dir after export.py (both kinds), jit_trace_export.py and export-onnx.py."""
    run_script("export.py", *selection(exp_dir), *TINY_MODEL_OPTIONS)
    run_script("export.py", *selection(exp_dir), *TINY_MODEL_OPTIONS, "--jit", "1")
    run_script("jit_trace_export.py", *selection(exp_dir), *TINY_MODEL_OPTIONS)
    run_script("export-onnx.py", *selection(exp_dir), *TINY_MODEL_OPTIONS)
    return exp_dir


def test_export_scripts_write_their_files(exported: Path, model: Transducer) -> None:
    pretrained = torch.load(exported / "pretrained.pt", weights_only=True)
    assert list(pretrained) == ["model"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(pretrained["model"][name], tensor), name
    expected = ["cpu_jit.pt", "encoder_jit_trace.pt", "decoder_jit_trace.pt", "joiner_jit_trace.pt"] + [
        f"{part}-epoch-1-avg-1{kind}.onnx" for part in ("encoder", "decoder", "joiner") for kind in ("", ".int8")
    ]
    assert all((exported / name).is_file() for name in expected)


def test_pretrained_jit_pretrained_and_onnx_pretrained_give_the_same_text(exported: Path, waves: List[Path]) -> None:
    files = [str(path) for path in waves]
    tokens = ["--tokens", str(exported / "tokens.txt")]
    pretrained = run_script("pretrained.py", "--checkpoint", str(exported / "pretrained.pt"), *tokens, *TINY_MODEL_OPTIONS, *files)
    jit = run_script("jit_pretrained.py", "--nn-model-filename", str(exported / "cpu_jit.pt"), *tokens, *files)
    onnx = run_script(
        "onnx_pretrained.py",
        *[f"--{part}-model-filename={exported / f'{part}-epoch-1-avg-1.onnx'}" for part in ("encoder", "decoder", "joiner")],
        *tokens, *files,
    )
    expected = transcripts(pretrained.stdout)
    assert list(expected) == files and all(len(text.split()) >= 2 for text in list(expected.values())[:2])
    assert transcripts(jit.stdout) == expected
    assert transcripts(onnx.stdout) == expected


def test_pretrained_modified_beam_search_runs_on_the_jit_model(exported: Path, waves: List[Path]) -> None:
    common = ["--tokens", str(exported / "tokens.txt"), "--method", "modified_beam_search", str(waves[0])]
    result = run_script("jit_pretrained.py", "--nn-model-filename", str(exported / "cpu_jit.pt"), *common)
    assert transcripts(result.stdout)[str(waves[0])]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--epoch", "5", "--avg", "1", "--use-averaged-model", "0"], "epoch-5.pt"),
        (["--epoch", "1", "--avg", "2", "--use-averaged-model", "0"], "would need epoch-0.pt"),
        (["--epoch", "1", "--avg", "1", "--use-averaged-model", "1"], "would need epoch-0.pt"),
    ],
    ids=["missing-epoch", "avg-too-large", "avg-without-start"],
)
def test_export_names_the_missing_checkpoints(
    exp_dir: Path, options: List[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--exp-dir", str(exp_dir), "--tokens", str(exp_dir / "tokens.txt"), *options, *TINY_MODEL_OPTIONS]
    assert run_in_process("export-onnx.py", argv) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: write_wave(p, 1.0, seed=0, sample_rate=8000), "sample rate 8000 Hz"),
        (lambda p: write_wave(p, 1.0, seed=0, channels=2), "2 channels"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage") and p, "cannot read audio file"),
    ],
    ids=["8kHz", "stereo", "corrupt"],
)
def test_pretrained_scripts_name_the_bad_wave_file(
    exported: Path, waves: List[Path], tmp_path: Path, make, message: str, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.wav"
    make(bad)
    files = [str(waves[0]), str(bad)]
    tokens = ["--tokens", str(exported / "tokens.txt")]
    assert run_in_process("pretrained.py", ["--checkpoint", str(exported / "pretrained.pt"), *tokens, *TINY_MODEL_OPTIONS, *files]) == 1
    assert run_in_process("jit_pretrained.py", ["--nn-model-filename", str(exported / "cpu_jit.pt"), *tokens, *files]) == 1
    errors = capsys.readouterr().err
    assert errors.count(str(bad)) >= 2 and message in errors


def test_pretrained_scripts_name_missing_model_files(exported: Path, waves: List[Path], capsys: pytest.CaptureFixture) -> None:
    tokens = ["--tokens", str(exported / "tokens.txt"), str(waves[0])]
    missing = exported / "nothing.pt"
    assert run_in_process("pretrained.py", ["--checkpoint", str(missing), *tokens, *TINY_MODEL_OPTIONS]) == 1
    assert run_in_process("jit_pretrained.py", ["--nn-model-filename", str(missing), *tokens]) == 1
    onnx = [f"--{part}-model-filename={exported / 'nothing.onnx'}" for part in ("encoder", "decoder", "joiner")]
    assert run_in_process("onnx_pretrained.py", [*onnx, *tokens]) == 1
    errors = capsys.readouterr().err
    assert errors.count(str(missing)) == 2 and str(exported / "nothing.onnx") in errors


def test_export_onnx_with_the_averaged_model_names_its_files(model: Transducer, tmp_path: Path) -> None:
    for epoch in (1, 2):
        params = {"batch_idx_train": 100 * epoch, "average_period": 100}
        save_checkpoint(tmp_path / f"epoch-{epoch}.pt", model, model_avg=model, params=params)
    write_tokens(tmp_path / "tokens.txt")
    argv = ["--exp-dir", str(tmp_path), "--epoch", "2", "--avg", "1", "--tokens", str(tmp_path / "tokens.txt"), *TINY_MODEL_OPTIONS]
    assert run_in_process("export-onnx.py", argv) == 0
    for part in ("encoder", "decoder", "joiner"):
        assert (tmp_path / f"{part}-epoch-2-avg-1-with-averaged-model.onnx").is_file()
        assert (tmp_path / f"{part}-epoch-2-avg-1-with-averaged-model.int8.onnx").is_file()
