#!/usr/bin/env python3
"""Real-time factor of every decoding method of one model: the transducer's searches, CTC greedy and prefix beam
search, and attention rescoring, on the same encoder output (simulated streaming, as decode.py and ctc_decode.py).

The encoder runs once over the cuts (timed); each method then decodes its output (timed); a method's RTF is
(encoder time + its search time) / audio duration. Random weights by default (speed does not need a trained
model; a search's work depends on its beam, not on the weights), or --checkpoint with a "model" entry.

Usage (from egs/librispeech/ASR, after prepare.sh; every head on; 1 thread):
  # the demo model (run.sh's options, local/demo_options.sh) with the demo attention decoders:
  ./local/bench_decoding_rtf.py --vocab-size 1000 --use-ctc 1 --use-attention-decoder 1 \\
      --attention-decoder-reverse-weight 0.3 --attention-decoder-num-layers 2 --attention-decoder-dim 128 \\
      --attention-decoder-attention-dim 128 --attention-decoder-num-heads 4 --attention-decoder-feedforward-dim 512 \\
      --num-encoder-layers 1,1,1,1,1 --feedforward-dims 256,256,256,256,256 --nhead 4,4,4,4,4 \\
      --encoder-dims 128,128,128,128,128 --attention-dims 64,64,64,64,64 --encoder-unmasked-dims 128,128,128,128,128 \\
      --decoder-dim 128 --joiner-dim 128
  # the default 70 M configuration with icefall's default attention decoder:
  ./local/bench_decoding_rtf.py --vocab-size 500 --use-ctc 1 --use-attention-decoder 1 --attention-decoder-reverse-weight 0.3
"""

import argparse
import logging
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
from lhotse import CutSet
from torch import Tensor

from icefall_lite.benchmarks import cpu_description
from icefall_lite.cli import setup_logging
from icefall_lite.decoding.ctc_methods import CTC_DECODING_METHODS, CtcSearchOptions, make_ctc_search
from icefall_lite.decoding.features import append_tail_padding
from icefall_lite.decoding.methods import SearchOptions, make_search
from icefall_lite.model.options import add_model_arguments, build_model
from icefall_lite.model.transducer import Transducer
from icefall_lite.training.checkpoint import load_checkpoint

TRANSDUCER_METHODS = ("greedy_search", "modified_beam_search", "fast_beam_search")
FRAMES_PER_SECOND = 100
Batch = Tuple[Tensor, Tensor]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuts", type=Path, default=Path("data/fbank/librispeech_cuts_test-clean.jsonl.gz"))
    parser.add_argument("--num-cuts", type=int, default=100, help="the first N cuts of --cuts (default 100)")
    parser.add_argument("--max-duration", type=float, default=200.0, help="seconds of audio per batch (default 200)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vocab-size", type=int, default=500)
    parser.add_argument("--checkpoint", type=Path, help="weights to load ('model' entry); default random")
    parser.add_argument("--beam-size", type=int, default=4, help="modified_beam_search (default 4)")
    parser.add_argument("--ctc-beam-size", type=int, default=10, help="CTC prefix beam search and n-best (default 10)")
    add_model_arguments(parser)
    return parser


def feature_batches(cuts: CutSet, max_duration: float) -> Tuple[List[Batch], float]:
    """Cuts by duration into batches of at most max_duration seconds: [(features (N, T, 80), lengths (N,))] and
    the total audio seconds."""
    batches: List[Batch] = []
    pending: List[Tensor] = []
    total = 0.0
    for cut in sorted(cuts, key=lambda c: c.duration):
        if pending and (len(pending) + 1) * cut.duration > max_duration:
            batches.append(pad(pending))
            pending = []
        pending.append(torch.from_numpy(cut.load_features()))
        total += cut.num_frames / FRAMES_PER_SECOND
    if pending:
        batches.append(pad(pending))
    return batches, total


def pad(features: List[Tensor]) -> Batch:
    lengths = torch.tensor([f.size(0) for f in features])
    return torch.nn.utils.rnn.pad_sequence(features, batch_first=True), lengths


def timed(function: Callable[[], object]) -> Tuple[object, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def encode(model: Transducer, batches: List[Batch]) -> Tuple[List[Batch], float]:
    """Each batch through the chunk-masked encoder after decode.py's tail padding: [(encoder_out, lens)], seconds."""
    outputs: List[Batch] = []
    seconds = 0.0
    chunk_len = 2 * model.encoder.decode_chunk_size
    for features, lengths in batches:
        output, elapsed = timed(lambda: model.encoder(*append_tail_padding(features, lengths, chunk_len)))
        outputs.append(output)
        seconds += elapsed
    return outputs, seconds


def methods_of(model: Transducer, args: argparse.Namespace) -> Dict[str, object]:
    """Every method the model's heads support, labelled with its beam, and its search object."""
    searches: Dict[str, object] = {}
    if hasattr(model, "joiner"):
        options = SearchOptions(beam_size=args.beam_size)
        for method in TRANSDUCER_METHODS:
            label = f"{method} ({args.beam_size})" if method == "modified_beam_search" else method
            searches[label] = make_search(method, model, options)
    if hasattr(model, "ctc_output"):
        options = CtcSearchOptions(args.ctc_beam_size, reverse_weight=args.attention_decoder_reverse_weight)
        usable = CTC_DECODING_METHODS if hasattr(model, "attention_decoder") else CTC_DECODING_METHODS[:2]
        for method in usable:
            label = method if method == "ctc-greedy-search" else f"{method} ({args.ctc_beam_size})"
            searches[label] = make_ctc_search(method, model, options)
    return searches


@torch.no_grad()
def main() -> None:
    args = get_parser().parse_args()
    setup_logging()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args, vocab_size=args.vocab_size).eval()
    if args.checkpoint:
        load_checkpoint(args.checkpoint, model)
    num_parameters = sum(p.numel() for p in model.parameters())
    batches, audio_seconds = feature_batches(CutSet.from_file(args.cuts).subset(first=args.num_cuts), args.max_duration)
    logging.info(f"{num_parameters:,} parameters; {len(batches)} batches, {audio_seconds:.0f} s of audio")
    encoded, encoder_seconds = encode(model, batches)
    lines = [
        f"CPU: {cpu_description()}; {args.threads} thread(s); {num_parameters:,} parameters; "
        f"{audio_seconds:.0f} s of audio; encoder RTF {encoder_seconds / audio_seconds:.4f}",
        "", "| method | search RTF | RTF (encoder + search) |", "|---|---|---|",
    ]
    for label, search in methods_of(model, args).items():
        _, search_seconds = timed(lambda: [search.decode(out, lens) for out, lens in encoded])
        total = (encoder_seconds + search_seconds) / audio_seconds
        lines.append(f"| {label} | {search_seconds / audio_seconds:.4f} | {total:.4f} |")
        logging.info(lines[-1])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
