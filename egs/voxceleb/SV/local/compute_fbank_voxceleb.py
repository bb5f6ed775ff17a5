#!/usr/bin/env python3
"""80-dim fbank of the train / valid / iden / test subsets, and the training speaker list
(icefall_lite.data.speaker_manifests).

Usage: ./local/compute_fbank_voxceleb.py --manifest-dir data/manifests --fbank-dir data/fbank --nj 2 \\
           --valid-per-speaker 1 --iden-per-speaker 3
"""

import argparse
from pathlib import Path

from icefall_lite.cli import positive_int, setup_logging
from icefall_lite.data.speaker_manifests import compute_voxceleb_fbank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, required=True)
    parser.add_argument("--fbank-dir", type=Path, required=True)
    parser.add_argument("--nj", type=positive_int, default=2)
    parser.add_argument("--valid-per-speaker", type=int, default=1, help="held-out utterances per speaker for validation")
    parser.add_argument("--iden-per-speaker", type=int, default=3, help="held-out utterances per speaker for identification")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging()
    compute_voxceleb_fbank(
        args.manifest_dir, args.fbank_dir, args.nj, args.valid_per_speaker, args.iden_per_speaker, args.seed
    )


if __name__ == "__main__":
    main()
