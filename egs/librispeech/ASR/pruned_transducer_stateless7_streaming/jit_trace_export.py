#!/usr/bin/env python3
"""Export the encoder, decoder and joiner as three traced TorchScript files (torch.jit.trace).

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/jit_trace_export.py --exp-dir pruned_transducer_stateless7_streaming/exp \\
      --tokens data/lang_bpe_500/tokens.txt --epoch 28 --avg 15 --decode-chunk-len 32

Writes into EXP_DIR:
  encoder_jit_trace.pt  (x (N, decode_chunk_len + 7, 80), x_lens (N,), states) -> (encoder_out, encoder_out_lens, states);
                        the streaming forward, traced on one full chunk: feed exactly decode_chunk_len + 7 frames
  decoder_jit_trace.pt  y (N, context_size) int64 -> (N, 1, decoder_dim)   (need_pad=False)
  joiner_jit_trace.pt   (N, encoder_dim), (N, decoder_dim) -> (N, vocab_size) logits   (project_input=True)
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from icefall_lite.decoding.options import run_script
from icefall_lite.export.cli import add_export_arguments, parse_and_load
from icefall_lite.export.torchscript import trace_decoder, trace_encoder, trace_joiner


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_export_arguments(parser, epoch=28, avg=15)
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args, model = parse_and_load(get_parser(), argv)
    exp_dir = Path(args.exp_dir)
    traced = {
        "encoder_jit_trace.pt": trace_encoder(model.encoder),
        "decoder_jit_trace.pt": trace_decoder(model.decoder),
        "joiner_jit_trace.pt": trace_joiner(model.joiner),
    }
    for name, module in traced.items():
        module.save(str(exp_dir / name))
        logging.info(f"Wrote {exp_dir / name}")


if __name__ == "__main__":
    sys.exit(run_script(main))
