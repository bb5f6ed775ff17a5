"""The decoding methods by their command-line names.

Usage::

    search = make_search("modified_beam_search", model, SearchOptions(beam_size=4), unk_id=2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

from icefall_lite.decoding.beam_search import BeamSearch
from icefall_lite.decoding.ctc_methods import CtcGreedySearch
from icefall_lite.decoding.fast_beam_search import FastBeamSearch
from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.decoding.modified_beam_search import ModifiedBeamSearch
from icefall_lite.decoding.search import TransducerSearch
from icefall_lite.model.transducer import Transducer


@dataclass(frozen=True)
class SearchOptions:
    """The options of every method (each uses its own): icefall's decode.py defaults."""

    max_sym_per_frame: int = 1
    beam_size: int = 4
    beam: float = 20.0
    max_contexts: int = 8
    max_states: int = 64


_FACTORIES: Dict[str, Callable[[Transducer, SearchOptions, Optional[int]], TransducerSearch]] = {
    "greedy_search": lambda model, o, unk: GreedySearch(model, o.max_sym_per_frame, unk),
    "beam_search": lambda model, o, unk: BeamSearch(model, o.beam_size, unk),
    "modified_beam_search": lambda model, o, unk: ModifiedBeamSearch(model, o.beam_size, unk),
    "fast_beam_search": lambda model, o, unk: FastBeamSearch(model, o.beam, o.max_contexts, o.max_states, unk),
    "ctc_greedy_search": lambda model, o, unk: CtcGreedySearch(model),
}
DECODING_METHODS = tuple(name for name in _FACTORIES if name != "ctc_greedy_search")
STREAMING_DECODING_METHODS = ("greedy_search", "modified_beam_search", "fast_beam_search", "ctc_greedy_search")


def make_search(method: str, model: Transducer, options: SearchOptions, unk_id: Optional[int] = None) -> TransducerSearch:
    """The search called ``method`` (one of DECODING_METHODS, or ctc_greedy_search for streaming_decode.py) for
    ``model``; unk_id is never emitted."""
    if method not in _FACTORIES:
        raise ValueError(f"--decoding-method must be one of {tuple(_FACTORIES)}, got {method!r}")
    return _FACTORIES[method](model, options, unk_id)
