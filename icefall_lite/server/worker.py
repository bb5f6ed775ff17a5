"""The decoding thread: it owns the recognizer, takes audio from the connections, decodes the streams that have
a chunk ready in batches and hands results back.

The event loop never computes: it queues commands (``open``, ``audio``, ``finish``, ``close``), which the worker
runs in order. Once some stream is ready, the worker waits up to ``max_wait_ms`` for more to become ready
(unless ``max_batch_size`` are), then decodes up to ``max_batch_size`` of them as one batch, those decoded longest
ago first. After each decoded chunk a stream's connection gets a partial result, or, at an endpoint, the final
result of its segment; after the end of its input and its last chunk, the final result of the last segment.

Usage::

    worker = DecodeWorker(recognizer, BatchingOptions(max_batch_size=50, max_wait_ms=10)); worker.start()
    session = Session("127.0.0.1:40000 #1", deliver=callback)     # callback(message, is_last), any thread
    worker.open(session); worker.audio(session, samples, on_consumed); worker.finish(session)
    worker.stop()
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

import numpy as np

from icefall_lite.server.protocol import INTERNAL_ERROR, result_message
from icefall_lite.server.recognizers import Recognizer

Deliver = Callable[[str, bool], None]
"""deliver(message, is_last): a JSON message for the connection; is_last after the final result of ``Done``."""


@dataclass(frozen=True)
class BatchingOptions:
    """``--max-batch-size`` streams at most per decoded batch; ``--max-wait-ms`` to wait for a fuller batch."""

    max_batch_size: int = 50
    max_wait_ms: float = 10.0


@dataclass(eq=False)
class Session:
    """One connection, as the worker sees it."""

    name: str
    deliver: Deliver
    stream: Any = None
    segment: int = 0
    chunks_decoded: int = 0
    input_done: bool = False
    last_decoded: float = 0.0


class DecodeWorker(threading.Thread):
    """See the module docstring. ``num_streams``, ``chunks_decoded`` and ``batches_decoded`` may be read from any
    thread."""

    def __init__(self, recognizer: Recognizer, batching: BatchingOptions) -> None:
        super().__init__(name="decode-worker", daemon=True)
        if batching.max_batch_size < 1:
            raise ValueError(f"--max-batch-size must be at least 1, got {batching.max_batch_size}")
        self.recognizer = recognizer
        self.batching = batching
        self.chunks_decoded = 0
        self.batches_decoded = 0
        self._sessions: List[Session] = []
        self._inbox: "queue.SimpleQueue[Optional[Callable[[], None]]]" = queue.SimpleQueue()
        self._batch_deadline: Optional[float] = None  # when the batch being gathered is decoded

    @property
    def num_streams(self) -> int:
        return len(self._sessions)

    # Called from the event loop: each queues a command.
    def open(self, session: Session) -> None:
        self._inbox.put(lambda: self._open(session))

    def audio(self, session: Session, samples: np.ndarray, on_consumed: Callable[[], None]) -> None:
        """samples: (S,) float32 at 16 kHz; ``on_consumed()`` is called (in the worker) once they are taken."""
        self._inbox.put(lambda: self._accept(session, samples, on_consumed))

    def finish(self, session: Session) -> None:
        self._inbox.put(lambda: self._finish(session))

    def close(self, session: Session) -> None:
        """The client left: drop its stream (nothing more is delivered)."""
        self._inbox.put(lambda: self._close(session))

    def stop(self) -> None:
        self._inbox.put(None)
        self.join()

    def run(self) -> None:
        while self._run_commands(wait=self._wait_timeout()):
            self._decode_if_due()

    def _run_commands(self, wait: Optional[float]) -> bool:
        """Run the queued commands, waiting up to ``wait`` seconds (None: until one comes) for the first; False
        after ``stop``."""
        try:
            command = self._inbox.get(timeout=wait)
        except queue.Empty:
            return True
        while command is not None:
            command()
            try:
                command = self._inbox.get_nowait()
            except queue.Empty:
                return True
        return False

    def _wait_timeout(self) -> Optional[float]:
        """None (wait for commands) when no stream is ready, else the time left until the batch is due."""
        if self._batch_deadline is None:
            return None
        return max(0.0, self._batch_deadline - time.monotonic())

    def _decode_if_due(self) -> None:
        ready = [session for session in self._sessions if self.recognizer.is_ready(session.stream)]
        if not ready:
            self._batch_deadline = None
            return
        if self._batch_deadline is None:
            self._batch_deadline = time.monotonic() + self.batching.max_wait_ms / 1000
        if len(ready) < self.batching.max_batch_size and self._wait_timeout() > 0:
            return
        ready.sort(key=lambda session: session.last_decoded)
        self._decode(ready[: self.batching.max_batch_size])
        still_ready = any(self.recognizer.is_ready(session.stream) for session in self._sessions)
        self._batch_deadline = time.monotonic() if still_ready else None  # a backlog is decoded without waiting

    def _decode(self, batch: List[Session]) -> None:
        try:
            self.recognizer.decode([session.stream for session in batch])
        except Exception:  # a bug, not a client's fault: drop these connections, keep serving the others
            logging.exception(f"decoding failed for {[session.name for session in batch]}")
            for session in batch:
                session.deliver(json.dumps({"error": "internal error while decoding", "code": INTERNAL_ERROR}), True)
                self._close(session)
            return
        now = time.monotonic()
        self.chunks_decoded += len(batch)
        self.batches_decoded += 1
        for session in batch:
            session.chunks_decoded += 1
            session.last_decoded = now
            self._report(session)

    def _report(self, session: Session) -> None:
        decoded_seconds = session.chunks_decoded * self.recognizer.chunk_seconds
        text = self.recognizer.text(session.stream)
        endpoint = self.recognizer.is_endpoint(session.stream)
        if endpoint:
            if text:  # a segment of nothing is not one (sherpa-onnx's Reset does not count it either)
                session.deliver(result_message(text, session.segment, True, decoded_seconds), False)
                session.segment += 1
            self.recognizer.reset(session.stream)
            text = ""
        if session.input_done and not self.recognizer.is_ready(session.stream):
            self._end(session, text, decoded_seconds)
        elif not endpoint:
            session.deliver(result_message(text, session.segment, False, decoded_seconds), False)

    def _end(self, session: Session, text: str, decoded_seconds: float) -> None:
        self._close(session)  # first, so that a client that has its final result sees the stream gone
        session.deliver(result_message(text, session.segment, True, decoded_seconds), True)

    def _open(self, session: Session) -> None:
        session.stream = self.recognizer.create_stream(session.name)
        self._sessions.append(session)

    def _accept(self, session: Session, samples: np.ndarray, on_consumed: Callable[[], None]) -> None:
        on_consumed()
        if session in self._sessions:
            self.recognizer.accept_waveform(session.stream, samples)

    def _finish(self, session: Session) -> None:
        if session not in self._sessions:
            return
        session.input_done = True
        self.recognizer.input_finished(session.stream)
        if not self.recognizer.is_ready(session.stream):
            decoded_seconds = session.chunks_decoded * self.recognizer.chunk_seconds
            self._end(session, self.recognizer.text(session.stream), decoded_seconds)

    def _close(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
            self.recognizer.release(session.stream)
