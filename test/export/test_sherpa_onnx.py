"""sherpa-onnx runs export-onnx.py's files and finds the tokens of this project's streaming greedy decoding.

On the test wavs of the tiny prepared corpus, sherpa-onnx (its own kaldi-native-fbank features, its own
chunking and greedy search) and ``StreamingDecoder`` + ``GreedySearch`` (lhotse fbank computed as audio
arrives, PyTorch streaming forward) are fed the same audio, with 0.5 s of trailing zeros. sherpa-onnx decodes
a chunk only once more than T frames are ready, so it stops before the last, partly padded chunks that the
project's decoder still decodes: the comparison is over the chunks sherpa-onnx decoded. sherpa-onnx decoding all
utterances as one batch of streams (the dynamic batch axis of the export) gives the same tokens as one by one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import kaldi_native_fbank
import numpy as np
import pytest
import torch

from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.decoding.streaming import DecodeStream, StreamingDecoder
from icefall_lite.export.inputs import SAMPLE_RATE, compute_fbank, read_tokens, read_wave, symbol_id
from icefall_lite.export.onnx_export import OnnxPaths, export_onnx
from icefall_lite.export.sherpa import decode_waves, make_recognizer
from icefall_lite.model.transducer import Transducer

from .conftest import talkative_model

TAIL_SECONDS = 0.5
DECODE_CHUNK_LEN, CHUNK_FRAMES = 32, 39


@pytest.fixture(scope="module")
def corpus(prepared_dir: Path) -> Dict[str, object]:
    tokens = prepared_dir / "data" / "lang_bpe_80" / "tokens.txt"
    waves = sorted((prepared_dir / "download" / "LibriSpeech").glob("test-*/*/*/*.flac"))
    return {"tokens": tokens, "table": read_tokens(tokens), "waves": waves}


@pytest.fixture(scope="module")
def tiny_model(corpus: Dict[str, object]) -> Transducer:
    return talkative_model(vocab_size=len(corpus["table"]))


@pytest.fixture(scope="module")
def onnx_paths(tiny_model: Transducer, tmp_path_factory: pytest.TempPathFactory) -> OnnxPaths:
    return export_onnx(tiny_model, tmp_path_factory.mktemp("onnx"), "epoch-1-avg-1")


def _with_tail(samples: torch.Tensor) -> torch.Tensor:
    return torch.cat([samples, torch.zeros(int(TAIL_SECONDS * SAMPLE_RATE))])


def _sherpa_fbank(samples: torch.Tensor) -> torch.Tensor:
    """The frames sherpa-onnx computes (kaldi-native-fbank with sherpa-onnx's default options)."""
    options = kaldi_native_fbank.FbankOptions()
    options.frame_opts.dither = 0.0
    options.frame_opts.snip_edges = False
    options.frame_opts.samp_freq = SAMPLE_RATE
    options.mel_opts.num_bins = 80
    options.mel_opts.low_freq = 20.0
    options.mel_opts.high_freq = -400.0
    fbank = kaldi_native_fbank.OnlineFbank(options)
    fbank.accept_waveform(SAMPLE_RATE, samples.tolist())
    fbank.input_finished()
    return torch.tensor(np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)]))


def _sherpa_num_chunks(num_samples: int) -> int:
    """Chunks sherpa-onnx decodes: those starting at p = 32 k with p + T < frames ready (snip_edges=False)."""
    num_frames = (num_samples + 80) // 160
    return max(0, (num_frames - CHUNK_FRAMES - 1) // DECODE_CHUNK_LEN + 1)


@torch.no_grad()
def _streaming_tokens_by_chunk(model: Transducer, samples: torch.Tensor, unk_id: int) -> Dict[int, List[int]]:
    """{chunks decoded: tokens so far} of the project's streaming greedy decoding of one utterance."""
    search = GreedySearch(model, unk_id=unk_id)
    decoder = StreamingDecoder(model, search, num_slots=1)
    stream = DecodeStream("utt", DECODE_CHUNK_LEN, audio=samples)
    decoder.add(stream)
    by_chunk: Dict[int, List[int]] = {}
    while decoder.num_active:
        finished = decoder.step()
        tokens = finished[0][1] if finished else search.best_tokens(decoder.search_state, [0])[0]
        by_chunk[stream.offset // DECODE_CHUNK_LEN] = tokens
    return by_chunk


def test_sherpa_features_match_the_training_fbank(corpus: Dict[str, object]) -> None:
    for path in corpus["waves"][:4]:
        samples = _with_tail(read_wave(path))
        ours, theirs = compute_fbank(samples), _sherpa_fbank(samples)
        assert ours.shape == theirs.shape
        difference = (ours - theirs).abs()
        assert float(difference.max()) < 5e-3 and float(difference.mean()) < 1e-4, path


def test_sherpa_onnx_decodes_the_tokens_of_streaming_greedy_search(
    corpus: Dict[str, object], tiny_model: Transducer, onnx_paths: OnnxPaths
) -> None:
    recognizer = make_recognizer(onnx_paths, corpus["tokens"], num_threads=1)
    table = corpus["table"]
    unk_id = symbol_id(table, "<unk>")
    utterances = [_with_tail(read_wave(path)) for path in corpus["waves"]]
    same, total_tokens, sherpa_tokens = 0, 0, []
    for samples in utterances:
        sherpa_tokens.append(decode_waves(recognizer, [samples.numpy()], num_streams=1, tail_seconds=0.0)[0].tokens)
        by_chunk = _streaming_tokens_by_chunk(tiny_model, samples, unk_id)
        ours = [table[token].replace("\u2581", " ") for token in by_chunk[_sherpa_num_chunks(samples.numel())]]
        same += sherpa_tokens[-1] == ours
        total_tokens += len(ours)
    assert len(utterances) == 16 and total_tokens > 16 * 20
    assert same >= 0.99 * len(utterances)
    batched = decode_waves(recognizer, [u.numpy() for u in utterances], num_streams=len(utterances), tail_seconds=0.0)
    assert [result.tokens for result in batched] == sherpa_tokens
