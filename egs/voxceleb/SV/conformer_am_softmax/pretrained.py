#!/usr/bin/env python3
"""Name the speaker of wav files: embed them and pick the closest enrolled speaker by cosine score.

Usage:
  ./conformer_am_softmax/pretrained.py --checkpoint conformer_am_softmax/exp/pretrained.pt \\
      --enrol-dir ENROL WAV [WAV ...]
  # ENROL/SPEAKER/*.wav: one folder of 16 kHz mono wavs per speaker (their mean embedding enrols the speaker)
  # or, with torch alone: --nn-model-filename conformer_am_softmax/exp/embedding_extractor.pt

Prints one line per file: "FILE SPEAKER SCORE" (cosine score in [-1, 1]).
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

import torch

from icefall_lite.cli import setup_logging
from icefall_lite.decoding.speaker_eval import closest_speakers, embed_waves, enrol, run_speaker_script
from icefall_lite.export.speaker import EmbeddingExtractor, load_pretrained


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", type=Path, help="export.py's pretrained.pt")
    model.add_argument("--nn-model-filename", type=Path, help="export.py's TorchScript embedding_extractor.pt")
    parser.add_argument("--enrol-dir", type=Path, required=True, help="one folder of wav files per speaker")
    parser.add_argument("--num-threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("sound_files", type=Path, nargs="+", help="wav files to identify")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.num_threads)
    if args.nn_model_filename is not None:
        if not args.nn_model_filename.is_file():
            raise FileNotFoundError(f"--nn-model-filename {args.nn_model_filename} not found: write it with export.py")
        extractor = torch.jit.load(str(args.nn_model_filename))
    else:
        extractor = EmbeddingExtractor(load_pretrained(args.checkpoint))
    names, centroids = enrol(extractor, args.enrol_dir)
    best, scores = closest_speakers(embed_waves(extractor, args.sound_files), centroids)
    for path, index, score in zip(args.sound_files, best.tolist(), scores.tolist()):
        print(f"{path} {names[index]} {score:.4f}")
    logging.info(f"Identified {len(args.sound_files)} files among {len(names)} enrolled speakers")


if __name__ == "__main__":
    sys.exit(run_speaker_script(main))
