"""The model's command-line options (icefall's ``add_model_arguments``), shared by every recipe script.

Example::

    >>> parser = argparse.ArgumentParser(); add_model_arguments(parser)
    >>> args = parser.parse_args(["--num-encoder-layers", "1,1,1,1,1"])
    >>> model = Transducer(transducer_config_from_args(args, vocab_size=500))
"""

from __future__ import annotations

import argparse
from typing import Any, Dict

from icefall_lite.cli import positive_float, positive_int, str2bool
from icefall_lite.model.config import (
    PER_STACK_FIELDS,
    AttentionDecoderConfig,
    TransducerConfig,
    ZipformerConfig,
    parse_per_stack,
)
from icefall_lite.model.transducer import Transducer

PER_STACK_HELP = {
    "num_encoder_layers": "layers of each encoder stack",
    "feedforward_dims": "feed-forward hidden dims of each stack",
    "nhead": "attention heads of each stack",
    "encoder_dims": "embedding dims of each stack",
    "attention_dims": "query/key dims of each stack's attention",
    "encoder_unmasked_dims": "dims never masked by feature masking, per stack",
    "zipformer_downsampling_factors": "frame-rate divisor of each stack (relative to 50 Hz)",
    "cnn_module_kernels": "convolution kernel size of each stack",
}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the encoder/decoder/joiner options with icefall's defaults; per-stack values are comma-separated."""
    defaults = ZipformerConfig()
    group = parser.add_argument_group("model options")
    for name in PER_STACK_FIELDS:
        default = ",".join(map(str, getattr(defaults, name)))
        group.add_argument(_option(name), type=str, default=default, help=f"{PER_STACK_HELP[name]} (default {default})")
    group.add_argument("--decoder-dim", type=int, default=512, help="decoder embedding dim (default 512)")
    group.add_argument("--joiner-dim", type=int, default=512, help="joiner hidden dim (default 512)")
    group.add_argument("--context-size", type=int, default=2, help="decoder context: 1 bigram, 2 trigram (default 2)")
    group.add_argument(
        "--short-chunk-size",
        type=int,
        default=defaults.short_chunk_size,
        help="largest random attention chunk in training, in 50 Hz frames (default 50)",
    )
    group.add_argument(
        "--model-warmup-batches",
        type=positive_float,
        default=defaults.warmup_batches,
        help="batches over which the encoder's regularizers relax: layer drop 0.5 -> 0.05 stack by stack, "
        "skip dropout, module dropout over half of it, bypass clamp over 5 times it; lower it for runs "
        "much shorter than icefall's (default 4000)",
    )
    group.add_argument(
        "--num-left-chunks", type=int, default=defaults.num_left_chunks, help="chunks of left context (default 4)"
    )
    group.add_argument(
        "--decode-chunk-len",
        type=int,
        default=2 * defaults.decode_chunk_size,
        help="chunk size for decoding, in fbank frames (100 Hz); 32 = 320 ms (default 32)",
    )
    add_head_arguments(parser)


def add_head_arguments(parser: argparse.ArgumentParser) -> None:
    """icefall's options selecting the heads on the encoder, and the attention decoder's dimensions."""
    group = parser.add_argument_group("heads (icefall's zipformer recipe; WeNet U2++'s right-to-left decoder)")
    group.add_argument("--use-transducer", type=str2bool, default=True, help="the transducer head (default 1)")
    group.add_argument("--use-ctc", type=str2bool, default=False, help="the CTC head (default 0)")
    group.add_argument(
        "--use-attention-decoder", type=str2bool, default=False, help="the attention-decoder head (default 0)"
    )
    defaults = AttentionDecoderConfig()
    for name, help_text in (
        ("num_layers", "layers of the attention decoder"),
        ("dim", "embedding dim of the attention decoder"),
        ("attention_dim", "attention dim of the attention decoder"),
        ("num_heads", "attention heads of the attention decoder"),
        ("feedforward_dim", "feed-forward hidden dim of the attention decoder"),
    ):
        default = getattr(defaults, name)
        group.add_argument(
            f"--attention-decoder-{name.replace('_', '-')}", type=positive_int, default=default,
            help=f"{help_text} (default {default})",
        )
    group.add_argument(
        "--attention-decoder-reverse-weight", type=float, default=0.0,
        help="WeNet U2++: > 0 adds a right-to-left attention decoder; the attention loss (and the rescoring "
        "score) is (1 - w) * left-to-right + w * right-to-left (default 0.0)",
    )


def attention_decoder_config_from_args(args: argparse.Namespace) -> AttentionDecoderConfig:
    names = ("num_layers", "dim", "attention_dim", "num_heads", "feedforward_dim")
    return AttentionDecoderConfig(**{name: getattr(args, f"attention_decoder_{name}") for name in names})


def zipformer_config_from_args(args: argparse.Namespace) -> ZipformerConfig:
    """The encoder config the options describe; a malformed value raises ValueError naming its option."""
    per_stack: Dict[str, Any] = {name: parse_per_stack(getattr(args, name), _option(name)) for name in PER_STACK_FIELDS}
    if args.decode_chunk_len % 2 != 0:
        raise ValueError(f"--decode-chunk-len must be even (it is halved by the front end), got {args.decode_chunk_len}")
    return ZipformerConfig(
        **per_stack,
        short_chunk_size=args.short_chunk_size,
        num_left_chunks=args.num_left_chunks,
        decode_chunk_size=args.decode_chunk_len // 2,
        warmup_batches=args.model_warmup_batches,
    )


def transducer_config_from_args(args: argparse.Namespace, vocab_size: int, blank_id: int = 0) -> TransducerConfig:
    """The whole model's config: the encoder's plus decoder/joiner dims and the vocabulary."""
    return TransducerConfig(
        vocab_size=vocab_size,
        blank_id=blank_id,
        context_size=args.context_size,
        decoder_dim=args.decoder_dim,
        joiner_dim=args.joiner_dim,
        encoder=zipformer_config_from_args(args),
        use_transducer=args.use_transducer,
        use_ctc=args.use_ctc,
        use_attention_decoder=args.use_attention_decoder,
        attention_decoder_reverse_weight=args.attention_decoder_reverse_weight,
        attention_decoder=attention_decoder_config_from_args(args),
    )


def build_model(args: argparse.Namespace, vocab_size: int, blank_id: int = 0) -> Transducer:
    """A freshly initialised Transducer for the options in `args`."""
    return Transducer(transducer_config_from_args(args, vocab_size, blank_id))
