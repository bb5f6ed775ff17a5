"""export.py with the CTC head and attention decoders (no transducer): pretrained.pt and cpu_jit.pt carry the
heads, and pretrained.py and jit_pretrained_ctc.py decode with every CTC method to the same text."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List

import pytest
import torch

from model.tiny_models import randomize_  # test/model/tiny_models.py (test/ is on sys.path)

from icefall_lite.export.inputs import pad_batch, wave_features
from icefall_lite.model.options import add_model_arguments, build_model
from icefall_lite.model.transducer import Transducer
from icefall_lite.training.checkpoint import save_checkpoint

from .conftest import TINY_MODEL_OPTIONS, VOCAB_SIZE, write_tokens
from .test_scripts import run_in_process, run_script, selection, transcripts

HEAD_OPTIONS = [
    "--use-transducer", "0", "--use-ctc", "1", "--use-attention-decoder", "1",
    "--attention-decoder-num-layers", "1", "--attention-decoder-dim", "32", "--attention-decoder-attention-dim", "32",
    "--attention-decoder-num-heads", "2", "--attention-decoder-feedforward-dim", "64",
    "--attention-decoder-reverse-weight", "0.3",
]
MODEL_OPTIONS = TINY_MODEL_OPTIONS + HEAD_OPTIONS
RESCORING = ["--beam-size", "4", "--ctc-weight", "0.3"]
METHODS = [
    "ctc-greedy-search", "ctc-prefix-beam-search", "ctc-prefix-beam-search-attention-decoder-rescoring",
    "attention-decoder-rescoring-no-ngram",
]


@pytest.fixture(scope="module")
def heads_model(waves: List[Path]) -> Transducer:
    """The tiny encoder with both attention decoders and a CTC head that emits many different tokens on the test
    waves (random weights; the head's output layer scaled up and centred on the waves' mean encoder frame)."""
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    torch.manual_seed(0)
    model = randomize_(build_model(parser.parse_args(MODEL_OPTIONS), VOCAB_SIZE)).eval()
    with torch.no_grad():
        encoder_out, _ = model.encoder(*pad_batch(wave_features(waves, decode_chunk_len=32)))
        output = model.ctc_output.output
        output.weight.mul_(5.0)
        output.bias.copy_(-output.weight @ encoder_out.mean(dim=(0, 1)))
    return model


@pytest.fixture(scope="module")
def heads_exp_dir(tmp_path_factory: pytest.TempPathFactory, heads_model: Transducer) -> Path:
    """An experiment directory with the heads model as epoch-1.pt, exported as pretrained.pt and cpu_jit.pt."""
    directory = tmp_path_factory.mktemp("heads-exp")
    save_checkpoint(directory / "epoch-1.pt", heads_model, params={"batch_idx_train": 100, "average_period": 100})
    write_tokens(directory / "tokens.txt")
    run_script("export.py", *selection(directory), *MODEL_OPTIONS)
    run_script("export.py", *selection(directory), *MODEL_OPTIONS, "--jit", "1")
    return directory


def test_pretrained_pt_carries_the_heads_and_no_transducer(heads_exp_dir: Path, heads_model: Transducer) -> None:
    state = torch.load(heads_exp_dir / "pretrained.pt", weights_only=True)["model"]
    for name, tensor in heads_model.state_dict().items():
        assert torch.equal(state[name], tensor), name
    prefixes = {name.split(".")[0] for name in state}
    assert {"ctc_output", "attention_decoder", "reverse_attention_decoder"} <= prefixes
    assert not {"decoder", "joiner", "simple_am_proj"} & prefixes


def test_cpu_jit_holds_every_head(heads_exp_dir: Path, heads_model: Transducer) -> None:
    scripted = torch.jit.load(str(heads_exp_dir / "cpu_jit.pt"))
    eager = heads_model
    memory, memory_lens = torch.randn(2, 9, 64), torch.tensor([9, 6])
    hypotheses = [[5, 9, 12], [7]]
    torch.testing.assert_close(scripted.ctc_output(memory), eager.ctc_output(memory))
    for name in ("attention_decoder", "reverse_attention_decoder"):
        expected = getattr(eager, name).sequence_log_probs(memory, memory_lens, hypotheses)
        torch.testing.assert_close(getattr(scripted, name).sequence_log_probs(memory, memory_lens, hypotheses), expected)
    assert not hasattr(scripted, "joiner")


@pytest.mark.parametrize("method", METHODS)
def test_pretrained_and_jit_pretrained_ctc_give_the_same_text(heads_exp_dir: Path, waves: List[Path], method: str) -> None:
    files = [str(path) for path in waves]
    common = ["--tokens", str(heads_exp_dir / "tokens.txt"), "--method", method, *RESCORING]
    pretrained = run_script("pretrained.py", "--checkpoint", str(heads_exp_dir / "pretrained.pt"), *common, *MODEL_OPTIONS, *files)
    jit = run_script(
        "jit_pretrained_ctc.py", "--nn-model-filename", str(heads_exp_dir / "cpu_jit.pt"), *common,
        "--attention-decoder-reverse-weight", "0.3", *files,
    )
    expected = transcripts(pretrained.stdout)
    assert list(expected) == files and all(len(text.split()) >= 2 for text in list(expected.values())[:2])
    assert transcripts(jit.stdout) == expected


def test_rescoring_differs_from_the_prefix_beam_best_somewhere(heads_exp_dir: Path, waves: List[Path]) -> None:
    """The attention decoders change the choice among the n-best: rescoring is not the prefix beam search again."""
    results = {}
    for method in METHODS[1:3]:
        argv = ["--nn-model-filename", str(heads_exp_dir / "cpu_jit.pt"), "--tokens", str(heads_exp_dir / "tokens.txt"),
                "--method", method, *RESCORING, "--attention-decoder-reverse-weight", "0.3", *map(str, waves)]
        results[method] = transcripts(run_script("jit_pretrained_ctc.py", *argv).stdout)
    assert results[METHODS[1]] != results[METHODS[2]]


def test_transducer_methods_name_the_missing_head(heads_exp_dir: Path, waves: List[Path], capsys: pytest.CaptureFixture) -> None:
    argv = ["--nn-model-filename", str(heads_exp_dir / "cpu_jit.pt"), "--tokens", str(heads_exp_dir / "tokens.txt"),
            "--method", "greedy_search", str(waves[0])]
    assert run_in_process("jit_pretrained.py", argv) == 1
    assert "--use-transducer 1" in capsys.readouterr().err


def test_ctc_methods_on_a_transducer_only_model_name_the_missing_head(
    exp_dir: Path, waves: List[Path], capsys: pytest.CaptureFixture
) -> None:
    run_script("export.py", *selection(exp_dir), *TINY_MODEL_OPTIONS, "--jit", "1")
    argv = ["--nn-model-filename", str(exp_dir / "cpu_jit.pt"), "--tokens", str(exp_dir / "tokens.txt"), str(waves[0])]
    assert run_in_process("jit_pretrained_ctc.py", argv) == 1
    assert "--use-ctc 1" in capsys.readouterr().err
