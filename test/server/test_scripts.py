"""streaming_server.py and streaming_client.py as a user runs them: the client's final lines are the offline
decode of each file; the server's health endpoint answers; bad options are named."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, List

import pytest

from icefall_lite.export.sherpa import decode_waves, make_recognizer

from .conftest import Corpus, TinyExport

RECIPE = Path(__file__).resolve().parents[2] / "egs/librispeech/ASR/pruned_transducer_stateless7_streaming"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_health(port: int, server: subprocess.Popen, seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited: {server.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not answer /health")


@pytest.fixture(scope="module")
def server_port(corpus: Corpus, tiny_export: TinyExport) -> Iterator[int]:
    port = free_port()
    onnx = tiny_export.onnx
    command = [
        sys.executable, str(RECIPE / "streaming_server.py"), "--port", str(port), "--tokens", str(corpus.tokens),
        "--encoder-model-filename", str(onnx.encoder), "--decoder-model-filename", str(onnx.decoder),
        "--joiner-model-filename", str(onnx.joiner),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_health(port, server)["backend"] == "sherpa-onnx"
        yield port
    finally:
        server.terminate()  # SIGTERM: SIGINT is ignored by processes started from a background shell job
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def test_the_client_prints_the_offline_text_of_each_file(corpus: Corpus, tiny_export: TinyExport, server_port: int) -> None:
    files: List[Path] = corpus.waves[:2]
    recognizer = make_recognizer(tiny_export.onnx, corpus.tokens, num_threads=1)
    expected = [result.text.strip() for result in decode_waves(recognizer, [corpus.samples(f) for f in files], num_streams=1)]
    result = subprocess.run(
        [sys.executable, str(RECIPE / "streaming_client.py"), "--server-addr", "127.0.0.1", "--server-port", str(server_port),
         "--as-fast-as-possible", "--seconds-per-message", "0.2", *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for path, text in zip(files, expected):
        assert f"{path}: {text}" in lines
        assert any(line.startswith(f"{path} partial 0: ") for line in lines)
        assert f"{path} final 0: {text}" in lines


def test_the_page_is_served_at_the_root(server_port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{server_port}/", timeout=10) as response:
        page = response.read().decode()
    assert "capture-worklet" not in page and "/static/app.js" in page
    with urllib.request.urlopen(f"http://127.0.0.1:{server_port}/static/capture-worklet.js", timeout=10) as response:
        assert "registerProcessor('resample-16k'" in response.read().decode()


def test_half_an_export_is_refused_in_one_line_naming_the_missing_options(corpus: Corpus, tiny_export: TinyExport) -> None:
    result = subprocess.run(
        [sys.executable, str(RECIPE / "streaming_server.py"), "--tokens", str(corpus.tokens),
         "--encoder-model-filename", str(tiny_export.onnx.encoder)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    [error] = [line for line in result.stderr.splitlines() if "Error" in line]
    assert "ServerOptionError: missing --decoder-model-filename and --joiner-model-filename:" in error
