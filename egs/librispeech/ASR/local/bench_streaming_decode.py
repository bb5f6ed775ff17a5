#!/usr/bin/env python3
"""Real-time factor of streaming decoding (streaming_decode.py's path) and of the whole-utterance masked
encoder forward (decode.py's), for the default 70 M model with random weights.

Streaming: utterances of random noise (durations uniform in [--min-seconds, --max-seconds]) are decoded by
``decode_streams`` exactly as streaming_decode.py does: audio fed in pieces of --decode-chunk-len frames, fbank
computed as it arrives, chunks of --decode-chunk-len + 7 frames through ``streaming_forward`` for all active
streams at once, search, slots refilled as utterances end. RTF = wall time / audio time, for each
--num-decode-streams; the time inside ``streaming_forward`` and the search is reported separately (the rest
is fbank, chunk cutting, state bookkeeping).

Masked forward: each utterance alone (batch 1) through the eval-mode encoder with the 30 tail-padding frames,
features computed beforehand (not timed).

The model's weights are random, so the hypotheses are meaningless; what is timed is the same work as for a
trained model of the same size (the search's cost depends a little on how many tokens it emits).

Example (the numbers in docs/BENCHMARKS.md):
  python egs/librispeech/ASR/local/bench_streaming_decode.py --num-threads 1
"""

import argparse
import contextlib
import os
import time
from typing import Callable, Dict, Iterator, List

import torch

from icefall_lite.data.features import make_fbank
from icefall_lite.decoding.features import append_tail_padding
from icefall_lite.decoding.methods import STREAMING_DECODING_METHODS, SearchOptions, make_search
from icefall_lite.decoding.streaming import DecodeStream, StreamingDecoder, decode_streams
from icefall_lite.model.config import TransducerConfig, ZipformerConfig
from icefall_lite.model.transducer import Transducer

SAMPLING_RATE = 16000


def get_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--num-utterances", type=int, default=32, help="utterances to decode (default 32)")
    parser.add_argument("--min-seconds", type=float, default=4.0, help="shortest utterance (default 4)")
    parser.add_argument("--max-seconds", type=float, default=12.0, help="longest utterance (default 12)")
    parser.add_argument(
        "--num-decode-streams", type=int, nargs="+", default=[1, 8, 32], help="pool sizes to measure (default 1 8 32)"
    )
    parser.add_argument("--decode-chunk-len", type=int, default=32, help="fbank frames per chunk (default 32 = 320 ms)")
    parser.add_argument("--decoding-method", choices=STREAMING_DECODING_METHODS, default="greedy_search")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


class Stopwatch:
    """Accumulated wall time of the wrapped calls."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


@contextlib.contextmanager
def timing(obj: object, name: str, stopwatch: Stopwatch) -> Iterator[None]:
    """Time every call of ``obj.name`` (an instance attribute shadows the method while inside)."""
    setattr(obj, name, stopwatch.wrap(getattr(obj, name)))
    try:
        yield
    finally:
        delattr(obj, name)


def random_utterances(args: argparse.Namespace) -> List[torch.Tensor]:
    """Noise with a slowly varying envelope, so that the fbank is not stationary."""
    generator = torch.Generator().manual_seed(args.seed)
    utterances = []
    for _ in range(args.num_utterances):
        seconds = args.min_seconds + (args.max_seconds - args.min_seconds) * float(torch.rand((), generator=generator))
        num_samples = int(seconds * SAMPLING_RATE)
        envelope = torch.rand(num_samples // 1600 + 2, generator=generator).repeat_interleave(1600)[:num_samples]
        utterances.append(torch.randn(num_samples, generator=generator) * 0.1 * envelope)
    return utterances


def bench_streaming(model: Transducer, args: argparse.Namespace, audios: List[torch.Tensor], num_streams: int) -> Dict[str, float]:
    search = make_search(args.decoding_method, model, SearchOptions(), unk_id=2)
    decoder = StreamingDecoder(model, search, num_streams)
    encoder_time, search_time = Stopwatch(), Stopwatch()
    streams = (DecodeStream(str(i), args.decode_chunk_len, audio=audio) for i, audio in enumerate(audios))
    with timing(model.encoder, "streaming_forward", encoder_time), timing(search, "advance", search_time):
        start = time.perf_counter()
        finished = sum(1 for _ in decode_streams(decoder, streams))
        elapsed = time.perf_counter() - start
    assert finished == len(audios)
    audio_seconds = sum(audio.numel() for audio in audios) / SAMPLING_RATE
    return {
        "rtf": elapsed / audio_seconds,
        "encoder": encoder_time.seconds / audio_seconds,
        "search": search_time.seconds / audio_seconds,
        "other": (elapsed - encoder_time.seconds - search_time.seconds) / audio_seconds,
    }


@torch.no_grad()
def bench_masked_forward(model: Transducer, audios: List[torch.Tensor]) -> float:
    fbank = make_fbank()
    features = [fbank.extract(audio, SAMPLING_RATE) for audio in audios]
    elapsed = 0.0
    for feature in features:
        x, x_lens = append_tail_padding(
            feature.unsqueeze(0), torch.tensor([feature.size(0)]), chunk_len=2 * model.encoder.decode_chunk_size
        )
        start = time.perf_counter()
        model.encoder(x, x_lens)
        elapsed += time.perf_counter() - start
    return elapsed / (sum(audio.numel() for audio in audios) / SAMPLING_RATE)


def main() -> None:
    args = get_args()
    torch.set_num_threads(args.num_threads)
    torch.manual_seed(args.seed)
    config = TransducerConfig(vocab_size=500, encoder=ZipformerConfig(decode_chunk_size=args.decode_chunk_len // 2))
    model = Transducer(config).eval()
    audios = random_utterances(args)
    audio_seconds = sum(audio.numel() for audio in audios) / SAMPLING_RATE
    print(
        f"{sum(p.numel() for p in model.parameters())} parameters, {len(audios)} utterances, {audio_seconds:.0f} s of "
        f"audio, chunk {args.decode_chunk_len * 10} ms, {args.decoding_method}, {torch.get_num_threads()} thread(s), "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    bench_streaming(model, args, audios[:2], num_streams=2)  # warm-up, not reported
    print("| mode | streams | RTF | encoder | search | fbank + bookkeeping |")
    print("|---|---|---|---|---|---|")
    for num_streams in args.num_decode_streams:
        r = bench_streaming(model, args, audios, num_streams)
        print(f"| streaming | {num_streams} | {r['rtf']:.3f} | {r['encoder']:.3f} | {r['search']:.3f} | {r['other']:.3f} |")
    print(f"| masked whole-utterance forward | 1 | {bench_masked_forward(model, audios):.3f} | | | |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
