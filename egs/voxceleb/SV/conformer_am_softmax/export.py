#!/usr/bin/env python3
"""Export a speaker model (run from egs/voxceleb/SV): EXP/pretrained.pt (weights and model config), and the
embedding extractor as TorchScript (EXP/embedding_extractor.pt) and ONNX (EXP/embedding_extractor.onnx), each
checked against PyTorch on a padded batch.

Usage:
  ./conformer_am_softmax/export.py --exp-dir conformer_am_softmax/exp --epoch 6 --avg 2 [model options]

The extractors take raw 80-dim fbank (N, T, 80) and lengths (N,) and return embeddings (N, E); they do the
per-utterance mean normalization themselves. pretrained.pt is what pretrained.py --checkpoint loads.
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from icefall_lite.cli import setup_logging
from icefall_lite.data.speaker_manifests import SPEAKERS_FILE, read_speakers
from icefall_lite.decoding.checkpoint_selection import add_checkpoint_arguments
from icefall_lite.decoding.speaker_eval import load_speaker_model, run_speaker_script
from icefall_lite.export.speaker import EmbeddingExtractor, check_exported, export_extractor_onnx, script_extractor
from icefall_lite.model.speaker_options import add_speaker_model_arguments
from icefall_lite.training.checkpoint import atomic_torch_save


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_checkpoint_arguments(parser, epoch=6, avg=2)
    add_speaker_model_arguments(parser)
    parser.add_argument(
        "--manifest-dir", type=Path, default=Path("data/fbank"), help=f"directory with {SPEAKERS_FILE} (default data/fbank)"
    )
    parser.set_defaults(exp_dir=Path("conformer_am_softmax/exp"))
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging()
    model = load_speaker_model(args, num_speakers=len(read_speakers(args.manifest_dir / SPEAKERS_FILE)))
    exp_dir = Path(args.exp_dir)
    atomic_torch_save({"model": model.state_dict(), "config": model.config.to_dict()}, exp_dir / "pretrained.pt")
    extractor = EmbeddingExtractor(model)
    jit_path, onnx_path = exp_dir / "embedding_extractor.pt", exp_dir / "embedding_extractor.onnx"
    script_extractor(extractor).save(str(jit_path))
    export_extractor_onnx(extractor, onnx_path)
    difference = check_exported(extractor, [jit_path, onnx_path])
    logging.info(f"Wrote {exp_dir / 'pretrained.pt'}, {jit_path}, {onnx_path} (max difference to PyTorch {difference:.2g})")


if __name__ == "__main__":
    sys.exit(run_speaker_script(main))
