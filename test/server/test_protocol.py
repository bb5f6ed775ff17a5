"""The protocol's message checks, sherpa-onnx's endpoint rules, and the trailing blanks they are applied to."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.decoding.modified_beam_search import ModifiedBeamSearch
from icefall_lite.server.endpoint import EndpointRules
from icefall_lite.server.protocol import INVALID_PAYLOAD, UNSUPPORTED_DATA, ClientError, parse_samples, refuse_text, result_message

from decoding.helpers import frames_asking_for, known_path_model  # test/decoding/helpers.py


def test_parse_samples_accepts_little_endian_float32() -> None:
    samples = np.array([0.5, -1.0, 1.2, 0.0], dtype="<f4")
    assert np.array_equal(parse_samples(samples.tobytes(), "c"), samples)
    assert parse_samples(b"", "c").size == 0


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"\x00" * 7, "not whole float32 samples"),
        (np.array([0.1, np.nan], dtype="<f4").tobytes(), "NaN or infinite"),
        (np.array([np.inf], dtype="<f4").tobytes(), "NaN or infinite"),
        (np.array([0.1, 12000.0], dtype="<f4").tobytes(), "divided by 32768"),
    ],
)
def test_parse_samples_refuses_what_is_not_audio(data: bytes, expected: str) -> None:
    with pytest.raises(ClientError, match=expected) as caught:
        parse_samples(data, "127.0.0.1:1 #7")
    assert caught.value.code == INVALID_PAYLOAD and "127.0.0.1:1 #7" in caught.value.message


def test_text_other_than_done_and_result_fields() -> None:
    error = refuse_text("hello" * 20, "c")
    assert error.code == UNSUPPORTED_DATA and "'Done'" in error.message and "..." in error.message
    assert json.loads(result_message("A B", 2, True, 1.2804)) == {"text": "A B", "segment": 2, "is_final": True, "decoded_seconds": 1.28}


@pytest.mark.parametrize(
    "segment, trailing, expected",
    [
        (2.0, 2.0, False),   # rule 1 needs 2.4 s of silence
        (2.4, 2.4, True),    # rule 1: silence only
        (2.0, 1.2, True),    # rule 2: 1.2 s of silence after speech
        (1.2, 1.2, False),   # rule 2 needs non-silence
        (19.9, 1.0, False),
        (20.0, 0.0, True),   # rule 3
    ],
)
def test_endpoint_rules_are_sherpa_onnx_defaults(segment: float, trailing: float, expected: bool) -> None:
    assert EndpointRules().is_endpoint(segment, trailing) is expected
    assert EndpointRules(enabled=False).is_endpoint(segment, trailing) is False


@pytest.mark.parametrize("make_search", [lambda m: GreedySearch(m), lambda m: ModifiedBeamSearch(m, beam_size=3)])
def test_trailing_blank_frames_count_frames_since_the_last_token(make_search) -> None:
    model = known_path_model()
    search = make_search(model)
    asked = [[3, 0, 0, 5, 5, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]  # row 0 emits at frames 0 and 3; row 1 never
    frames = torch.stack([frames_asking_for(tokens) for tokens in asked])
    state = search.init_state(2)
    state = search.advance(state, frames[:, :4], torch.tensor([4, 4]))
    assert search.trailing_blank_frames(state, [0, 1]) == [0, 4]
    state = search.advance(state, frames[:, 4:], torch.tensor([4, 2]))
    assert search.best_tokens(state, [0]) == [[3, 5]]
    assert search.trailing_blank_frames(state, [0, 1]) == [4, 6]
    search.reset_rows(state, [0])
    assert search.trailing_blank_frames(state, [0, 1]) == [0, 6]
