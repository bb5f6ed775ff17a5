"""sherpa-onnx's endpoint rules: when a segment of speech has ended and the next begins.

A rule fires when the segment's trailing silence (decoded time since the last token) and its length reach the
rule's minimums, and, for rule 2, the segment holds some non-silence (is longer than its trailing silence).
sherpa-onnx's defaults: rule 1, 2.4 s of silence even without speech; rule 2, 1.2 s of silence after speech;
rule 3, a segment of 20 s whatever it holds. The sherpa-onnx back-end passes these options to sherpa-onnx's
recognizer; the checkpoint back-end applies ``EndpointRules.is_endpoint`` to this project's decoder.

Usage::

    rules = EndpointRules.from_args(args)      # --use-endpoint --rule1-min-trailing-silence ...
    if rules.is_endpoint(segment_seconds=3.2, trailing_silence_seconds=1.3): ...
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Dict

from icefall_lite.cli import str2bool


@dataclass(frozen=True)
class EndpointRule:
    must_contain_nonsilence: bool
    min_trailing_silence: float
    min_utterance_length: float

    def fires(self, segment_seconds: float, trailing_silence_seconds: float) -> bool:
        contains_nonsilence = segment_seconds > trailing_silence_seconds
        return (
            (contains_nonsilence or not self.must_contain_nonsilence)
            and trailing_silence_seconds >= self.min_trailing_silence
            and segment_seconds >= self.min_utterance_length
        )


@dataclass(frozen=True)
class EndpointRules:
    """The three rules (sherpa-onnx's ``OnlineRecognizer`` options and defaults); ``enabled`` False: never."""

    enabled: bool = True
    rule1_min_trailing_silence: float = 2.4
    rule2_min_trailing_silence: float = 1.2
    rule3_min_utterance_length: float = 20.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "EndpointRules":
        return cls(
            args.use_endpoint, args.rule1_min_trailing_silence, args.rule2_min_trailing_silence, args.rule3_min_utterance_length
        )

    def rules(self) -> Dict[str, EndpointRule]:
        return {
            "rule1": EndpointRule(False, self.rule1_min_trailing_silence, 0.0),
            "rule2": EndpointRule(True, self.rule2_min_trailing_silence, 0.0),
            "rule3": EndpointRule(False, 0.0, self.rule3_min_utterance_length),
        }

    def is_endpoint(self, segment_seconds: float, trailing_silence_seconds: float) -> bool:
        """segment_seconds: audio decoded since the segment started; trailing_silence_seconds: of it, since the
        last token."""
        return self.enabled and any(rule.fires(segment_seconds, trailing_silence_seconds) for rule in self.rules().values())

    def sherpa_options(self) -> Dict[str, object]:
        """These rules as keyword arguments of ``sherpa_onnx.OnlineRecognizer.from_transducer``."""
        return {
            "enable_endpoint_detection": self.enabled,
            "rule1_min_trailing_silence": self.rule1_min_trailing_silence,
            "rule2_min_trailing_silence": self.rule2_min_trailing_silence,
            "rule3_min_utterance_length": self.rule3_min_utterance_length,
        }


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """sherpa-onnx's streaming_server.py options: ``--use-endpoint --rule{1,2}-min-trailing-silence
    --rule3-min-utterance-length``."""
    defaults = EndpointRules()
    group = parser.add_argument_group("endpointing (sherpa-onnx's rules)")
    group.add_argument("--use-endpoint", type=str2bool, default=True, help="1: split a connection's audio into segments at endpoints (default 1)")
    group.add_argument(
        "--rule1-min-trailing-silence", type=float, default=defaults.rule1_min_trailing_silence,
        help=f"rule 1: seconds of trailing silence, even without speech (default {defaults.rule1_min_trailing_silence})",
    )
    group.add_argument(
        "--rule2-min-trailing-silence", type=float, default=defaults.rule2_min_trailing_silence,
        help=f"rule 2: seconds of trailing silence after speech (default {defaults.rule2_min_trailing_silence})",
    )
    group.add_argument(
        "--rule3-min-utterance-length", type=float, default=defaults.rule3_min_utterance_length,
        help=f"rule 3: seconds of segment, whatever it holds (default {defaults.rule3_min_utterance_length:g})",
    )
