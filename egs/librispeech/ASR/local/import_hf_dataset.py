#!/usr/bin/env python3
"""Stage 0 from a Hugging Face dataset: write its splits as a LibriSpeech-format corpus (prepare.sh --hf-dataset).

    ./local/import_hf_dataset.py --hf-dataset my_dataset --out-dir download/LibriSpeech \\
        --hf-audio-column audio --hf-text-column text --hf-split-map train=train-clean-100,validation=dev-clean

See icefall_lite/data/hf_import.py for the layouts it reads. Needs the `datasets` package.
"""
import argparse
import logging
import sys
from pathlib import Path

from icefall_lite.cli import setup_logging
from icefall_lite.data.hf_import import DEFAULT_SPLIT_MAP, HfColumns, HfDatasetError, import_hf_dataset, parse_split_map


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf-dataset", type=Path, required=True, help="save_to_disk folder, shard folders or Parquet files")
    parser.add_argument("--out-dir", type=Path, required=True, help="the LibriSpeech directory to create")
    parser.add_argument("--hf-audio-column", default="audio", help="Audio feature or raw float arrays (default audio)")
    parser.add_argument("--hf-text-column", default="text", help="transcripts (default text)")
    parser.add_argument("--hf-sampling-rate-column", default="sampling_rate",
                        help="sampling rates of raw float arrays (default sampling_rate)")
    parser.add_argument("--hf-split-map", default=DEFAULT_SPLIT_MAP, help=f"SPLIT=PART,... (default {DEFAULT_SPLIT_MAP})")
    args = parser.parse_args()
    setup_logging()
    columns = HfColumns(args.hf_audio_column, args.hf_text_column, args.hf_sampling_rate_column)
    try:
        import_hf_dataset(args.hf_dataset, args.out_dir, parse_split_map(args.hf_split_map), columns)
    except (HfDatasetError, ImportError, FileExistsError, FileNotFoundError) as error:
        logging.error(str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
