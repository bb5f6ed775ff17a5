#!/usr/bin/env python3
"""Export a trained model: the averaged weights as pretrained.pt, or with --jit 1 a TorchScript cpu_jit.pt.

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/export.py --exp-dir pruned_transducer_stateless7_streaming/exp \\
      --tokens data/lang_bpe_500/tokens.txt --epoch 30 --avg 9 --decode-chunk-len 32 [--jit 1]

pretrained.pt holds {"model": state_dict} (load it with pretrained.py --checkpoint, or link it as epoch-999.pt and
decode with --epoch 999 --avg 1 --use-averaged-model 0). cpu_jit.pt needs only torch: torch.jit.load it; its
encoder's forward is the streaming forward (chunks of decode_chunk_len + 7 frames, see get_init_state), the
masked whole-utterance forward is encoder.non_streaming_forward. --decode-chunk-len fixes the state shapes.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from icefall_lite.cli import str2bool
from icefall_lite.decoding.options import run_script
from icefall_lite.export.cli import add_export_arguments, parse_and_load
from icefall_lite.export.torchscript import script_transducer
from icefall_lite.training.checkpoint import atomic_torch_save


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_export_arguments(parser, epoch=30, avg=9)
    parser.add_argument(
        "--jit", type=str2bool, default=False, help="write cpu_jit.pt (torch.jit.script) instead of pretrained.pt (default 0)"
    )
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args, model = parse_and_load(get_parser(), argv)
    exp_dir = Path(args.exp_dir)
    if args.jit:
        path = exp_dir / "cpu_jit.pt"
        script_transducer(model).save(str(path))
    else:
        path = exp_dir / "pretrained.pt"
        atomic_torch_save({"model": model.state_dict()}, path)
    logging.info(f"Wrote {path}")


if __name__ == "__main__":
    sys.exit(run_script(main))
