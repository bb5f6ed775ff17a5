"""A tiny talkative model (random weights, many tokens) as a checkpoint and as an ONNX export; a tiny model
trained until it reproduces a few training utterances (for the page, whose fake microphone must give the real
transcript), as an ONNX export; the test utterances of the prepared corpus; and servers on 127.0.0.1 run in a
background thread; one torch thread."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
import pytest
import sentencepiece as spm
import soundfile
import torch
from lhotse import load_manifest

from export.conftest import TINY_MODEL_OPTIONS, talkative_model  # noqa: F401  (test/export/conftest.py; test/ is on sys.path)
from training import overfit  # test/training/overfit.py

from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.export.inputs import SAMPLE_RATE, read_tokens, read_wave, symbol_id
from icefall_lite.export.onnx_export import OnnxPaths, export_onnx
from icefall_lite.export.sherpa import decode_waves, make_recognizer
from icefall_lite.server.app import StreamingServer
from icefall_lite.server.connection import ConnectionLimits
from icefall_lite.server.endpoint import EndpointRules
from icefall_lite.server.recognizers import CheckpointRecognizer, Recognizer, SherpaRecognizer
from icefall_lite.server.worker import BatchingOptions
from icefall_lite.training.checkpoint import save_checkpoint

NO_ENDPOINTS = EndpointRules(enabled=False)
TRAINED_UTTERANCES = 4  # the shortest of train-clean-100, 2.1 to 2.8 s
TRAINING_ATTEMPTS, ATTEMPT_STEPS = 4, 350
"""Whether greedy search reproduces all of them is chaotic in the initialization (measured: reproduced after 225
and 275 steps in two runs; with other seeds, one or two utterances stop a few words early for 800 steps, at a
pruned loss of 1e-5 per frame): a fresh start beats more steps."""
MAX_SHIFT_SAMPLES = 240
"""The trained model hears each utterance up to 15 ms early or late at every step. Measured: through the page,
chromium's fake microphone arrives 46 to 325 samples late (once 67 early), more on a busy machine; the same model
trained on one alignment of its frames lost its last words for shifts of 30 to 200 samples; trained with these
shifts, it keeps the page's utterance up to 600 samples late and 440 early."""


@dataclass
class Corpus:
    tokens: Path
    table: Dict[int, str]
    waves: List[Path]  # the test-clean and test-other utterances

    def samples(self, path: Path) -> np.ndarray:
        return read_wave(path).numpy()


@dataclass
class TinyExport:
    exp_dir: Path  # epoch-1.pt
    onnx: OnnxPaths


@dataclass
class TrainedExport:
    onnx: OnnxPaths
    waves: List[Path]  # the utterances it reproduces, as 16 kHz float wav files
    texts: List[str]  # their transcripts


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus(prepared_dir: Path) -> Corpus:
    tokens = prepared_dir / "data" / "lang_bpe_80" / "tokens.txt"
    waves = sorted((prepared_dir / "download" / "LibriSpeech").glob("test-*/*/*/*.flac"))
    return Corpus(tokens, read_tokens(tokens), waves)


@pytest.fixture(scope="session")
def tiny_model(corpus: Corpus) -> torch.nn.Module:
    return talkative_model(vocab_size=len(corpus.table))


@pytest.fixture(scope="session")
def tiny_export(tiny_model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> TinyExport:
    exp_dir = tmp_path_factory.mktemp("server-exp")
    save_checkpoint(exp_dir / "epoch-1.pt", tiny_model, params={"batch_idx_train": 100, "average_period": 100})
    return TinyExport(exp_dir, export_onnx(tiny_model, exp_dir, "epoch-1-avg-1"))


@pytest.fixture(scope="session")
def trained_export(prepared_dir: Path, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> TrainedExport:
    """test_overfit.py's tiny model trained on the shortest utterances, each shifted by up to MAX_SHIFT_SAMPLES
    at every step, until its export decoded by sherpa-onnx reproduces them, on time and MAX_SHIFT_SAMPLES late;
    from another initialization (up to TRAINING_ATTEMPTS) if not by ATTEMPT_STEPS."""
    torch.set_num_threads(1)  # the session fixture is set up before the autouse one
    sp = spm.SentencePieceProcessor(model_file=str(corpus.tokens.parent / "bpe.model"))
    cuts = load_manifest(prepared_dir / "data" / "fbank" / "librispeech_cuts_train-clean-100.jsonl.gz")
    originals = sorted((cut for cut in cuts if "_sp" not in cut.id), key=lambda cut: cut.duration)[:TRAINED_UTTERANCES]
    waves = [read_wave(prepared_dir / cut.recording.sources[0].source).numpy() for cut in originals]
    texts = [cut.supervisions[0].text for cut in originals]
    batch = overfit.fbank_batch(waves, texts)
    exp_dir = tmp_path_factory.mktemp("trained-exp")
    exports: List[OnnxPaths] = []  # the last is of the model the loop stops with

    def exported_hypotheses(model: torch.nn.Module) -> List[str]:
        """The export's text of each utterance, or of it MAX_SHIFT_SAMPLES late where that differs (once the
        model's own greedy search gives the transcripts: an export costs a few seconds)."""
        hypotheses = overfit.decoded_texts(model, batch, sp, "pruned")
        if hypotheses != texts:
            return hypotheses
        exports.append(export_onnx(model, exp_dir, "trained"))
        recognizer = make_recognizer(exports[-1], corpus.tokens, num_threads=1)
        late = [overfit.shift_samples(wave, MAX_SHIFT_SAMPLES) for wave in waves]
        results = [result.text.strip() for result in decode_waves(recognizer, waves + late, num_streams=2 * len(waves))]
        return [now if now != text else later for now, later, text in zip(results, results[len(waves):], texts)]

    tried = []
    for seed in range(TRAINING_ATTEMPTS):
        random.seed(seed)  # the encoder's layer skipping and regularizers draw from random
        torch.manual_seed(seed)
        model = overfit.tiny_model(sp.get_piece_size())
        steps, stats, hypotheses = overfit.train_until_reproduced(
            model, batch, sp, "pruned", train_batch=overfit.ShiftedBatches(waves, texts, MAX_SHIFT_SAMPLES, seed=seed),
            first_check=100, hypotheses_of=exported_hypotheses, max_steps=ATTEMPT_STEPS,
        )
        if hypotheses == texts:
            break
        tried.append(f"seed {seed}: {hypotheses} after {steps} steps, loss {stats.per_frame()}")
    else:
        raise AssertionError(f"the tiny model's export did not learn {texts}: " + "; ".join(tried))
    paths = [exp_dir / f"{cut.id}.wav" for cut in originals]
    for path, wave in zip(paths, waves):
        soundfile.write(str(path), wave, SAMPLE_RATE, subtype="FLOAT")
    return TrainedExport(exports[-1], paths, texts)


def sherpa_recognizer(corpus: Corpus, tiny_export: TinyExport, rules: EndpointRules = NO_ENDPOINTS, **options) -> SherpaRecognizer:
    return SherpaRecognizer(tiny_export.onnx, corpus.tokens, rules, num_threads=1, **options)


def checkpoint_recognizer(corpus: Corpus, model: torch.nn.Module, rules: EndpointRules = NO_ENDPOINTS, num_slots: int = 40) -> CheckpointRecognizer:
    search = GreedySearch(model, unk_id=symbol_id(corpus.table, "<unk>"))
    return CheckpointRecognizer(model, search, corpus.table, rules, num_slots)


class ServerThread:
    """A StreamingServer on 127.0.0.1 and a free port, its event loop in a background thread."""

    def __init__(self, recognizer: Recognizer, limits: ConnectionLimits = ConnectionLimits(), batching: BatchingOptions = BatchingOptions()) -> None:
        self.server = StreamingServer(recognizer, limits, batching)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self.server.start("127.0.0.1", 0), self.loop).result(timeout=30)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/"

    def health(self) -> Dict:
        with urllib.request.urlopen(self.http_url + "health", timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(self._runner), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


def running(recognizer: Recognizer, **kwargs) -> Iterator[ServerThread]:
    server = ServerThread(recognizer, **kwargs)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sherpa_server(corpus: Corpus, tiny_export: TinyExport) -> Iterator[ServerThread]:
    yield from running(sherpa_recognizer(corpus, tiny_export))
