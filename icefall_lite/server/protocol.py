"""The messages of sherpa-onnx's streaming websocket server, which this server speaks so that its clients work.

Client to server: binary messages of float32 little-endian samples (16 kHz mono, in [-1, 1]), then the text
message ``Done``. Server to client: JSON text messages ``{"text", "segment", "is_final", "decoded_seconds"}``
after every decoded chunk (partial results, ``is_final`` false) and when a segment ends (endpoint or ``Done``,
``is_final`` true); after the final result of ``Done`` the server closes the connection. A client at fault gets
``{"error": ..., "code": N}`` and the connection is closed with websocket close code N.

Usage::

    samples = parse_samples(message.data, connection="127.0.0.1:5000 #3")   # (S,) float32 or ClientError
    await ws.send_str(result_message(text, segment=0, is_final=False, decoded_seconds=1.28))
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

END_OF_AUDIO = "Done"
SAMPLE_BYTES = 4
MAX_ABS_SAMPLE = 10.0
"""Samples beyond this are not audio in [-1, 1] (typically int16 values sent as float32): refused. Overshoot a
little past 1 (resamplers, clipping) is accepted, as icefall's streaming_decode.py accepts |x| <= 10."""

UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011


@dataclass
class ClientError(Exception):
    """What a client did wrong: ``message`` names the connection and the fault; ``code`` is the close code."""

    message: str
    code: int

    def __str__(self) -> str:
        return self.message


def parse_samples(data: bytes, connection: str) -> np.ndarray:
    """A binary message -> (len(data) / 4,) float32 samples; ClientError (1007) if its length is not a multiple
    of 4, or it holds NaN, infinite or far out-of-range values."""
    if len(data) % SAMPLE_BYTES != 0:
        raise ClientError(
            f"{connection}: a binary message of {len(data)} bytes is not whole float32 samples (a multiple of 4 bytes)",
            INVALID_PAYLOAD,
        )
    samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise ClientError(f"{connection}: {bad} of {samples.size} samples are NaN or infinite", INVALID_PAYLOAD)
    largest = float(np.abs(samples).max()) if samples.size else 0.0
    if largest > MAX_ABS_SAMPLE:
        raise ClientError(
            f"{connection}: samples must be float32 in [-1, 1], got a value of magnitude {largest:g} "
            f"(int16 audio must be divided by 32768)",
            INVALID_PAYLOAD,
        )
    return samples


def refuse_text(text: str, connection: str) -> ClientError:
    """The error for a text message other than ``Done``."""
    shown = text if len(text) <= 40 else text[:40] + "..."
    return ClientError(f"{connection}: the only text message is {END_OF_AUDIO!r}, got {shown!r}", UNSUPPORTED_DATA)


def result_message(text: str, segment: int, is_final: bool, decoded_seconds: float) -> str:
    """A result as JSON: the text of segment ``segment`` so far (or final), and the seconds of the connection's
    audio decoded when it was computed."""
    return json.dumps({"text": text, "segment": segment, "is_final": is_final, "decoded_seconds": round(decoded_seconds, 3)})


def error_message(error: ClientError) -> str:
    return json.dumps({"error": error.message, "code": error.code})
