#!/usr/bin/env python3
"""Stage 5: transcript_words.txt from the training transcripts, then a unigram BPE model and tokens.txt.

    ./local/prepare_lang_bpe.py --corpus-dir download/LibriSpeech --lang-dir data/lang_bpe_500 --vocab-size 500
"""
import argparse
from pathlib import Path

from icefall_lite.cli import positive_int, setup_logging
from icefall_lite.data.bpe import train_bpe_model, write_transcript_words

TRAIN_SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-dir", type=Path, required=True, help="the LibriSpeech directory")
    parser.add_argument("--lang-dir", type=Path, required=True)
    parser.add_argument("--vocab-size", type=positive_int, default=500)
    args = parser.parse_args()
    setup_logging()
    subsets = [subset for subset in TRAIN_SUBSETS if (args.corpus_dir / subset).is_dir()]
    write_transcript_words(args.corpus_dir, subsets, args.lang_dir / "transcript_words.txt")
    train_bpe_model(args.lang_dir, args.vocab_size)


if __name__ == "__main__":
    main()
