"""The two back-ends of the server behind one interface: an export through sherpa-onnx's recognizer, or a
checkpoint through this project's ``StreamingDecoder``.

A ``Recognizer`` is used from one thread (the server's worker). Its streams are opaque handles: audio goes in
(``accept_waveform``, ``input_finished``), ``decode`` advances a batch of ready streams by one chunk, and
``text`` / ``is_endpoint`` / ``reset`` read and end segments. Both add the same silent tail as their offline
decoders (sherpa_onnx_decode.py: 0.3 s of zeros; streaming_decode.py: 30 frames of silence), so that a stream's
final text is what those scripts give for the same audio.

Usage::

    recognizer = SherpaRecognizer(OnnxPaths(enc, dec, joi), Path("tokens.txt"), EndpointRules(), num_threads=1)
    stream = recognizer.create_stream("client-1")
    recognizer.accept_waveform(stream, samples)           # (S,) float32 at 16 kHz
    while recognizer.is_ready(stream):
        recognizer.decode([stream])
    print(recognizer.text(stream))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

from icefall_lite.data.features import make_fbank
from icefall_lite.decoding.features import OnlineFbank
from icefall_lite.decoding.search import TransducerSearch
from icefall_lite.decoding.streaming import DecodeStream, StreamingDecoder
from icefall_lite.export.inputs import FRAME_SHIFT_SECONDS, SAMPLE_RATE, tokens_to_text
from icefall_lite.export.onnx_export import OnnxPaths, read_metadata
from icefall_lite.export.sherpa import DEFAULT_TAIL_SECONDS, make_recognizer
from icefall_lite.model.transducer import Transducer
from icefall_lite.server.endpoint import EndpointRules

FEATURE_FRAMES_PER_ENCODER_FRAME = 4
"""The encoder's output rate (40 ms): how sherpa-onnx turns trailing blank frames into seconds."""


class Recognizer(ABC):
    """Streams decoded chunk by chunk, in batches; ``chunk_seconds`` of audio per decoded chunk."""

    name: str
    chunk_seconds: float

    @abstractmethod
    def create_stream(self, stream_id: str) -> Any:
        """A new stream (its connection's name is ``stream_id``)."""

    @abstractmethod
    def accept_waveform(self, stream: Any, samples: np.ndarray) -> None:
        """samples: (S,) float32 in [-1, 1] at 16 kHz."""

    @abstractmethod
    def input_finished(self, stream: Any) -> None:
        """No more audio: the silent tail goes in, the last chunks become ready."""

    @abstractmethod
    def is_ready(self, stream: Any) -> bool:
        """A chunk can be decoded."""

    @abstractmethod
    def decode(self, streams: List[Any]) -> None:
        """One chunk of each of ``streams`` (all ready), as one batch."""

    @abstractmethod
    def text(self, stream: Any) -> str:
        """The current segment's text so far."""

    @abstractmethod
    def is_endpoint(self, stream: Any) -> bool:
        """The current segment has ended (the endpoint rules)."""

    @abstractmethod
    def reset(self, stream: Any) -> None:
        """Start a new segment (after an endpoint)."""

    @abstractmethod
    def release(self, stream: Any) -> None:
        """The stream is no longer needed (finished, or its client left)."""


class SherpaRecognizer(Recognizer):
    """export-onnx.py's files decoded by sherpa-onnx's ``OnlineRecognizer`` with its own endpointing."""

    name = "sherpa-onnx"

    def __init__(
        self, paths: OnnxPaths, tokens: Path, rules: EndpointRules, num_threads: int = 1,
        decoding_method: str = "greedy_search", num_active_paths: int = 4,
    ) -> None:
        self.recognizer = make_recognizer(
            paths, tokens, num_threads, decoding_method, num_active_paths, **rules.sherpa_options()
        )
        self.chunk_seconds = int(read_metadata(paths.encoder)["decode_chunk_len"]) * FRAME_SHIFT_SECONDS
        self._tail = np.zeros(int(DEFAULT_TAIL_SECONDS * SAMPLE_RATE), dtype=np.float32)

    def create_stream(self, stream_id: str) -> Any:
        return self.recognizer.create_stream()

    def accept_waveform(self, stream: Any, samples: np.ndarray) -> None:
        stream.accept_waveform(SAMPLE_RATE, samples)

    def input_finished(self, stream: Any) -> None:
        stream.accept_waveform(SAMPLE_RATE, self._tail)
        stream.input_finished()

    def is_ready(self, stream: Any) -> bool:
        return self.recognizer.is_ready(stream)

    def decode(self, streams: List[Any]) -> None:
        self.recognizer.decode_streams(streams)

    def text(self, stream: Any) -> str:
        return self.recognizer.get_result(stream).strip()

    def is_endpoint(self, stream: Any) -> bool:
        return self.recognizer.is_endpoint(stream)

    def reset(self, stream: Any) -> None:
        self.recognizer.reset(stream)

    def release(self, stream: Any) -> None:
        """sherpa-onnx frees a stream with its last reference."""


class CheckpointRecognizer(Recognizer):
    """A trained model (e.g. from ``--epoch/--avg``) decoded by ``StreamingDecoder`` in ``num_slots`` slots,
    one per connection; the endpoint rules are applied to its best hypothesis; ``table``: tokens.txt."""

    name = "checkpoint"

    def __init__(
        self, model: Transducer, search: TransducerSearch, table: Dict[int, str], rules: EndpointRules, num_slots: int
    ) -> None:
        self.decoder = StreamingDecoder(model, search, num_slots)
        self.table = table
        self.rules = rules
        self.chunk_seconds = self.decoder.chunk_len * FRAME_SHIFT_SECONDS
        self._fbank = make_fbank()
        self._segment_start: Dict[DecodeStream, int] = {}  # first feature frame of each stream's segment

    def create_stream(self, stream_id: str) -> DecodeStream:
        stream = DecodeStream(stream_id, self.decoder.chunk_len, fbank=OnlineFbank(self._fbank))
        self.decoder.add(stream)
        self._segment_start[stream] = 0
        return stream

    def accept_waveform(self, stream: DecodeStream, samples: np.ndarray) -> None:
        stream.accept_waveform(torch.from_numpy(samples))

    def input_finished(self, stream: DecodeStream) -> None:
        stream.input_finished()

    def is_ready(self, stream: DecodeStream) -> bool:
        return stream.ready

    def decode(self, streams: List[DecodeStream]) -> None:
        self.decoder.decode(streams)

    def text(self, stream: DecodeStream) -> str:
        return tokens_to_text(self.decoder.best_tokens([stream])[0], self.table)

    def is_endpoint(self, stream: DecodeStream) -> bool:
        if not self.rules.enabled:
            return False
        segment_seconds = (stream.offset - self._segment_start[stream]) * FRAME_SHIFT_SECONDS
        trailing_frames = self.decoder.trailing_blank_frames([stream])[0] * FEATURE_FRAMES_PER_ENCODER_FRAME
        return self.rules.is_endpoint(segment_seconds, trailing_frames * FRAME_SHIFT_SECONDS)

    def reset(self, stream: DecodeStream) -> None:
        self.decoder.start_segment(stream)
        self._segment_start[stream] = stream.offset

    def release(self, stream: DecodeStream) -> None:
        self.decoder.remove(stream)
        del self._segment_start[stream]
