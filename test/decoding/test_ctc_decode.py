"""ctc_decode.py's methods on a tiny random model with every head, attention rescoring's choice, and decode.py's
transducer methods on the same model."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import pytest
import torch

from icefall_lite.decoding.ctc_methods import (
    CTC_DECODING_METHODS,
    AttentionRescoring,
    CtcSearchOptions,
    attention_scores,
    best_by_combined_score,
)
from icefall_lite.decoding.ctc_search import ctc_greedy_search, ctc_prefix_beam_search
from icefall_lite.decoding.options import load_bpe_model
from icefall_lite.decoding.wer import read_recogs, read_wer_summary
from icefall_lite.model.options import add_model_arguments, build_model
from icefall_lite.model.transducer import MissingHeadError
from icefall_lite.training.checkpoint import save_checkpoint

from .helpers import randomize_
from .test_scripts import BPE_MODEL, TINY_MODEL, exact_fbank_manifest, hypotheses
from .test_scripts import run as run_with_tiny_model

HEADS = (
    "--use-ctc 1 --use-attention-decoder 1 --attention-decoder-reverse-weight 0.3 --attention-decoder-num-layers 1 "
    "--attention-decoder-dim 32 --attention-decoder-attention-dim 32 --attention-decoder-num-heads 2 "
    "--attention-decoder-feedforward-dim 32"
).split()


def tiny_model_with_heads(*extra: str) -> torch.nn.Module:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    torch.manual_seed(0)
    sp_size = load_bpe_model(Path(BPE_MODEL)).get_piece_size()
    return randomize_(build_model(parser.parse_args(TINY_MODEL + HEADS + list(extra)), vocab_size=sp_size)).eval()


@pytest.fixture
def heads_exp_dir(in_prepared_dir: None, tmp_path: Path) -> Path:
    model = tiny_model_with_heads()
    for epoch in (1, 2):
        save_checkpoint(tmp_path / f"epoch-{epoch}.pt", model, copy.deepcopy(model),
                        params={"batch_idx_train": 100 * epoch, "average_period": 100})
    return tmp_path


def run(script: str, exp_dir: Path, *options: str) -> None:
    """test_scripts.run with the head options of tiny_model_with_heads."""
    run_with_tiny_model(script, exp_dir, *HEADS, *options)


def test_every_ctc_method_and_the_transducer_search_decode_a_model_with_all_heads(heads_exp_dir: Path) -> None:
    for method in CTC_DECODING_METHODS:
        run("ctc_decode", heads_exp_dir, "--decoding-method", method, "--beam-size", "3", "--use-averaged-model", "0")
        (summary,) = (heads_exp_dir / method).glob("wer-summary-test-clean-*.txt")
        assert list(read_wer_summary(summary)) and method in next(iter(read_wer_summary(summary)))
        (recogs,) = (heads_exp_dir / method).glob("recogs-test-other-*.txt")
        assert len(read_recogs(recogs)) == 8
    run("decode", heads_exp_dir, "--decoding-method", "greedy_search", "--use-averaged-model", "0")
    assert list((heads_exp_dir / "greedy_search").glob("recogs-test-clean-*.txt"))


def test_streaming_ctc_greedy_search_equals_ctc_decode_greedy(heads_exp_dir: Path, tmp_path: Path) -> None:
    manifest = exact_fbank_manifest(tmp_path)
    run("ctc_decode", heads_exp_dir, "--cuts", str(manifest), "--decoding-method", "ctc-greedy-search")
    run("streaming_decode", heads_exp_dir, "--cuts", str(manifest), "--decoding-method", "ctc_greedy_search",
        "--num-decode-streams", "3")
    (simulated,) = (heads_exp_dir / "ctc-greedy-search").glob("recogs-exact-test-clean-*.txt")
    (streaming,) = (heads_exp_dir / "streaming" / "ctc_greedy_search").glob("recogs-exact-test-clean-*.txt")
    simulated_hyps = hypotheses(simulated)
    assert len(simulated_hyps) == 8 and sum(map(len, simulated_hyps)) > 20
    assert hypotheses(streaming) == simulated_hyps


def test_prefix_beam_search_with_beam_one_and_a_peaked_model_equals_greedy() -> None:
    log_probs = (8.0 * torch.randn(2, 30, 12, generator=torch.Generator().manual_seed(0))).log_softmax(-1)
    lengths = torch.tensor([30, 21])
    beam = [entries[0][0] for entries in ctc_prefix_beam_search(log_probs, lengths, beam_size=1)]
    assert beam == ctc_greedy_search(log_probs, lengths)


def test_best_by_combined_score_weighs_ctc_and_attention() -> None:
    hypotheses = [[1], [2], [3], [4]]
    rows = [0, 0, 1, 1]
    ctc = torch.tensor([-1.0, -3.0, -2.0, -2.5])
    attention = torch.tensor([-5.0, -2.0, -1.0, -1.0])
    assert best_by_combined_score(rows, ctc, attention, 0.3, 3, hypotheses) == [[2], [3], []]
    assert best_by_combined_score(rows, ctc, attention, 3.0, 3, hypotheses) == [[1], [3], []]


def test_rescoring_returns_the_best_combined_hypothesis_of_the_nbest(in_prepared_dir: None) -> None:
    model = tiny_model_with_heads()
    encoder_out = torch.randn(2, 25, 64, generator=torch.Generator().manual_seed(1))
    encoder_lens = torch.tensor([25, 18])
    options = CtcSearchOptions(beam_size=4, ctc_weight=0.5, reverse_weight=0.3)
    with torch.no_grad():
        chosen = AttentionRescoring(model, options, scaled_nbest=False).decode(encoder_out, encoder_lens)
        nbest = ctc_prefix_beam_search(model.ctc_output(encoder_out), encoder_lens, 4)
        for n, entries in enumerate(nbest):
            hyps = [tokens for tokens, _ in entries]
            ctc = torch.tensor([score for _, score in entries])
            attention = attention_scores(model, encoder_out, encoder_lens, hyps, [n] * len(hyps), 0.3)
            assert chosen[n] == hyps[int((0.5 * ctc + attention).argmax())]


def test_rescoring_needs_the_heads(in_prepared_dir: None) -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    ctc_only = build_model(parser.parse_args(TINY_MODEL + ["--use-transducer", "0", "--use-ctc", "1"]), vocab_size=80)
    with pytest.raises(MissingHeadError, match="--use-attention-decoder 1"):
        AttentionRescoring(ctc_only, CtcSearchOptions(), scaled_nbest=False)
    no_reverse = tiny_model_with_heads("--attention-decoder-reverse-weight", "0")
    with pytest.raises(ValueError, match="right-to-left decoder"):
        AttentionRescoring(no_reverse, CtcSearchOptions(reverse_weight=0.5), scaled_nbest=False)
