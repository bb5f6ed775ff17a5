"""Command-line options of the speaker model, shared by the speaker recipe's scripts.

Example::

    >>> parser = argparse.ArgumentParser(); add_speaker_model_arguments(parser)
    >>> args = parser.parse_args(["--encoder", "transformer", "--pooling", "mean", "--loss", "softmax"])
    >>> model = SpeakerModel(speaker_config_from_args(args, num_speakers=300))
"""

from __future__ import annotations

import argparse

from icefall_lite.cli import positive_float, positive_int
from icefall_lite.model.conformer import ENCODER_KINDS, EncoderConfig
from icefall_lite.model.pooling import POOLING_KINDS
from icefall_lite.model.speaker import LOSS_KINDS, SpeakerModelConfig

_ENCODER_OPTIONS = {
    # option: (EncoderConfig field, help)
    "num_layers": ("num_layers", "encoder layers"),
    "encoder_dim": ("dim", "encoder dimension"),
    "num_heads": ("num_heads", "attention heads"),
    "feedforward_dim": ("feedforward_dim", "feed-forward hidden dimension"),
    "cnn_module_kernel": ("kernel_size", "depthwise convolution kernel of the Conformer's convolution module (odd)"),
    "subsampling_channels": ("subsampling_channels", "channels of the 4x convolutional subsampling"),
}
DEMO_ENCODER = EncoderConfig(num_layers=4, dim=128, num_heads=4, feedforward_dim=256, kernel_size=15)


def add_speaker_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--encoder, the encoder dimensions, --pooling, --embedding-dim, --loss, --scale, --dropout."""
    group = parser.add_argument_group("speaker model options")
    group.add_argument("--encoder", choices=ENCODER_KINDS, default="conformer", help="encoder type (default conformer)")
    for option, (name, help_text) in _ENCODER_OPTIONS.items():
        default = getattr(DEMO_ENCODER, name)
        group.add_argument(
            "--" + option.replace("_", "-"), type=positive_int, default=default, help=f"{help_text} (default {default})"
        )
    group.add_argument("--dropout", type=float, default=DEMO_ENCODER.dropout, help="encoder dropout (default 0.1)")
    group.add_argument(
        "--pooling", choices=POOLING_KINDS, default="self-attention", help="frames -> utterance (default self-attention)"
    )
    group.add_argument("--embedding-dim", type=positive_int, default=192, help="speaker embedding size (default 192)")
    group.add_argument(
        "--loss", choices=LOSS_KINDS, default="am-softmax",
        help="classifier: plain linear softmax, or additive-margin softmax on cosines (default am-softmax)",
    )
    group.add_argument("--scale", type=positive_float, default=30.0, help="AM-softmax scale s (default 30)")


def speaker_config_from_args(args: argparse.Namespace, num_speakers: int) -> SpeakerModelConfig:
    """The model config of the options, for `num_speakers` training speakers; ValueError naming a bad option."""
    encoder = EncoderConfig(
        kind=args.encoder, dropout=args.dropout,
        **{name: getattr(args, option) for option, (name, _) in _ENCODER_OPTIONS.items()},
    )
    encoder.check()
    return SpeakerModelConfig(
        encoder=encoder, pooling=args.pooling, embedding_dim=args.embedding_dim, num_speakers=num_speakers,
        loss=args.loss, scale=args.scale,
    )
