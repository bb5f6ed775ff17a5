#!/usr/bin/env python3
"""Decode test sets with sherpa-onnx and export-onnx.py's files, writing icefall's result files and the
real-time factor: what a deployed model scores.

sherpa-onnx computes its own features (kaldi-native-fbank) and runs its own chunking and search; up to
--num-decode-streams files are decoded together, a finished one's slot going to the next, as a sherpa-onnx server
does with its connections. Each file is followed by 0.3 s of silence.

Usage (from egs/librispeech/ASR):
  ./pruned_transducer_stateless7_streaming/sherpa_onnx_decode.py \\
      --encoder-model-filename pruned_transducer_stateless7_streaming/exp/encoder-epoch-30-avg-9.onnx \\
      --decoder-model-filename pruned_transducer_stateless7_streaming/exp/decoder-epoch-30-avg-9.onnx \\
      --joiner-model-filename pruned_transducer_stateless7_streaming/exp/joiner-epoch-30-avg-9.onnx \\
      --tokens data/lang_bpe_500/tokens.txt --exp-dir pruned_transducer_stateless7_streaming/exp

Writes recogs-{set}-{suffix}.txt, errs-{set}-{suffix}.txt, wer-summary-{set}-{suffix}.txt and
log-decode-{suffix}-{date} into EXP_DIR/sherpa-onnx/DECODING_METHOD/, where suffix is the encoder file's name
without "encoder-" and ".onnx" (e.g. epoch-30-avg-9, epoch-30-avg-9.int8).
"""

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional

from icefall_lite.cli import positive_int, setup_logging
from icefall_lite.data.datamodule import AsrDataConfig, LibriSpeechAsrDataModule
from icefall_lite.decoding.features import load_cut_samples
from icefall_lite.decoding.options import add_common_decoding_arguments, run_script, test_sets
from icefall_lite.decoding.results import decode_log_path, streaming_settings_key
from icefall_lite.decoding.wer import save_results
from icefall_lite.export.cli import add_tokens_argument
from icefall_lite.export.inputs import SAMPLE_RATE
from icefall_lite.export.onnx_export import OnnxPaths
from icefall_lite.export.sherpa import decode_waves, make_recognizer

DECODING_METHODS = ("greedy_search", "modified_beam_search")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder-model-filename", type=Path, required=True, help="encoder-*.onnx")
    parser.add_argument("--decoder-model-filename", type=Path, required=True, help="decoder-*.onnx")
    parser.add_argument("--joiner-model-filename", type=Path, required=True, help="joiner-*.onnx")
    add_tokens_argument(parser)
    parser.add_argument(
        "--exp-dir", type=Path, default=Path("pruned_transducer_stateless7_streaming/exp"),
        help="results go to EXP_DIR/sherpa-onnx/DECODING_METHOD (default pruned_transducer_stateless7_streaming/exp)",
    )
    parser.add_argument("--decoding-method", choices=DECODING_METHODS, default="greedy_search", help="(default greedy_search)")
    parser.add_argument(
        "--num-active-paths", type=positive_int, default=4, help="modified_beam_search: hypotheses kept (default 4)"
    )
    parser.add_argument(
        "--num-decode-streams", type=positive_int, default=1, help="files decoded together as one batch (default 1)"
    )
    add_common_decoding_arguments(parser)
    LibriSpeechAsrDataModule.add_arguments(parser)
    return parser


def result_suffix(encoder: Path) -> str:
    """``encoder-epoch-30-avg-9.int8.onnx`` -> ``epoch-30-avg-9.int8``."""
    return encoder.name.removesuffix(".onnx").removeprefix("encoder-")


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    suffix = result_suffix(args.encoder_model_filename)
    key = streaming_settings_key(args.decoding_method, args.num_active_paths)
    res_dir = args.exp_dir / "sherpa-onnx" / args.decoding_method
    setup_logging(decode_log_path(res_dir, suffix))
    num_threads = args.num_threads or 1
    logging.info(f"Decoding with sherpa-onnx on {num_threads} threads; results in {res_dir}; options {vars(args)}")
    paths = OnnxPaths(args.encoder_model_filename, args.decoder_model_filename, args.joiner_model_filename)
    recognizer = make_recognizer(paths, args.tokens, num_threads, args.decoding_method, args.num_active_paths)

    data = LibriSpeechAsrDataModule(AsrDataConfig.from_args(args))
    for name, cuts in test_sets(args.cuts, data):
        cuts = list(cuts)
        waves = [load_cut_samples(cut, SAMPLE_RATE).numpy() for cut in cuts]
        audio_seconds = sum(len(wave) for wave in waves) / SAMPLE_RATE
        logging.info(f"Decoding {name}: {len(cuts)} cuts, {audio_seconds:.1f} s of audio")
        start = time.perf_counter()
        decoded = decode_waves(recognizer, waves, args.num_decode_streams)
        elapsed = time.perf_counter() - start
        logging.info(f"{name}: {audio_seconds:.1f} s of audio in {elapsed:.1f} s, real-time factor {elapsed / audio_seconds:.4f}")
        results = [(cut.id, cut.supervisions[0].text.split(), result.text.split()) for cut, result in zip(cuts, decoded)]
        save_results(res_dir, name, key, suffix, results)
    logging.info("Done!")


if __name__ == "__main__":
    sys.exit(run_script(main))
