"""streaming_server.py's options (icefall_lite/server/cli.py): part of an export is refused, naming what is missing."""

from __future__ import annotations

import argparse
from typing import List

import pytest

from icefall_lite.server.cli import add_server_arguments, recognizer_from_args
from icefall_lite.server.errors import ServerOptionError


def server_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "given, missing",
    [
        (["--encoder-model-filename", "e.onnx"], "--decoder-model-filename and --joiner-model-filename"),
        (["--encoder-model-filename", "e.onnx", "--joiner-model-filename", "j.onnx"], "--decoder-model-filename"),
        (["--decoder-model-filename", "d.onnx", "--joiner-model-filename", "j.onnx"], "--encoder-model-filename"),
    ],
)
def test_part_of_an_export_names_the_missing_options(given: List[str], missing: str) -> None:
    with pytest.raises(ServerOptionError, match=f"^missing {missing}: an export is served from all three"):
        recognizer_from_args(server_args(["--tokens", "tokens.txt", *given]))
