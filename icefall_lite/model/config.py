"""Model dimensions in dataclasses (encoder, attention decoder, the whole model), plus the parser for per-stack command-line values.

Usage::

    encoder = ZipformerConfig(num_encoder_layers=parse_per_stack("1,1,1,1,1", "--num-encoder-layers"))
    config = TransducerConfig(vocab_size=500, encoder=encoder)
"""

from dataclasses import dataclass, field
from typing import Tuple

from icefall_lite.model.warmup import ICEFALL_WARMUP_BATCHES

PER_STACK_FIELDS = (
    "num_encoder_layers",
    "feedforward_dims",
    "nhead",
    "encoder_dims",
    "attention_dims",
    "encoder_unmasked_dims",
    "zipformer_downsampling_factors",
    "cnn_module_kernels",
)


def parse_per_stack(value: str, option: str) -> Tuple[int, ...]:
    """Parse a comma-separated list of positive integers such as ``"2,4,3,2,4"``.

    Args:
      value: the text given on the command line.
      option: the option's name (e.g. ``"--num-encoder-layers"``), quoted in the error.
    Returns:
      the integers, in order.
    Raises:
      ValueError: naming ``option`` when an item is not a positive integer.
    """
    items = [item.strip() for item in value.split(",")]
    if not all(item.isdigit() and int(item) > 0 for item in items):
        raise ValueError(f"{option} expects comma-separated positive integers such as '2,4,3,2,4', got {value!r}")
    return tuple(int(item) for item in items)


@dataclass(frozen=True)
class ZipformerConfig:
    """Dimensions of the streaming Zipformer encoder; tuples hold one value per stack.

    Defaults are those of icefall's recipe (70.37 M parameters with the default transducer at vocab 500).
    ``decode_chunk_size`` (frames at 50 Hz) is the chunk of the masked eval-mode forward and, times
    ``num_left_chunks``, sets the attention left context cached by ``streaming_forward``.
    """

    feature_dim: int = 80
    num_encoder_layers: Tuple[int, ...] = (2, 4, 3, 2, 4)
    feedforward_dims: Tuple[int, ...] = (1024, 1024, 2048, 2048, 1024)
    nhead: Tuple[int, ...] = (8, 8, 8, 8, 8)
    encoder_dims: Tuple[int, ...] = (384, 384, 384, 384, 384)
    attention_dims: Tuple[int, ...] = (192, 192, 192, 192, 192)
    encoder_unmasked_dims: Tuple[int, ...] = (256, 256, 256, 256, 256)
    zipformer_downsampling_factors: Tuple[int, ...] = (1, 2, 4, 8, 2)
    cnn_module_kernels: Tuple[int, ...] = (31, 31, 31, 31, 31)
    pos_dim: int = 4
    dropout: float = 0.1
    short_chunk_size: int = 50
    short_chunk_threshold: float = 0.75
    num_left_chunks: int = 4
    decode_chunk_size: int = 16
    warmup_batches: float = ICEFALL_WARMUP_BATCHES

    def __post_init__(self) -> None:
        num_stacks = len(self.num_encoder_layers)
        for name in PER_STACK_FIELDS:
            value = getattr(self, name)
            if len(value) != num_stacks:
                raise ValueError(
                    f"{name} has {len(value)} values {value} but num_encoder_layers has {num_stacks}: "
                    "give one value per encoder stack"
                )
        for i in range(num_stacks):
            self._check_stack(i)
        self._check_chunks()

    def _check_stack(self, i: int) -> None:
        heads, attention_dim = self.nhead[i], self.attention_dims[i]
        if attention_dim % (2 * heads) != 0:
            raise ValueError(
                f"attention_dims[{i}]={attention_dim} must be divisible by 2 * nhead[{i}]={2 * heads} "
                "(values use half the query/key dimension per head)"
            )
        if self.encoder_unmasked_dims[i] > self.encoder_dims[i]:
            raise ValueError(
                f"encoder_unmasked_dims[{i}]={self.encoder_unmasked_dims[i]} exceeds encoder_dims[{i}]={self.encoder_dims[i]}"
            )
        if self.zipformer_downsampling_factors[i] == 1 and i > 0 and self.encoder_dims[i] != self.encoder_dims[i - 1]:
            raise ValueError(
                f"stack {i} has downsampling factor 1, so encoder_dims[{i}]={self.encoder_dims[i]} "
                f"must equal encoder_dims[{i - 1}]={self.encoder_dims[i - 1]}"
            )

    def _check_chunks(self) -> None:
        if self.decode_chunk_size > 0:
            for i, ds in enumerate(self.zipformer_downsampling_factors):
                if self.decode_chunk_size % ds != 0:
                    raise ValueError(
                        f"decode_chunk_size={self.decode_chunk_size} must be divisible by "
                        f"zipformer_downsampling_factors[{i}]={ds}"
                    )
        for i, ds in enumerate(self.zipformer_downsampling_factors):
            if self.max_downsampling_factor % ds != 0:
                raise ValueError(
                    f"zipformer_downsampling_factors[{i}]={ds} must divide the largest factor {self.max_downsampling_factor}"
                )
        if self.short_chunk_size < self.max_downsampling_factor:
            raise ValueError(
                f"short_chunk_size={self.short_chunk_size} must be at least the largest downsampling factor "
                f"{self.max_downsampling_factor}"
            )

    @property
    def num_stacks(self) -> int:
        return len(self.num_encoder_layers)

    @property
    def max_downsampling_factor(self) -> int:
        return max(self.zipformer_downsampling_factors)

    @property
    def output_dim(self) -> int:
        """Channels of the encoder output (that of the last stack)."""
        return self.encoder_dims[-1]

    @property
    def left_context_len(self) -> Tuple[int, ...]:
        """Per stack, how many past frames (at the stack's own rate) the streaming attention caches."""
        left = self.decode_chunk_size * self.num_left_chunks
        return tuple(left // ds for ds in self.zipformer_downsampling_factors)


@dataclass(frozen=True)
class AttentionDecoderConfig:
    """icefall's --attention-decoder-* options."""

    num_layers: int = 6
    dim: int = 512
    attention_dim: int = 512
    num_heads: int = 8
    feedforward_dim: int = 2048
    dropout: float = 0.1
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        if self.attention_dim % self.num_heads != 0:
            raise ValueError(
                f"--attention-decoder-attention-dim ({self.attention_dim}) must be divisible by "
                f"--attention-decoder-num-heads ({self.num_heads})"
            )


@dataclass(frozen=True)
class TransducerConfig:
    """The whole ASR model: the encoder's config, which heads sit on it (icefall's --use-transducer, --use-ctc,
    --use-attention-decoder; a right-to-left attention decoder as WeNet U2++'s), and the heads' dimensions."""

    vocab_size: int = 500
    blank_id: int = 0
    context_size: int = 2
    decoder_dim: int = 512
    joiner_dim: int = 512
    encoder: ZipformerConfig = field(default_factory=ZipformerConfig)
    use_transducer: bool = True
    use_ctc: bool = False
    use_attention_decoder: bool = False
    attention_decoder_reverse_weight: float = 0.0
    attention_decoder: AttentionDecoderConfig = field(default_factory=AttentionDecoderConfig)

    def __post_init__(self) -> None:
        if not (self.use_transducer or self.use_ctc):
            raise ValueError("at least one of --use-transducer and --use-ctc must be 1")
        if not 0.0 <= self.attention_decoder_reverse_weight <= 1.0:
            raise ValueError(
                f"--attention-decoder-reverse-weight must be in [0, 1], got {self.attention_decoder_reverse_weight}"
            )
        if self.use_reverse_attention_decoder and not self.use_attention_decoder:
            raise ValueError("--attention-decoder-reverse-weight > 0 needs --use-attention-decoder 1")
        if not 0 <= self.blank_id < self.vocab_size:
            raise ValueError(f"blank_id={self.blank_id} must be in [0, vocab_size={self.vocab_size})")
        if self.context_size < 1:
            raise ValueError(f"context_size must be at least 1, got {self.context_size}")
        if self.decoder_dim % 4 != 0:
            raise ValueError(f"decoder_dim={self.decoder_dim} must be divisible by 4 (the decoder conv has dim/4 groups)")

    @property
    def use_reverse_attention_decoder(self) -> bool:
        """WeNet U2++: a right-to-left attention decoder beside the left-to-right one."""
        return self.attention_decoder_reverse_weight > 0.0
