"""Features at decoding time: the tail padding both decoders add, fbank computed as audio arrives, and audio
loading that names the file at fault.

decode.py (precomputed features) and streaming_decode.py (features from audio) see the same frames: the
training fbank (``make_fbank()``) of the whole utterance followed by ``TAIL_PADDING_FRAMES`` frames of
digital silence (``SILENCE_LOG_ENERGY``; so that the last frames reach the encoder output), of which they
decode whole chunk windows only (``whole_chunk_frames``), as sherpa-onnx does: a last, partial window would
be mostly padding, on which a model may emit a spurious token.

Usage::

    x, x_lens = append_tail_padding(features, feature_lens, chunk_len=32)        # decode.py
    fbank = OnlineFbank()                                         # streaming
    frames = fbank.accept_waveform(samples[:5120]); ...; last_frames = fbank.input_finished()
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from lhotse import Fbank
from lhotse.cut import Cut
from torch import Tensor

from icefall_lite.data.features import make_fbank
from icefall_lite.model.subsampling import SUBSAMPLING_CONTEXT

LOG_EPS = math.log(1e-10)
"""Log-energy of padding frames (lhotse's batch padding value)."""
SILENCE_LOG_ENERGY = math.log(torch.finfo(torch.float32).eps)
"""Every bin of the fbank of all-zero audio: lhotse and kaldi-native-fbank (sherpa-onnx) floor the mel energies at
float32 eps. The tail padding: sherpa-onnx users append zeros; icefall's LOG_EPS there (far below anything the
model saw in training) makes a model trained on the synthetic corpus hallucinate a last word."""
TAIL_PADDING_FRAMES = 30


class AudioError(RuntimeError):
    """Audio that cannot be read or does not fit the model (sample rate, channels)."""


def whole_chunk_frames(num_frames: Tensor, chunk_len: int) -> Tensor:
    """num_frames: (N,) int64 frames available (tail padding included) -> (N,) int64 frames a chunk-wise
    decoder consumes: ``k * chunk_len + 7`` for the most windows of ``chunk_len + 7`` frames (advancing by
    ``chunk_len``) that fit, 0 if none does."""
    num_chunks = (num_frames - SUBSAMPLING_CONTEXT).clamp(min=0) // chunk_len
    return torch.where(num_chunks > 0, num_chunks * chunk_len + SUBSAMPLING_CONTEXT, 0)


def append_tail_padding(features: Tensor, feature_lens: Tensor, chunk_len: int) -> Tuple[Tensor, Tensor]:
    """features: (N, T, F) float, feature_lens: (N,) int64 -> (N, T + 30, F) with 30 frames of digital silence
    after each utterance's ``feature_lens`` frames, and the frames of each utterance a chunk-wise decoder
    consumes: ``whole_chunk_frames(feature_lens + 30)``."""
    padded = torch.nn.functional.pad(features, (0, 0, 0, TAIL_PADDING_FRAMES), value=LOG_EPS)
    frame_index = torch.arange(padded.size(1), device=features.device)
    tail = (frame_index >= feature_lens.unsqueeze(1)) & (frame_index < feature_lens.unsqueeze(1) + TAIL_PADDING_FRAMES)
    padded = padded.masked_fill(tail.unsqueeze(2), SILENCE_LOG_ENERGY)
    return padded, whole_chunk_frames(feature_lens + TAIL_PADDING_FRAMES, chunk_len)


class OnlineFbank:
    """``make_fbank()`` computed while the audio arrives.

    A frame is computed as soon as its 25 ms window has arrived; the last frames (whose windows reach past the
    end, where Kaldi reflects the signal) when ``input_finished`` is called. The frames are those of extracting
    the whole waveform at once, up to float rounding (the filterbank matmul of a few frames may round
    differently from that of many: about 5e-7).
    """

    def __init__(self, fbank: Optional[Fbank] = None) -> None:
        fbank = fbank if fbank is not None else make_fbank()
        self.extractor = fbank.extractor
        self.sampling_rate = fbank.config.sampling_rate
        self.window_length = int(fbank.config.frame_length * self.sampling_rate)
        self.window_shift = int(fbank.config.frame_shift * self.sampling_rate)
        self.num_features = fbank.feature_dim(self.sampling_rate)
        self.num_samples = 0
        self.finished = False
        self._buffered: Optional[Tensor] = torch.zeros(0)  # samples held back until a full window arrived
        self._remainder: Optional[Tensor] = None  # samples the extractor has not consumed yet
        self._recent = torch.zeros(0)  # the last window_length samples, reflected at the end

    @torch.no_grad()
    def accept_waveform(self, samples: Tensor) -> Tensor:
        """samples: (S,) float in [-1, 1] -> (new_frames, num_features) float, the frames now complete."""
        if self.finished:
            raise RuntimeError("OnlineFbank.accept_waveform after input_finished")
        samples = samples.to(torch.float32).flatten()
        self.num_samples += samples.numel()
        self._recent = torch.cat([self._recent, samples])[-self.window_length :]
        if self._buffered is not None:
            self._buffered = torch.cat([self._buffered, samples])
            if self._buffered.numel() < self.window_length:
                return self._no_frames()
            samples, self._buffered = self._buffered, None
        return self._extract(samples)

    @torch.no_grad()
    def input_finished(self) -> Tensor:
        """The remaining frames: (num_frames - frames returned so far, num_features)."""
        if self.finished:
            raise RuntimeError("OnlineFbank.input_finished called twice")
        self.finished = True
        if self._buffered is not None:  # shorter than one window: extract it whole
            if self._buffered.numel() == 0:
                return self._no_frames()
            return self.extractor(self._buffered.unsqueeze(0))[0]
        num_frames = (self.num_samples + self.window_shift // 2) // self.window_shift
        left_padding = (self.window_length - self.window_shift) // 2
        right_padding = (num_frames - 1) * self.window_shift + self.window_length - self.num_samples - left_padding
        return self._extract(torch.flip(self._recent[-right_padding:], dims=(0,)))

    def _extract(self, samples: Tensor) -> Tensor:
        """Frames of every window completed by ``samples`` (the extractor keeps the rest as remainder)."""
        if self._remainder is not None and self._remainder.size(1) + samples.numel() < self.window_length:
            self._remainder = torch.cat([self._remainder, samples.unsqueeze(0)], dim=1)
            return self._no_frames()
        frames, self._remainder = self.extractor.online_inference(samples.unsqueeze(0), self._remainder)
        return frames[0]

    def _no_frames(self) -> Tensor:
        return torch.zeros(0, self.num_features)


def load_cut_samples(cut: Cut, sampling_rate: int) -> Tensor:
    """The audio of a single-channel cut: (S,) float32, or AudioError naming the cut and its files."""
    sources = [source.source for source in cut.recording.sources] if cut.has_recording else []
    if cut.sampling_rate != sampling_rate:
        raise AudioError(f"cut {cut.id} ({sources}) has sample rate {cut.sampling_rate}, expected {sampling_rate}")
    try:
        audio = cut.load_audio()
    except Exception as error:
        raise AudioError(f"cannot read the audio of cut {cut.id} from {sources}: {type(error).__name__}: {error}") from error
    if audio.ndim != 2 or audio.shape[0] != 1:
        raise AudioError(f"cut {cut.id} ({sources}) has {audio.shape[0]} channels, expected 1")
    return torch.from_numpy(audio[0]).to(torch.float32)
