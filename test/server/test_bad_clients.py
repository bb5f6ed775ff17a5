"""Each bad client gets a JSON error or a close code, is logged once, and is dropped; after it the server still
serves a well-behaved client the right text and its connection count is back where it was."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Iterator, List, Optional, Tuple

import aiohttp
import numpy as np
import pytest

from icefall_lite.export.sherpa import decode_waves
from icefall_lite.server.client import stream_samples
from icefall_lite.server.connection import ConnectionLimits

from .conftest import Corpus, ServerThread, TinyExport, running, sherpa_recognizer

LIMITS = ConnectionLimits(max_active_connections=3, max_message_size=64_000, idle_timeout=3.0, max_queue_size=4)
Misbehaviour = Callable[[aiohttp.ClientWebSocketResponse], Awaitable[None]]


@pytest.fixture(scope="module")
def strict_server(corpus: Corpus, tiny_export: TinyExport) -> Iterator[ServerThread]:
    yield from running(sherpa_recognizer(corpus, tiny_export), limits=LIMITS)


@pytest.fixture(scope="module")
def good_client(corpus: Corpus, strict_server: ServerThread) -> Callable[[], None]:
    samples = corpus.samples(corpus.waves[0])
    expected = decode_waves(strict_server.server.recognizer.recognizer, [samples], num_streams=1)[0].text.strip()

    def check() -> None:
        transcript = asyncio.run(stream_samples(strict_server.url, samples, 0.1, real_time=False))
        assert transcript.text == expected and transcript.close_code == 1000

    return check


def audio(seconds: float, value: Optional[float] = None) -> bytes:
    samples = np.random.default_rng(0).uniform(-0.3, 0.3, int(seconds * 16000)).astype("<f4")
    if value is not None:
        samples[100] = value
    return samples.tobytes()


async def misbehave(url: str, action: Misbehaviour) -> Tuple[List[dict], Optional[int]]:
    """Connect, do ``action``, and collect what the server sent until it closed: (JSON messages, close code)."""
    messages: List[dict] = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            await action(ws)
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    messages.append(message.json())
            return messages, ws.close_code


async def send_text(ws) -> None:
    await ws.send_bytes(audio(0.5))
    await ws.send_str("hello")


async def send_odd_bytes(ws) -> None:
    await ws.send_bytes(b"\x00" * 4001)


async def send_nan(ws) -> None:
    await ws.send_bytes(audio(0.2, float("nan")))


async def send_infinity(ws) -> None:
    await ws.send_bytes(audio(0.2, float("-inf")))


async def send_int16_range(ws) -> None:
    await ws.send_bytes(audio(0.2, 20000.0))


async def send_oversized(ws) -> None:
    await ws.send_bytes(audio(2.0))  # 128,000 bytes > 64,000


async def send_nothing(ws) -> None:
    await asyncio.sleep(0)  # until the idle timeout


@pytest.mark.parametrize(
    "action, code, error",
    [
        (send_text, 1003, "the only text message is 'Done'"),
        (send_odd_bytes, 1007, "4001 bytes is not whole float32 samples"),
        (send_nan, 1007, "NaN or infinite"),
        (send_infinity, 1007, "NaN or infinite"),
        (send_int16_range, 1007, "magnitude 20000"),
        (send_oversized, 1009, None),
        (send_nothing, 1008, "--idle-timeout"),
    ],
    ids=["text", "odd-bytes", "nan", "infinity", "int16-range", "oversized", "idle"],
)
def test_a_bad_client_is_told_and_dropped(
    strict_server: ServerThread, good_client: Callable[[], None], caplog: pytest.LogCaptureFixture,
    action: Misbehaviour, code: int, error: Optional[str],
) -> None:
    caplog.set_level(logging.WARNING)
    messages, close_code = asyncio.run(misbehave(strict_server.url, action))
    assert close_code == code
    if error is not None:
        assert messages and error in messages[-1]["error"] and messages[-1]["code"] == code
    warnings = server_warnings(caplog)
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0]
    good_client()
    assert strict_server.health()["connections"] == 0


def server_warnings(caplog: pytest.LogCaptureFixture, wait_seconds: float = 5.0) -> List[str]:
    """The warnings logged so far, waiting up to `wait_seconds` for the first: the server thread may log its
    warning after the client has already seen the close."""
    deadline = time.monotonic() + wait_seconds
    while not any(record.levelno >= logging.WARNING for record in caplog.records) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def test_a_client_that_leaves_mid_utterance_is_dropped(
    strict_server: ServerThread, good_client: Callable[[], None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)

    async def leave() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(strict_server.url) as ws:
                for _ in range(5):
                    await ws.send_bytes(audio(0.3))
                await ws.receive(timeout=10)  # decoding has started

    asyncio.run(leave())
    good_client()
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "left before sending 'Done'" in warnings[0]
    health = strict_server.health()
    assert (health["connections"], health["streams"]) == (0, 0)


def test_clients_beyond_max_active_connections_get_503(strict_server: ServerThread, good_client: Callable[[], None]) -> None:
    async def crowd() -> int:
        async with aiohttp.ClientSession() as session:
            held = [await session.ws_connect(strict_server.url) for _ in range(LIMITS.max_active_connections)]
            assert strict_server.health()["connections"] == LIMITS.max_active_connections
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(strict_server.url)
            for ws in held:
                await ws.close()
            return refused.value.status

    assert asyncio.run(crowd()) == 503
    asyncio.run(asyncio.sleep(0.2))
    assert strict_server.health()["connections"] == 0
    good_client()
