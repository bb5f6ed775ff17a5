"""Command-line pieces of the export scripts (export.py, jit_trace_export.py, export-onnx.py) and of the
``*_pretrained.py`` scripts that decode wave files.

Usage::

    parser = argparse.ArgumentParser(); add_export_arguments(parser, epoch=30, avg=9)
    args, model = parse_and_load(parser, argv)        # weights selected by --epoch/--iter/--avg/...

    add_search_arguments(parser)                      # *_pretrained.py: --tokens, --method, ..., wave files
    args, table = parse_for_decoding(parser, argv)
    print_search_results(args, model, encoder_out, encoder_lens, table)
"""

import argparse
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.cli import setup_logging
from icefall_lite.decoding.checkpoint_selection import add_checkpoint_arguments, load_model_for_inference
from icefall_lite.decoding.ctc_methods import (
    CTC_DECODING_METHODS, RESCORING_METHODS, CtcSearchOptions, add_rescoring_arguments, make_ctc_search,
)
from icefall_lite.decoding.methods import DECODING_METHODS, SearchOptions, make_search
from icefall_lite.decoding.search import TransducerSearch
from icefall_lite.export.torchscript import transcribe_waves
from icefall_lite.export.inputs import read_tokens, symbol_id, tokens_to_text, vocab_size
from icefall_lite.model.options import add_model_arguments, build_model
from icefall_lite.model.transducer import Transducer

ALL_METHODS = DECODING_METHODS + CTC_DECODING_METHODS
DEFAULT_TOKENS = Path("data/lang_bpe_500/tokens.txt")
BLANK, UNK = "<blk>", "<unk>"


def add_tokens_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tokens", type=Path, default=DEFAULT_TOKENS, help=f"token table, 'symbol id' per line (default {DEFAULT_TOKENS})"
    )


def add_export_arguments(parser: argparse.ArgumentParser, epoch: int, avg: int) -> None:
    """Checkpoint selection (``--epoch --iter --avg --use-averaged-model --exp-dir``), ``--tokens`` and the
    model options (``--decode-chunk-len`` fixes the streaming state shapes of the export)."""
    add_checkpoint_arguments(parser, epoch=epoch, avg=avg)
    add_tokens_argument(parser)
    add_model_arguments(parser)


def build_model_for_tokens(args: argparse.Namespace, tokens: Path) -> Transducer:
    """A fresh model of the options' shape, with one output class per token of ``tokens``."""
    table = read_tokens(tokens)
    blank_id = symbol_id(table, BLANK)
    return build_model(args, vocab_size=vocab_size(table), blank_id=0 if blank_id is None else blank_id)


def parse_and_load(parser: argparse.ArgumentParser, argv: Optional[List[str]]) -> Tuple[argparse.Namespace, Transducer]:
    """What an export script does first: parse the options, log to stderr, and load the model with the weights
    the checkpoint options select (on the CPU, in eval mode)."""
    args = parser.parse_args(argv)
    setup_logging()
    model = load_model_for_inference(args, build_model_for_tokens(args, args.tokens))
    logging.info(f"Number of model parameters: {sum(p.numel() for p in model.parameters())}")
    return args, model


def add_search_arguments(
    parser: argparse.ArgumentParser, methods: Sequence[str] = ALL_METHODS, default_method: str = "greedy_search",
    reverse_weight_option: bool = True,
) -> None:
    """``--tokens``, ``--method`` (one of `methods`) and the searches' options (pretrained.py's defaults), and the
    wave files to decode. `reverse_weight_option` False leaves ``--attention-decoder-reverse-weight`` to the model
    options (pretrained.py), which then serve both."""
    add_tokens_argument(parser)
    group = parser.add_argument_group("search")
    group.add_argument("--method", choices=methods, default=default_method, help=f"search (default {default_method})")
    group.add_argument("--beam-size", type=int, default=4,
                       help="beam_search, modified_beam_search, CTC prefix beam search and its n-best (default 4)")
    if any(method in DECODING_METHODS for method in methods):
        group.add_argument("--max-sym-per-frame", type=int, default=1, help="greedy_search: symbols per frame (default 1)")
        group.add_argument("--beam", type=float, default=4.0, help="fast_beam_search: log-prob beam (default 4)")
        group.add_argument("--max-contexts", type=int, default=4, help="fast_beam_search: contexts per frame (default 4)")
        group.add_argument("--max-states", type=int, default=8, help="fast_beam_search: states per frame (default 8)")
    if any(method in RESCORING_METHODS for method in methods):
        add_rescoring_arguments(group, reverse_weight_option)
    parser.add_argument("sound_files", type=Path, nargs="+", help="16 kHz mono audio files (wav, flac, ...)")


def parse_for_decoding(parser: argparse.ArgumentParser, argv: Optional[List[str]]) -> Tuple[argparse.Namespace, Dict[int, str]]:
    """What a ``*_pretrained.py`` script does first: parse the options, log to stderr, read ``--tokens``."""
    args = parser.parse_args(argv)
    setup_logging()
    return args, read_tokens(args.tokens)


def search_from_args(args: argparse.Namespace, model: nn.Module, table: Dict[int, str]) -> TransducerSearch:
    """The ``--method`` search for ``model`` (a Transducer or its TorchScript version); ``<unk>`` is never emitted
    by the transducer's searches."""
    if args.method in CTC_DECODING_METHODS:
        return make_ctc_search(args.method, model, CtcSearchOptions.from_args(args))
    options = SearchOptions(
        max_sym_per_frame=args.max_sym_per_frame,
        beam_size=args.beam_size,
        beam=args.beam,
        max_contexts=args.max_contexts,
        max_states=args.max_states,
    )
    return make_search(args.method, model, options, unk_id=symbol_id(table, UNK))


def print_search_results(
    args: argparse.Namespace, model: nn.Module, encoder_out: Tensor, encoder_lens: Tensor, table: Dict[int, str]
) -> None:
    """Decode ``args.sound_files``' encoder output (N, T, encoder_dim) with ``--method`` and print their text."""
    token_ids = search_from_args(args, model, table).decode(encoder_out, encoder_lens)
    print_transcripts(args.sound_files, token_ids, table)


@torch.no_grad()
def transcribe_with_cpu_jit(parser: argparse.ArgumentParser, argv: Optional[List[str]]) -> None:
    """jit_pretrained.py's and jit_pretrained_ctc.py's main: parse (``--nn-model-filename`` and the search
    arguments), encode the wave files with cpu_jit.pt's streaming encoder, decode them and print their text."""
    args, table = parse_for_decoding(parser, argv)
    model, encoder_out, encoder_lens = transcribe_waves(args.nn_model_filename, args.sound_files)
    print_search_results(args, model, encoder_out, encoder_lens, table)


def print_transcripts(paths: List[Path], token_ids: List[List[int]], table: Dict[int, str]) -> None:
    """One ``path: text`` line per file on stdout."""
    for path, tokens in zip(paths, token_ids):
        print(f"{path}: {tokens_to_text(tokens, table)}", flush=True)

