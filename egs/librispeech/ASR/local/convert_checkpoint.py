#!/usr/bin/env python3
"""Convert a checkpoint between icefall's layout and icefall_lite's, either way.

icefall's pretrained.pt, epoch-N.pt and checkpoint-N.pt of pruned_transducer_stateless7_streaming also load
directly in every script of this recipe (no conversion needed); this writes a file for icefall's and sherpa's
own scripts (--to icefall), or a plain icefall_lite file (--to icefall_lite: no icefall-only entries left).

Usage (from egs/librispeech/ASR):
  ./local/convert_checkpoint.py --to icefall pruned_transducer_stateless7_streaming/exp/pretrained.pt \\
      /path/to/icefall/egs/librispeech/ASR/pruned_transducer_stateless7_streaming/exp/pretrained.pt
  ./local/convert_checkpoint.py --to icefall_lite icefall-exp/epoch-30.pt pruned_transducer_stateless7_streaming/exp/epoch-30.pt

The model and averaged model are converted (icefall's balancer counts are set to the file's batch_idx_train);
the training numbers and options are kept, the optimizer, scheduler, grad-scaler and sampler states are not.
"""

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from icefall_lite.cli import setup_logging
from icefall_lite.decoding.options import run_script
from icefall_lite.training.convert import FORMATS, convert_checkpoint_file


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", choices=FORMATS, required=True, help="the layout to write")
    parser.add_argument("source", type=Path, help="checkpoint to read (either layout)")
    parser.add_argument("target", type=Path, help="checkpoint to write")
    args = parser.parse_args(argv)
    setup_logging()
    convert_checkpoint_file(args.source, args.target, args.to)


if __name__ == "__main__":
    sys.exit(run_script(main))
