#!/usr/bin/env python3
"""Synthesize a VoxCeleb1-format speaker corpus with espeak-ng (icefall_lite.data.speaker_corpus).

Usage: ./local/synthesize_voxceleb.py --out-dir download/VoxCeleb1 --speakers 300 --utterances 24 \\
           --test-speakers 40 --test-utterances 12 --nj 2 --seed 0
"""

import argparse
import logging
from pathlib import Path

from icefall_lite.cli import positive_int, setup_logging
from icefall_lite.data.speaker_corpus import SpeakerCorpusSize, plan_speaker_corpus, synthesize_speaker_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="the corpus directory to create")
    defaults = SpeakerCorpusSize()
    parser.add_argument("--speakers", type=positive_int, default=defaults.num_train_speakers, help="training speakers")
    parser.add_argument("--utterances", type=positive_int, default=defaults.train_utterances, help="utterances per training speaker")
    parser.add_argument("--test-speakers", type=positive_int, default=defaults.num_test_speakers, help="held-out speakers")
    parser.add_argument("--test-utterances", type=positive_int, default=defaults.test_utterances, help="utterances per held-out speaker")
    parser.add_argument("--nj", type=positive_int, default=2, help="parallel espeak-ng jobs")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same corpus")
    args = parser.parse_args()
    setup_logging()
    size = SpeakerCorpusSize(args.speakers, args.utterances, args.test_speakers, args.test_utterances)
    plan = plan_speaker_corpus(size, args.seed)
    synthesize_speaker_corpus(plan, args.out_dir, args.nj)
    logging.info(f"{len(plan.trials)} trials in {args.out_dir}")


if __name__ == "__main__":
    main()
