#!/usr/bin/env python3
"""Stage 3: 80-dim fbank of every LibriSpeech subset found in the manifest dir (speed perturbation on train).

    ./local/compute_fbank_librispeech.py --manifest-dir data/manifests --fbank-dir data/fbank --nj 2
"""
import argparse
from pathlib import Path

from icefall_lite.cli import positive_int, setup_logging, str2bool
from icefall_lite.data.features import compute_librispeech_fbank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, default=Path("data/manifests"))
    parser.add_argument("--fbank-dir", type=Path, default=Path("data/fbank"))
    parser.add_argument("--nj", type=positive_int, default=2, help="parallel feature jobs")
    parser.add_argument("--perturb-speed", type=str2bool, default=True, help="speed 0.9/1.1 copies of train")
    args = parser.parse_args()
    setup_logging()
    subsets = sorted(
        path.name[len("librispeech_recordings_") : -len(".jsonl.gz")]
        for path in args.manifest_dir.glob("librispeech_recordings_*.jsonl.gz")
    )
    if not subsets:
        raise SystemExit(f"no librispeech_recordings_*.jsonl.gz in {args.manifest_dir}: run stage 1 first")
    compute_librispeech_fbank(args.manifest_dir, args.fbank_dir, subsets, args.nj, args.perturb_speed)


if __name__ == "__main__":
    main()
