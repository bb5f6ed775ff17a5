#!/usr/bin/env python3
"""Stage 4: fbank of the noise recordings (MUSAN or the synthesized set), cut into 10 s windows.

    ./local/compute_fbank_musan.py --manifest-dir data/manifests --fbank-dir data/fbank --nj 2
"""
import argparse
from pathlib import Path

from icefall_lite.cli import positive_int, setup_logging
from icefall_lite.data.features import compute_musan_fbank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, default=Path("data/manifests"))
    parser.add_argument("--fbank-dir", type=Path, default=Path("data/fbank"))
    parser.add_argument("--nj", type=positive_int, default=2, help="parallel feature jobs")
    args = parser.parse_args()
    setup_logging()
    compute_musan_fbank(args.manifest_dir, args.fbank_dir, args.nj)


if __name__ == "__main__":
    main()
