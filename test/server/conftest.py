"""A tiny talkative model (random weights, many tokens) as a checkpoint and as an ONNX export, the test
utterances of the prepared corpus, and servers on 127.0.0.1 run in a background thread; one torch thread."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import numpy as np
import pytest
import torch

from export.conftest import TINY_MODEL_OPTIONS, talkative_model  # noqa: F401  (test/export/conftest.py; test/ is on sys.path)

from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.export.inputs import read_tokens, read_wave, symbol_id
from icefall_lite.export.onnx_export import OnnxPaths, export_onnx
from icefall_lite.server.app import StreamingServer
from icefall_lite.server.connection import ConnectionLimits
from icefall_lite.server.endpoint import EndpointRules
from icefall_lite.server.recognizers import CheckpointRecognizer, Recognizer, SherpaRecognizer
from icefall_lite.server.worker import BatchingOptions
from icefall_lite.training.checkpoint import save_checkpoint

NO_ENDPOINTS = EndpointRules(enabled=False)


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
