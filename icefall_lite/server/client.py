"""Streaming a wave file to a server of sherpa-onnx's websocket protocol (this one or sherpa-onnx's own), in real
time or as fast as possible, and collecting the results with their arrival times.

Usage::

    transcript = asyncio.run(stream_samples("ws://127.0.0.1:6006/", samples, seconds_per_message=0.1))
    print(transcript.text)                  # the final text of every segment, joined
    for arrival, message in transcript.messages: ...
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import aiohttp
import numpy as np

from icefall_lite.export.inputs import SAMPLE_RATE
from icefall_lite.server.protocol import END_OF_AUDIO


@dataclass
class Transcript:
    """What the server sent for one stream.

    messages: (arrival time, JSON message) in arrival order; times are ``time.monotonic()``.
    sent: (time, seconds of audio sent by then) after each audio message.
    done_time: when ``Done`` was sent.
    close_code: the server's websocket close code.
    """

    messages: List[Tuple[float, Dict]] = field(default_factory=list)
    sent: List[Tuple[float, float]] = field(default_factory=list)
    done_time: float = 0.0
    close_code: Optional[int] = None

    @property
    def segments(self) -> List[str]:
        """The last text of each segment, in segment order (a segment's final result is its last message)."""
        last: Dict[int, str] = {}
        for _, message in self.messages:
            if "text" in message:
                last[message["segment"]] = message["text"]
        return [last[segment] for segment in sorted(last)]

    @property
    def text(self) -> str:
        return " ".join(segment for segment in self.segments if segment)

    @property
    def errors(self) -> List[str]:
        return [message["error"] for _, message in self.messages if "error" in message]

    def time_audio_sent(self, seconds: float) -> float:
        """When the client had sent at least ``seconds`` of audio (``done_time`` if never)."""
        return next((when for when, sent_seconds in self.sent if sent_seconds >= seconds - 1e-9), self.done_time)


async def stream_samples(
    url: str,
    samples: np.ndarray,
    seconds_per_message: float = 0.1,
    real_time: bool = True,
    on_message: Optional[Callable[[Dict], None]] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
) -> Transcript:
    """Send samples ((S,) float32 at 16 kHz) in messages of ``seconds_per_message``, each when its audio would have
    been recorded if ``real_time``, then ``Done``; return everything the server sent until it closed."""
    transcript = Transcript()
    step = max(1, int(seconds_per_message * SAMPLE_RATE))
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, max_msg_size=0, ssl=ssl_context) as ws:
            receiver = asyncio.create_task(_receive(ws, transcript, on_message))
            start = time.monotonic()
            for begin in range(0, len(samples), step):
                piece = samples[begin : begin + step]
                if real_time:
                    await asyncio.sleep(max(0.0, start + (begin + len(piece)) / SAMPLE_RATE - time.monotonic()))
                await ws.send_bytes(piece.astype("<f4").tobytes())
                transcript.sent.append((time.monotonic(), (begin + len(piece)) / SAMPLE_RATE))
            await ws.send_str(END_OF_AUDIO)
            transcript.done_time = time.monotonic()
            await receiver
            transcript.close_code = ws.close_code
    return transcript


async def _receive(ws: aiohttp.ClientWebSocketResponse, transcript: Transcript, on_message: Optional[Callable[[Dict], None]]) -> None:
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            continue
        result = json.loads(message.data)
        transcript.messages.append((time.monotonic(), result))
        if on_message is not None:
            on_message(result)
