"""icefall's checkpoint files in the recipe's scripts: epoch files converted to icefall's layout decode to the
same hypotheses, and an icefall pretrained.pt linked as epoch-9999.pt loads in decode.py, streaming_decode.py,
export.py and pretrained.py, as icefall's docs use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PosixPath
from typing import List

import torch

from icefall_lite.training.checkpoint import read_checkpoint
from icefall_lite.training.icefall_format import to_icefall_state_dict

from .test_scripts import BPE_MODEL, RECIPE, TINY_MODEL, exp_dir, hypotheses, load_script  # noqa: F401 (exp_dir: fixture)

CONVERTER = RECIPE.parent / "local" / "convert_checkpoint.py"


def greedy_hypotheses(directory: Path, epoch: int, averaged: bool) -> List[List[str]]:
    options = ["--epoch", str(epoch), "--avg", "1", "--use-averaged-model", str(int(averaged)), "--exp-dir", str(directory),
               "--bpe-model", BPE_MODEL, "--num-threads", "1", "--cuts", "data/fbank/librispeech_cuts_test-clean.jsonl.gz"]
    load_script("decode").main(options + TINY_MODEL)
    suffix = f"epoch-{epoch}-avg-1-streaming-chunk-size-32-context-2-max-sym-per-frame-1"
    suffix += "-use-averaged-model" if averaged else ""
    return hypotheses(directory / "greedy_search" / f"recogs-test-clean-{suffix}.txt")


def test_epoch_files_in_icefalls_layout_decode_to_the_same_hypotheses(exp_dir: Path, tmp_path: Path) -> None:
    icefall_dir = tmp_path / "icefall-exp"
    icefall_dir.mkdir()
    for epoch in (1, 2):
        subprocess.run([sys.executable, str(CONVERTER), "--to", "icefall", str(exp_dir / f"epoch-{epoch}.pt"),
                        str(icefall_dir / f"epoch-{epoch}.pt")], check=True, capture_output=True)
        converted = torch.load(icefall_dir / f"epoch-{epoch}.pt", weights_only=True)
        assert any(key.endswith(".count") for key in converted["model"])
        converted["exp_dir"] = PosixPath(icefall_dir)  # as icefall's params hold it
        torch.save(converted, icefall_dir / f"epoch-{epoch}.pt")
    expected = greedy_hypotheses(exp_dir, 2, averaged=True)
    assert sum(map(len, expected)) > 20
    assert greedy_hypotheses(icefall_dir, 2, averaged=True) == expected


def test_icefall_pretrained_pt_loads_in_every_script(exp_dir: Path, tmp_path: Path) -> None:
    icefall_dir = tmp_path / "icefall-pretrained"
    icefall_dir.mkdir()
    state = read_checkpoint(exp_dir / "epoch-2.pt")["model"]
    torch.save({"model": to_icefall_state_dict(state)}, icefall_dir / "pretrained.pt")
    (icefall_dir / "epoch-9999.pt").symlink_to("pretrained.pt")
    expected = greedy_hypotheses(exp_dir, 2, averaged=False)
    assert greedy_hypotheses(icefall_dir, 9999, averaged=False) == expected

    selection = ["--epoch", "9999", "--avg", "1", "--use-averaged-model", "0", "--exp-dir", str(icefall_dir)]
    load_script("streaming_decode").main(
        selection + ["--bpe-model", BPE_MODEL, "--num-threads", "1", "--num-decode-streams", "4"] + TINY_MODEL
    )
    tokens = Path("data/lang_bpe_80/tokens.txt")
    load_script("export").main(selection + ["--tokens", str(tokens), "--jit", "1"] + TINY_MODEL)
    assert (icefall_dir / "cpu_jit.pt").is_file()
    wave = next(Path("download/LibriSpeech/test-clean").rglob("*.flac"))
    result = subprocess.run(
        [sys.executable, str(RECIPE / "pretrained.py"), "--checkpoint", str(icefall_dir / "pretrained.pt"),
         "--tokens", str(tokens), *TINY_MODEL, str(wave)], capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"{wave}: ")
