"""One websocket client: audio to the worker, results back, and the limits that keep a bad client from hurting
the others.

| client does | server answers |
|---|---|
| a text message other than ``Done`` | ``{"error"}``, close 1003 |
| a binary message not whole float32 samples; NaN, infinite or far out-of-range samples | ``{"error"}``, close 1007 |
| a message over ``--max-message-size`` | close 1009 (aiohttp refuses it before it is read) |
| nothing for ``--idle-timeout`` seconds before ``Done`` | ``{"error"}``, close 1008 |
| leaves before ``Done`` | its stream is dropped |
| sends faster than it is decoded | reading pauses after ``--max-queue-size`` queued messages (TCP back-pressure) |

Each fault is logged once, naming the connection; other connections go on.

Usage (in an aiohttp handler)::

    await Connection(ws, "127.0.0.1:40000 #1", worker, limits).serve()
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Tuple

from aiohttp import WSMsgType, web

from icefall_lite.server.protocol import (
    END_OF_AUDIO,
    MESSAGE_TOO_BIG,
    POLICY_VIOLATION,
    ClientError,
    error_message,
    parse_samples,
    refuse_text,
)
from icefall_lite.server.worker import DecodeWorker, Session

MAX_CLOSE_REASON_BYTES = 123  # what a websocket close frame holds


@dataclass(frozen=True)
class ConnectionLimits:
    """``--max-active-connections --max-message-size --idle-timeout --max-queue-size``."""

    max_active_connections: int = 200
    max_message_size: int = 1 << 20
    idle_timeout: float = 20.0
    max_queue_size: int = 32


class ClientLeft(Exception):
    """The client closed the connection (or it broke) before ``Done``."""


class Connection:
    def __init__(self, ws: web.WebSocketResponse, name: str, worker: DecodeWorker, limits: ConnectionLimits) -> None:
        self.ws = ws
        self.name = name
        self.worker = worker
        self.limits = limits
        self._loop = asyncio.get_running_loop()
        self._results: "asyncio.Queue[Tuple[str, bool]]" = asyncio.Queue()
        self._queue_slots = asyncio.Semaphore(limits.max_queue_size)
        self._session = Session(name, deliver=self._deliver_from_worker)

    async def serve(self) -> None:
        """Until the final result is sent, or the client is dropped; the stream is released either way."""
        self.worker.open(self._session)
        sender = asyncio.create_task(self._send_results())
        try:
            await self._receive_audio()
            await sender
            await self.ws.close()
        except ClientError as error:
            logging.warning(str(error))
            await self._refuse(error)
        except ClientLeft as reason:
            logging.warning(f"{self.name}: {reason}")
        except ConnectionError as error:
            logging.warning(f"{self.name}: the client left before its final result ({type(error).__name__})")
        finally:
            sender.cancel()
            self.worker.close(self._session)

    async def _receive_audio(self) -> None:
        """Pass audio to the worker until ``Done``."""
        while True:
            message = await self._next_message()
            if message.type == WSMsgType.BINARY:
                samples = parse_samples(message.data, self.name)
                await self._queue_slots.acquire()
                self.worker.audio(self._session, samples, self._queue_slot_freed_in_worker)
            elif message.type == WSMsgType.TEXT:
                if message.data != END_OF_AUDIO:
                    raise refuse_text(message.data, self.name)
                self.worker.finish(self._session)
                return
            elif message.type == WSMsgType.ERROR and getattr(message.data, "code", None) == MESSAGE_TOO_BIG:
                raise ClientLeft(f"closed with code {MESSAGE_TOO_BIG}: {message.data} (the limit is --max-message-size)")
            else:
                raise ClientLeft(f"the client left before sending {END_OF_AUDIO!r} ({message.type.name})")

    async def _next_message(self):
        try:
            return await self.ws.receive(timeout=self.limits.idle_timeout)
        except asyncio.TimeoutError:
            raise ClientError(
                f"{self.name}: no message for {self.limits.idle_timeout:g} s (--idle-timeout); send audio, then {END_OF_AUDIO!r}",
                POLICY_VIOLATION,
            ) from None

    async def _send_results(self) -> None:
        while True:
            message, is_last = await self._results.get()
            await self.ws.send_str(message)
            if is_last:
                return

    async def _refuse(self, error: ClientError) -> None:
        if self.ws.closed:
            return
        try:
            await self.ws.send_str(error_message(error))
            reason = error.message.encode("utf-8")[:MAX_CLOSE_REASON_BYTES]
            await self.ws.close(code=error.code, message=reason)
        except ConnectionError:
            pass  # the client is gone already

    def _deliver_from_worker(self, message: str, is_last: bool) -> None:
        self._loop.call_soon_threadsafe(self._results.put_nowait, (message, is_last))

    def _queue_slot_freed_in_worker(self) -> None:
        self._loop.call_soon_threadsafe(self._queue_slots.release)
