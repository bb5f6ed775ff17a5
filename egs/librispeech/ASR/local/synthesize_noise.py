#!/usr/bin/env python3
"""Stage 2 without MUSAN: synthesize a small noise set and its MUSAN-style recording manifests.

    ./local/synthesize_noise.py --out-dir download/synthetic_noise --manifest-dir data/manifests
"""
import argparse
from pathlib import Path

from icefall_lite.cli import setup_logging
from icefall_lite.data.synthetic_noise import write_noise_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="where the noise wav files go")
    parser.add_argument("--manifest-dir", type=Path, required=True, help="where the recording manifests go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging()
    write_noise_corpus(args.out_dir, args.manifest_dir, seed=args.seed)


if __name__ == "__main__":
    main()
