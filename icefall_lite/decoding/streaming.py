"""Real chunk-wise streaming decoding of many utterances at once.

A ``DecodeStream`` is one utterance: audio arrives (``accept_waveform``, or pieces of a queued waveform),
fbank frames are computed as it arrives, and the encoder takes ``chunk_len + 7`` frames at a time, advancing
by ``chunk_len`` (the 7 overlap the next chunk: the front end's receptive field). After the input ends, the
stream gets the same 30 tail-padding frames as decode.py and, like decode.py and sherpa-onnx, decodes whole
windows only, so both decoders see the same frames.

A ``StreamingDecoder`` holds a fixed number of slots. Every ``step`` gathers one chunk from each stream that
has one ready, runs the encoder's ``streaming_forward`` and the search on all of them as one batch, and returns
the streams that finished; their slots take new streams. Encoder states and search states live in batched
tensors indexed by slot, so a step does no per-stream tensor work beyond cutting the chunk.

Usage::

    decoder = StreamingDecoder(model, GreedySearch(model), num_slots=50)
    streams = (DecodeStream(cut.id, chunk_len=32, audio=load_cut_samples(cut, 16000)) for cut in cuts)
    for stream, tokens in decode_streams(decoder, streams):      # files: audio fed chunk by chunk
        ...

    live = DecodeStream("mic", chunk_len=32)                     # audio as it arrives
    decoder.add(live)
    live.accept_waveform(samples); finished = decoder.step(); ...; live.input_finished()

    decoder.decode([live]) if live.ready else None               # a server: decode the streams it picks,
    partial = decoder.best_tokens([live])[0]                     # read partial results, and after an endpoint
    decoder.start_segment(live); ...; decoder.remove(live)       # (trailing_blank_frames) start a new segment
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import sentencepiece as spm
import torch
from lhotse.cut import Cut
from torch import Tensor

from icefall_lite.data.features import make_fbank
from icefall_lite.decoding.features import SILENCE_LOG_ENERGY, TAIL_PADDING_FRAMES, OnlineFbank, load_cut_samples
from icefall_lite.decoding.search import TransducerSearch
from icefall_lite.decoding.wer import Result
from icefall_lite.model.encoder_state import state_batch_dim
from icefall_lite.model.subsampling import SUBSAMPLING_CONTEXT
from icefall_lite.model.transducer import Transducer

LOG_INTERVAL_CUTS = 50


class DecodeStream:
    """One utterance being decoded.

    Args:
      stream_id: returned with the result (e.g. the cut id).
      chunk_len: fbank frames per chunk (``--decode-chunk-len``, 32 = 320 ms).
      audio: (S,) float samples to feed as if arriving in pieces of ``chunk_len`` frames (``fill``), or None
        for a live stream fed through ``accept_waveform`` / ``input_finished``.
    """

    def __init__(self, stream_id: str, chunk_len: int, audio: Optional[Tensor] = None, fbank: Optional[OnlineFbank] = None) -> None:
        self.stream_id = stream_id
        self.chunk_len = chunk_len
        self.window = chunk_len + SUBSAMPLING_CONTEXT
        self.fbank = fbank if fbank is not None else OnlineFbank()
        self.features = torch.zeros(0, self.fbank.num_features)
        self.num_frames = 0  # frames in self.features
        self.offset = 0  # first frame of the next chunk
        self.input_done = False
        self.num_samples = 0
        self._queued_audio = audio
        self._queued_offset = 0

    @property
    def duration(self) -> float:
        """Seconds of audio received so far."""
        return self.num_samples / self.fbank.sampling_rate

    def accept_waveform(self, samples: Tensor) -> None:
        """samples: (S,) float in [-1, 1] at the fbank's sample rate."""
        self.num_samples += samples.numel()
        self._append(self.fbank.accept_waveform(samples))

    def input_finished(self) -> None:
        """No more audio: compute the last frames and append the tail padding."""
        self._append(self.fbank.input_finished())
        self._append(torch.full((TAIL_PADDING_FRAMES, self.fbank.num_features), SILENCE_LOG_ENERGY))
        self.input_done = True

    def fill(self) -> None:
        """Feed queued audio, a chunk's worth at a time, until a chunk is ready or the audio is used up."""
        if self._queued_audio is None:
            return
        piece = self.chunk_len * self.fbank.window_shift
        while not self.ready and self._queued_offset < self._queued_audio.numel():
            self.accept_waveform(self._queued_audio[self._queued_offset : self._queued_offset + piece])
            self._queued_offset += piece
        if not self.ready and not self.input_done:
            self.input_finished()

    @property
    def ready(self) -> bool:
        """A chunk can be taken: a whole window has arrived."""
        return self.num_frames >= self.offset + self.window

    @property
    def done(self) -> bool:
        """The input ended and the remaining frames do not fill a window (see ``whole_chunk_frames``)."""
        return self.input_done and not self.ready

    def next_chunk(self) -> Tensor:
        """(chunk_len + 7, num_features) float: the next window of frames; advances by chunk_len."""
        chunk = self.features[self.offset : self.offset + self.window]
        self.offset += self.chunk_len
        return chunk

    def _append(self, frames: Tensor) -> None:
        needed = self.num_frames + frames.size(0)
        if needed > self.features.size(0):
            grown = torch.empty(max(needed, 2 * self.features.size(0)), self.features.size(1))
            grown[: self.num_frames] = self.features[: self.num_frames]
            self.features = grown
        self.features[self.num_frames : needed] = frames
        self.num_frames = needed


class StreamingDecoder:
    """A pool of ``num_slots`` streams decoded together, chunk by chunk (see the module docstring).

    The encoder states of all slots are allocated up front: about 2 MB per slot for the default model at
    320 ms chunks (attention caches of 4 left chunks and the convolution caches of 15 layers).
    """

    def __init__(self, model: Transducer, search: TransducerSearch, num_slots: int) -> None:
        if num_slots < 1:
            raise ValueError(f"--num-decode-streams must be at least 1, got {num_slots}")
        self.model = model
        self.search = search
        self.device = next(model.parameters()).device
        self.streams: List[Optional[DecodeStream]] = [None] * num_slots
        encoder = model.encoder
        self.chunk_len = 2 * encoder.decode_chunk_size
        self.num_stacks = len(encoder.encoders)
        self._init_state = encoder.get_init_state(self.device)
        self.states = [
            state.repeat_interleave(num_slots, dim=state_batch_dim(i, self.num_stacks))
            for i, state in enumerate(self._init_state)
        ]
        self.search_state: Any = search.init_state(num_slots)

    @property
    def num_slots(self) -> int:
        return len(self.streams)

    @property
    def num_active(self) -> int:
        return sum(stream is not None for stream in self.streams)

    @property
    def has_free_slot(self) -> bool:
        return any(stream is None for stream in self.streams)

    def add(self, stream: DecodeStream) -> None:
        """Put a new stream into a free slot (fresh encoder and search state)."""
        if stream.chunk_len != self.chunk_len:
            raise ValueError(
                f"stream {stream.stream_id} has chunks of {stream.chunk_len} frames, but the model's encoder caches "
                f"were sized for --decode-chunk-len {self.chunk_len}"
            )
        slot = self.streams.index(None)
        index = torch.tensor([slot], device=self.device)
        for i, (state, initial) in enumerate(zip(self.states, self._init_state)):
            state.index_copy_(state_batch_dim(i, self.num_stacks), index, initial)
        self.search.reset_rows(self.search_state, [slot])
        self.streams[slot] = stream

    def remove(self, stream: DecodeStream) -> None:
        """Free the slot of ``stream`` (e.g. its client went away before the end of its input)."""
        self.streams[self._slot(stream)] = None

    @torch.no_grad()
    def step(self) -> List[Tuple[DecodeStream, List[int]]]:
        """Decode one chunk of every ready stream; returns (stream, tokens) of the streams that finished (their
        slots are free again). Streams fed by ``fill`` are always ready."""
        for stream in self.streams:
            if stream is not None:
                stream.fill()
        self.decode([stream for stream in self.streams if stream is not None and stream.ready])
        finished = [stream for stream in self.streams if stream is not None and stream.done]
        results = list(zip(finished, self.best_tokens(finished)))
        for stream in finished:
            self.remove(stream)
        return results

    @torch.no_grad()
    def decode(self, streams: List[DecodeStream]) -> None:
        """Decode the next chunk of each of ``streams`` (added and ready) as one batch."""
        if streams:
            self._decode_chunk(sorted(self._slot(stream) for stream in streams))

    def best_tokens(self, streams: List[DecodeStream]) -> List[List[int]]:
        """The tokens of each stream's best hypothesis so far (of its current segment)."""
        return self.search.best_tokens(self.search_state, [self._slot(stream) for stream in streams])

    def trailing_blank_frames(self, streams: List[DecodeStream]) -> List[int]:
        """Encoder frames decoded since the last token of each stream's best hypothesis (or its segment start)."""
        return self.search.trailing_blank_frames(self.search_state, [self._slot(stream) for stream in streams])

    def start_segment(self, stream: DecodeStream) -> None:
        """Start a new hypothesis for ``stream`` after an endpoint; its encoder state goes on (the audio does)."""
        self.search.reset_rows(self.search_state, [self._slot(stream)])

    def _slot(self, stream: DecodeStream) -> int:
        for slot, held in enumerate(self.streams):
            if held is stream:
                return slot
        raise ValueError(f"stream {stream.stream_id} is not in the decoder")

    def _decode_chunk(self, ready: List[int]) -> None:
        x = torch.stack([self.streams[slot].next_chunk() for slot in ready])
        x_lens = torch.full((len(ready),), x.size(1), dtype=torch.int64)
        all_slots = len(ready) == self.num_slots
        index = None if all_slots else torch.tensor(ready, device=self.device)
        states = self.states if index is None else self._select_states(index)
        encoder_out, encoder_lens, new_states = self.model.encoder.streaming_forward(
            x.to(self.device), x_lens.to(self.device), states
        )
        if index is None:
            self.states = new_states
        else:
            self._update_states(index, new_states)
            encoder_out, encoder_lens = self._spread(index, encoder_out, encoder_lens)
        self.search_state = self.search.advance(self.search_state, encoder_out, encoder_lens)

    def _select_states(self, index: Tensor) -> List[Tensor]:
        return [state.index_select(state_batch_dim(i, self.num_stacks), index) for i, state in enumerate(self.states)]

    def _update_states(self, index: Tensor, new_states: List[Tensor]) -> None:
        for i, (state, new) in enumerate(zip(self.states, new_states)):
            state.index_copy_(state_batch_dim(i, self.num_stacks), index, new)

    def _spread(self, index: Tensor, encoder_out: Tensor, encoder_lens: Tensor) -> Tuple[Tensor, Tensor]:
        """Rows of the ready slots -> rows of all slots (others: no frames)."""
        num_slots = self.num_slots
        spread = encoder_out.new_zeros(num_slots, *encoder_out.shape[1:])
        spread[index] = encoder_out
        lens = encoder_lens.new_zeros(num_slots)
        lens[index] = encoder_lens
        return spread, lens


def decode_streams(decoder: StreamingDecoder, streams: Iterable[DecodeStream]) -> Iterator[Tuple[DecodeStream, List[int]]]:
    """Decode ``streams`` (with queued audio) through the pool: slots are refilled as streams finish.
    Yields (stream, tokens) in the order streams finish; streams are taken from the iterable only when a slot
    is free, so it may load audio lazily."""
    pending = iter(streams)
    exhausted = False
    while True:
        while not exhausted and decoder.has_free_slot:
            stream = next(pending, None)
            exhausted = stream is None
            if stream is not None:
                decoder.add(stream)
        if decoder.num_active == 0:
            return
        yield from decoder.step()


def decode_cuts_streaming(
    model: Transducer, search: TransducerSearch, cuts: Iterable[Cut], sp: spm.SentencePieceProcessor, chunk_len: int, num_streams: int
) -> List[Result]:
    """(cut id, reference words, hypothesis words) of every cut, decoded chunk-wise from its audio with
    ``num_streams`` streams at a time; logs progress and the real-time factor (processing time / audio time)."""
    references: Dict[str, str] = {}
    fbank = make_fbank()

    def streams() -> Iterator[DecodeStream]:
        for cut in cuts:
            references[cut.id] = cut.supervisions[0].text
            online_fbank = OnlineFbank(fbank)
            samples = load_cut_samples(cut, online_fbank.sampling_rate)
            yield DecodeStream(cut.id, chunk_len, audio=samples, fbank=online_fbank)

    num_cuts = sum(1 for _ in cuts)
    decoder = StreamingDecoder(model, search, max(1, min(num_streams, num_cuts)))
    logging.info(f"{num_cuts} cuts, decoded {decoder.num_slots} at a time")
    results: List[Result] = []
    audio_seconds = 0.0
    start = time.perf_counter()
    for stream, tokens in decode_streams(decoder, streams()):
        results.append((stream.stream_id, references.pop(stream.stream_id).split(), sp.decode(tokens).split()))
        audio_seconds += stream.duration
        if len(results) % LOG_INTERVAL_CUTS == 0:
            _log_progress(len(results), audio_seconds, time.perf_counter() - start)
    _log_progress(len(results), audio_seconds, time.perf_counter() - start)
    return results


def _log_progress(num_cuts: int, audio_seconds: float, elapsed: float) -> None:
    rtf = elapsed / audio_seconds if audio_seconds > 0 else 0.0
    logging.info(f"Cuts processed until now is {num_cuts}; {audio_seconds:.1f} s of audio, real-time factor {rtf:.4f}")
