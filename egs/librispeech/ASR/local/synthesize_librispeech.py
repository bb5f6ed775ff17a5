#!/usr/bin/env python3
"""Stage 0 without LibriSpeech: synthesize a LibriSpeech-format corpus with espeak-ng.

    ./local/synthesize_librispeech.py --out-dir download/LibriSpeech --hours 5 --nj 2
"""
import argparse
from pathlib import Path

from icefall_lite.cli import positive_float, positive_int, setup_logging
from icefall_lite.data.synthetic_corpus import plan_corpus, synthesize_corpus


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="the LibriSpeech directory to create")
    parser.add_argument("--hours", type=positive_float, required=True, help="hours of training speech")
    parser.add_argument("--nj", type=positive_int, default=2, help="parallel espeak-ng jobs")
    parser.add_argument("--seed", type=int, default=0, help="text and voice seed")
    return parser


def main() -> None:
    args = get_parser().parse_args()
    setup_logging()
    synthesize_corpus(plan_corpus(args.hours, args.seed), args.out_dir, num_jobs=args.nj)


if __name__ == "__main__":
    main()
