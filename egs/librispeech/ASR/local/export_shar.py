#!/usr/bin/env python3
"""Write the training cuts as lhotse Shar shards for train.py --shar-dir: cut manifests, fbank (lilcom) and, with
--include-audio 1, the audio (flac), --shard-size cuts per shard. Training then reads the shards lazily: every rank
and DataLoader worker its own shards, so the corpus can live on shared storage and outgrow any one machine.

    ./local/export_shar.py --manifest-dir data/fbank --out-dir data/shar --shard-size 1000 [--include-audio 1]
    # a corpus --copies times as large (the same cuts under new ids), e.g. for memory measurements:
    ./local/export_shar.py --out-dir data/shar-10x --copies 10
"""
import argparse
from pathlib import Path

from icefall_lite.cli import positive_int, setup_logging, str2bool
from icefall_lite.data.shar import export_shar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest-dir", type=Path, default=Path("data/fbank"))
    parser.add_argument("--subsets", default="train-clean-100", help="comma-separated training subsets (default train-clean-100)")
    parser.add_argument("--out-dir", type=Path, default=Path("data/shar"))
    parser.add_argument("--shard-size", type=positive_int, default=1000, help="cuts per shard (default 1000)")
    parser.add_argument("--include-audio", type=str2bool, default=False, help="also store the audio as flac (default 0)")
    parser.add_argument("--copies", type=positive_int, default=1, help="write the cuts this many times, new ids (default 1)")
    args = parser.parse_args()
    setup_logging()
    manifests = [args.manifest_dir / f"librispeech_cuts_{subset}.jsonl.gz" for subset in args.subsets.split(",")]
    export_shar(manifests, args.out_dir, args.shard_size, args.include_audio, args.copies)


if __name__ == "__main__":
    main()
