#!/usr/bin/env python3
"""Run lhotse's own validation on manifests (recordings, supervisions or cuts).

    ./local/validate_manifest.py data/fbank/librispeech_cuts_dev-clean.jsonl.gz
"""
import argparse
import logging
from pathlib import Path

from lhotse import load_manifest
from lhotse.qa import validate

from icefall_lite.cli import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", type=Path, nargs="+")
    args = parser.parse_args()
    setup_logging()
    for path in args.manifests:
        validate(load_manifest(path), read_data=False)
        logging.info(f"valid: {path}")


if __name__ == "__main__":
    main()
