"""Simulated streaming (decode.py): whole utterances through the eval-mode encoder, whose attention is masked
to chunks of ``decode_chunk_size`` with ``num_left_chunks`` of left context, then a search.

Usage::

    results = decode_dataloader(data.eval_dataloaders(cuts), model, search, sp, device)   # [(id, ref, hyp)]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List

import sentencepiece as spm
import torch

from icefall_lite.data.datamodule import AsrDataConfig, LibriSpeechAsrDataModule
from icefall_lite.decoding.features import append_tail_padding
from icefall_lite.decoding.options import setup_decoding, test_sets, tokens_to_words
from icefall_lite.decoding.search import TransducerSearch
from icefall_lite.decoding.wer import Result, save_results
from icefall_lite.model.transducer import Transducer

LOG_INTERVAL_BATCHES = 20
FRAMES_PER_SECOND = 100


@torch.no_grad()
def decode_batch(batch: Dict[str, Any], model: Transducer, search: TransducerSearch, device: torch.device) -> List[List[int]]:
    """Token ids of each supervision of a K2SpeechRecognitionDataset batch (features (N, T, 80), one
    supervision per cut), after icefall's 30 frames of tail padding, whole chunk windows only."""
    supervisions = batch["supervisions"]
    features = batch["inputs"].to(device)[supervisions["sequence_idx"].to(device)]
    x, x_lens = append_tail_padding(
        features, supervisions["num_frames"].to(device), chunk_len=2 * model.encoder.decode_chunk_size
    )
    encoder_out, encoder_lens = model.encoder(x, x_lens)
    return search.decode(encoder_out, encoder_lens)


def decode_dataloader(
    batches: Iterable[Dict[str, Any]], model: Transducer, search: TransducerSearch, sp: spm.SentencePieceProcessor, device: torch.device
) -> List[Result]:
    """(cut id, reference words, hypothesis words) for every cut; logs progress and the real-time factor."""
    results: List[Result] = []
    audio_seconds = 0.0
    start = time.perf_counter()
    batch_idx = 0
    for batch_idx, batch in enumerate(batches):
        supervisions = batch["supervisions"]
        hyps = decode_batch(batch, model, search, device)
        cut_ids = [cut.id for cut in supervisions["cut"]]
        for cut_id, text, tokens in zip(cut_ids, supervisions["text"], hyps):
            results.append((cut_id, text.split(), tokens_to_words(sp, tokens)))
        audio_seconds += float(supervisions["num_frames"].sum()) / FRAMES_PER_SECOND
        if batch_idx % LOG_INTERVAL_BATCHES == 0:
            _log_progress(batch_idx, len(results), audio_seconds, time.perf_counter() - start)
    _log_progress(batch_idx, len(results), audio_seconds, time.perf_counter() - start)
    return results


def _log_progress(batch_idx: int, num_cuts: int, audio_seconds: float, elapsed: float) -> None:
    rtf = elapsed / audio_seconds if audio_seconds > 0 else 0.0
    logging.info(
        f"batch {batch_idx}, cuts processed until now is {num_cuts} "
        f"({num_cuts / max(elapsed, 1e-9):.1f} cuts/s, real-time factor {rtf:.4f})"
    )


def decode_test_sets(
    args: argparse.Namespace, key: str, suffix: str,
    make_search: Callable[[Transducer, spm.SentencePieceProcessor], TransducerSearch],
) -> None:
    """decode.py's and ctc_decode.py's main: the model the checkpoint options select, the search
    `make_search(model, sp)`, every test set of --cuts (default test-clean and test-other) decoded, and its recogs,
    errs and wer-summary files written to EXP_DIR/DECODING_METHOD/ (named by `key` and `suffix`)."""
    res_dir = Path(args.exp_dir) / args.decoding_method
    device, sp, model = setup_decoding(args, res_dir, suffix)
    search = make_search(model, sp)
    data = LibriSpeechAsrDataModule(AsrDataConfig.from_args(args))
    for name, cuts in test_sets(args.cuts, data):
        logging.info(f"Decoding {name}")
        results = decode_dataloader(data.eval_dataloaders(cuts), model, search, sp, device)
        save_results(res_dir, name, key, suffix, results)
    logging.info("Done!")
