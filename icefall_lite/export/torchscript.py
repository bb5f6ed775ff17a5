"""TorchScript versions of the model: one scripted module (``cpu_jit.pt``, with every head the model has) or
three traced ones (the transducer).

``cpu_jit.pt`` (``export.py --jit 1``) needs only torch to run::

    model = torch.jit.load("exp/cpu_jit.pt")
    states = model.encoder.get_init_state(torch.device("cpu"))
    out, out_lens, states = model.encoder(chunk, chunk_lens, states)  # chunk: (1, decode_chunk_len + 7, 80)
    decoder_out = model.decoder(torch.tensor([[-1, 0]]), need_pad=False)  # (1, 1, decoder_dim)
    logits = model.joiner(out[:, :1], decoder_out)                        # (1, 1, vocab_size)
    log_probs = model.ctc_output(out)                                     # with --use-ctc 1: (1, T', vocab_size)
    scores = model.attention_decoder.sequence_log_probs(out, out_lens, [[5, 9]])  # --use-attention-decoder 1: (1,)

Its ``encoder.forward`` is the streaming forward (``Zipformer.streaming_forward``); the whole-utterance masked
forward stays available as ``encoder.non_streaming_forward``. ``encoder.decode_chunk_len`` and
``encoder.pad_length`` say how to cut chunks: ``decode_chunk_len + pad_length`` frames, advancing by
``decode_chunk_len``.

The traced files (``jit_trace_export.py``) hold one method each and fixed chunk shapes: the encoder's
streaming forward on ``(N, decode_chunk_len + 7, 80)`` chunks, the decoder with ``need_pad=False`` and the
joiner with ``project_input=True``.
"""

import contextlib
import warnings
from pathlib import Path
from typing import Iterator, List, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.export.inputs import feature_chunks, pad_batch, wave_features
from icefall_lite.model.decoder import Decoder
from icefall_lite.model.encoder_state import stack_states
from icefall_lite.model.joiner import Joiner
from icefall_lite.model.transducer import Transducer
from icefall_lite.model.zipformer import Zipformer


class StreamingEncoder(nn.Module):
    """The encoder as deployments call it: ``forward`` is the chunk-wise streaming forward."""

    def __init__(self, encoder: Zipformer) -> None:
        super().__init__()
        self.encoder = encoder
        self.decode_chunk_len: int = 2 * encoder.decode_chunk_size
        self.pad_length: int = encoder.encoder_embed.context
        self.feature_dim: int = encoder.config.feature_dim

    def forward(self, x: Tensor, x_lens: Tensor, states: List[Tensor]) -> Tuple[Tensor, Tensor, List[Tensor]]:
        """
        Args:
          x: (N, T, feature_dim) float fbank frames of one chunk per stream, T = decode_chunk_len + pad_length
            (the last chunk of a stream may have fewer valid frames).
          x_lens: (N,) int64 valid frames of each chunk.
          states: the streams' encoder states (``get_init_state``, batched on dim 1 or 2, see ``encoder_state``).
        Returns:
          (N, T', encoder_dim) float encoder frames at 25 Hz (T' = decode_chunk_len / 4 for a full chunk),
          (N,) int64 valid output frames, and the new states.
        """
        return self.encoder.streaming_forward(x, x_lens, states)

    @torch.jit.export
    def get_init_state(self, device: torch.device) -> List[Tensor]:
        """The state of one new stream (batch 1), all zeros."""
        return self.encoder.get_init_state(device)

    @torch.jit.export
    def non_streaming_forward(self, x: Tensor, x_lens: Tensor) -> Tuple[Tensor, Tensor]:
        """Whole utterances with the chunked attention mask (simulated streaming), as ``Zipformer.forward``:
        x (N, T, feature_dim), x_lens (N,) -> (N, ((T - 7) // 2 + 1) // 2, encoder_dim) and (N,) lengths."""
        return self.encoder(x, x_lens)


DECODING_HEADS = ("decoder", "joiner", "ctc_output", "attention_decoder", "reverse_attention_decoder")


class JitTransducer(nn.Module):
    """The parts of a ``Transducer`` that decoding uses: the streaming encoder and whichever of the heads the
    model has (``decoder`` and ``joiner``, ``ctc_output``, ``attention_decoder``, ``reverse_attention_decoder``;
    their losses stay behind)."""

    def __init__(self, model: Transducer) -> None:
        super().__init__()
        self.encoder = StreamingEncoder(model.encoder)
        for name in DECODING_HEADS:
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))


def script_transducer(model: Transducer) -> torch.jit.ScriptModule:
    """``torch.jit.script`` of ``JitTransducer(model)`` (the model is switched to eval mode; weights shared)."""
    model.eval()
    with quiet_tracing():
        return torch.jit.script(JitTransducer(model).eval())


def load_script_module(path: Path) -> torch.jit.ScriptModule:
    """``torch.jit.load`` on the CPU; FileNotFoundError naming the file if it does not exist."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"TorchScript file {path} does not exist (write it with export.py --jit 1)")
    return torch.jit.load(str(path), map_location="cpu")


def transcribe_waves(path: Path, sound_files: List[Path]) -> Tuple[nn.Module, Tensor, Tensor]:
    """Load ``cpu_jit.pt`` and run its streaming encoder over the wave files, chunk by chunk: the module and
    the padded encoder output (N, T', encoder_dim) with its (N,) lengths."""
    model = load_script_module(path)
    features = wave_features(sound_files, model.encoder.decode_chunk_len)
    # TorchScript's profiling executor re-optimizes the encoder over its first calls (about 1.5 s each on 2
    # threads, 10 calls); for a few files plain interpretation is much faster.
    with torch.jit.optimized_execution(False):
        encoder_out, encoder_lens = pad_batch([encode_in_chunks(model.encoder, f) for f in features])
    return model, encoder_out, encoder_lens


def encode_in_chunks(encoder: nn.Module, features: Tensor) -> Tensor:
    """Run a streaming encoder over one utterance, chunk after chunk with its cached states.

    Args:
      encoder: a ``StreamingEncoder`` or its TorchScript version (``cpu_jit.pt``'s ``encoder``).
      features: (T, feature_dim) float, T = k * decode_chunk_len + pad_length (see ``pad_for_chunks``).
    Returns:
      (k * decode_chunk_len / 4, encoder_dim) float encoder frames.
    """
    states = encoder.get_init_state(features.device)
    outputs: List[Tensor] = []
    for chunk in feature_chunks(features, encoder.decode_chunk_len, encoder.pad_length):
        x_lens = torch.tensor([chunk.size(1)], dtype=torch.int64, device=features.device)
        encoder_out, _, states = encoder(chunk, x_lens, states)
        outputs.append(encoder_out[0])
    return torch.cat(outputs, dim=0)


@contextlib.contextmanager
def quiet_tracing() -> Iterator[None]:
    """Silence the warnings of tracing and scripting: input checks turned into constants (expected, the traced
    shapes are fixed) and the deprecation notices of torch.jit and the TorchScript-based ONNX exporter."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def example_chunk(encoder: Zipformer, batch: int = 1) -> Tuple[Tensor, Tensor, List[Tensor]]:
    """Inputs of one streaming step for ``batch`` new streams: zero features (N, decode_chunk_len + 7,
    feature_dim) float, their (N,) int64 lengths and the streams' initial states, stacked."""
    num_frames = 2 * encoder.decode_chunk_size + encoder.encoder_embed.context
    device = encoder.encoder_embed.out.weight.device
    x = torch.zeros(batch, num_frames, encoder.config.feature_dim, device=device)
    x_lens = torch.full((batch,), num_frames, dtype=torch.int64, device=device)
    states = stack_states([encoder.get_init_state(device) for _ in range(batch)])
    return x, x_lens, states


class _DecoderStep(nn.Module):
    """``decoder(y, need_pad=False)``: the decoder as a search calls it, with a tensor-only signature."""

    def __init__(self, decoder: Decoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, y: Tensor) -> Tensor:
        """y: (N, context_size) int64 last tokens (< 0: none) -> (N, 1, decoder_dim) float."""
        return self.decoder(y, need_pad=False)


def trace_encoder(encoder: Zipformer) -> torch.jit.ScriptModule:
    """Trace the streaming forward (``StreamingEncoder.forward``) on one full chunk of one stream; the traced
    module takes chunks of exactly ``decode_chunk_len + 7`` frames."""
    encoder.eval()
    with quiet_tracing():
        return torch.jit.trace(StreamingEncoder(encoder).eval(), example_chunk(encoder), strict=False, check_trace=False)


def trace_decoder(decoder: Decoder) -> torch.jit.ScriptModule:
    """Trace ``decoder(y, need_pad=False)``: (N, context_size) int64 -> (N, 1, decoder_dim) float."""
    decoder.eval()
    y = torch.zeros(1, decoder.context_size, dtype=torch.int64, device=decoder.embedding.weight.device)
    with quiet_tracing():
        return torch.jit.trace(_DecoderStep(decoder).eval(), (y,))


def trace_joiner(joiner: Joiner) -> torch.jit.ScriptModule:
    """Trace ``joiner(encoder_out, decoder_out)`` (project_input=True): (N, encoder_dim) and (N, decoder_dim)
    float -> (N, vocab_size) float logits."""
    joiner.eval()
    weight = joiner.encoder_proj.weight
    encoder_out = torch.zeros(1, joiner.encoder_proj.in_features, device=weight.device)
    decoder_out = torch.zeros(1, joiner.decoder_proj.in_features, device=weight.device)
    with quiet_tracing():
        return torch.jit.trace(joiner, (encoder_out, decoder_out))
