#!/usr/bin/env python3
"""lhotse manifests and the trial list of VoxCeleb1 (+ VoxCeleb2), or of the synthesized VoxCeleb1-format corpus.

Usage: ./local/prepare_manifests.py --voxceleb1-dir download/VoxCeleb1 [--voxceleb2-dir download/VoxCeleb2] \\
           --manifest-dir data/manifests --nj 2
"""

import argparse
from pathlib import Path

from icefall_lite.cli import positive_int, setup_logging
from icefall_lite.data.speaker_manifests import prepare_voxceleb_manifests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voxceleb1-dir", type=Path, required=True)
    parser.add_argument("--voxceleb2-dir", type=Path, default=None)
    parser.add_argument("--manifest-dir", type=Path, required=True)
    parser.add_argument("--nj", type=positive_int, default=2)
    args = parser.parse_args()
    setup_logging()
    prepare_voxceleb_manifests(args.voxceleb1_dir, args.voxceleb2_dir, args.manifest_dir, args.nj)


if __name__ == "__main__":
    main()
