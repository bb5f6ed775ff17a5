"""Decoding audio with sherpa-onnx's streaming recognizer and the files of ``export-onnx.py``.

Files are decoded the way a sherpa-onnx server handles its connections: up to ``num_streams`` streams at once,
each step decodes one chunk of every ready stream as one batch, and a finished stream's slot goes to the next
file. Each file is accepted whole, followed by ``tail_seconds`` of silence so that its last words are decoded.

Usage::

    recognizer = make_recognizer(OnnxPaths(encoder, decoder, joiner), Path("tokens.txt"), num_threads=1)
    results = decode_waves(recognizer, [samples1, samples2], num_streams=2)    # samples: (S,) float32 at 16 kHz
    print(results[0].text, results[0].tokens)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import sherpa_onnx

from icefall_lite.export.inputs import SAMPLE_RATE
from icefall_lite.export.onnx_export import OnnxPaths

DEFAULT_TAIL_SECONDS = 0.3


@dataclass(frozen=True)
class SherpaResult:
    """What sherpa-onnx recognized in one file: the text and its tokens (BPE pieces)."""

    text: str
    tokens: List[str]


def make_recognizer(
    paths: OnnxPaths,
    tokens: Path,
    num_threads: int,
    decoding_method: str = "greedy_search",
    max_active_paths: int = 4,
    **recognizer_options: object,
) -> sherpa_onnx.OnlineRecognizer:
    """A sherpa-onnx OnlineRecognizer for one export; missing files are named before sherpa-onnx sees them.
    ``recognizer_options``: further keyword arguments of ``OnlineRecognizer.from_transducer`` (e.g. endpointing)."""
    missing = [str(path) for path in [*paths.as_list(), tokens] if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"sherpa-onnx needs these files, which do not exist: {', '.join(missing)}")
    return sherpa_onnx.OnlineRecognizer.from_transducer(
        tokens=str(tokens),
        encoder=str(paths.encoder),
        decoder=str(paths.decoder),
        joiner=str(paths.joiner),
        num_threads=num_threads,
        sample_rate=SAMPLE_RATE,
        decoding_method=decoding_method,
        max_active_paths=max_active_paths,
        **recognizer_options,
    )


def open_stream(
    recognizer: sherpa_onnx.OnlineRecognizer, samples: np.ndarray, tail_seconds: float = DEFAULT_TAIL_SECONDS
) -> sherpa_onnx.OnlineStream:
    """A stream holding the whole file (samples: (S,) float32 in [-1, 1]) and the silent tail, input finished."""
    stream = recognizer.create_stream()
    stream.accept_waveform(SAMPLE_RATE, samples)
    stream.accept_waveform(SAMPLE_RATE, np.zeros(int(tail_seconds * SAMPLE_RATE), dtype=np.float32))
    stream.input_finished()
    return stream


def decode_waves(
    recognizer: sherpa_onnx.OnlineRecognizer,
    waves: Sequence[np.ndarray],
    num_streams: int,
    tail_seconds: float = DEFAULT_TAIL_SECONDS,
) -> List[SherpaResult]:
    """Decode every wave (each (S,) float32 at 16 kHz), ``num_streams`` at a time; results in input order."""
    if num_streams < 1:
        raise ValueError(f"num_streams must be >= 1, got {num_streams}")
    pending = iter(enumerate(waves))
    active: Dict[int, sherpa_onnx.OnlineStream] = {}
    results: Dict[int, SherpaResult] = {}
    while True:
        while len(active) < num_streams:
            index_and_wave = next(pending, None)
            if index_and_wave is None:
                break
            index, wave = index_and_wave
            active[index] = open_stream(recognizer, wave, tail_seconds)
        if not active:
            return [results[index] for index in range(len(waves))]
        for index, stream in list(active.items()):
            if not recognizer.is_ready(stream):
                result = recognizer.get_result_all(stream)
                results[index] = SherpaResult(text=result.text, tokens=list(result.tokens))
                del active[index]
        if active:
            recognizer.decode_streams(list(active.values()))
