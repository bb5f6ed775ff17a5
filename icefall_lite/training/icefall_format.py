"""icefall's checkpoint layout for this model, both ways (facts: shared/reference/icefall-checkpoints.md).

icefall's state dict of pruned_transducer_stateless7_streaming differs from ours in three ways: it has an int64
`count` buffer in every activation balancer (8 per encoder layer and 3 in the convolutional front end; they
only schedule training-time regularizers), its front end is one nn.Sequential (`encoder_embed.conv.{0,3,6}`
against our `encoder_embed.conv.{0,1,2}.0`), and its pointwise convolutions keep Conv1d weights
(C_out, C_in, 1) where ours are Linear weights (C_out, C_in). Every other key and shape is the same.

Usage::

    if is_icefall_state_dict(state):
        state = from_icefall_state_dict(state)            # loads into our Transducer
    icefall_state = to_icefall_state_dict(model.state_dict())   # loads into icefall's model (strict)
"""

from __future__ import annotations

import re
from typing import Dict, List

import torch
from torch import Tensor

StateDict = Dict[str, Tensor]

_EMBED = "encoder.encoder_embed.conv."
_EMBED_ICEFALL_TO_OURS = {"0": "0.0", "3": "1.0", "6": "2.0"}
_EMBED_OURS_TO_ICEFALL = {ours: icefall for icefall, ours in _EMBED_ICEFALL_TO_OURS.items()}
_EMBED_BALANCERS = ("1", "4", "7")  # the ActivationBalancer after each convolution of icefall's Sequential
_LAYER_BALANCERS = (
    "balancer", "feed_forward1.balancer", "feed_forward2.balancer", "feed_forward3.balancer",
    "conv_module1.deriv_balancer1", "conv_module1.deriv_balancer2",
    "conv_module2.deriv_balancer1", "conv_module2.deriv_balancer2",
)
_POINTWISE = re.compile(r"\.conv_module[12]\.pointwise_conv[12]\.weight$")
_ICEFALL_EMBED = re.compile(r"^encoder\.encoder_embed\.conv\.(\d+)\.(weight|bias)$")


def is_icefall_state_dict(state: StateDict) -> bool:
    """True for icefall's layout (balancer counts or its front-end names), False for ours."""
    return any(key.endswith(".count") or _ICEFALL_EMBED.match(key) for key in state)


def from_icefall_state_dict(state: StateDict) -> StateDict:
    """icefall's state dict -> ours: counts dropped, front end renamed, pointwise weights squeezed to 2-D."""
    converted: StateDict = {}
    for key, value in state.items():
        if key.endswith(".count"):
            continue
        match = _ICEFALL_EMBED.match(key)
        if match:
            if match.group(1) not in _EMBED_ICEFALL_TO_OURS:
                raise KeyError(f"icefall state dict: unexpected front-end entry {key}")
            key = f"{_EMBED}{_EMBED_ICEFALL_TO_OURS[match.group(1)]}.{match.group(2)}"
        if _POINTWISE.search(key) and value.dim() == 3:
            value = value.squeeze(2)
        converted[key] = value
    return converted


def to_icefall_state_dict(state: StateDict, count: int = 0) -> StateDict:
    """Ours -> icefall's: front end renamed, pointwise weights (C_out, C_in, 1), and a `count` buffer (int64,
    value `count`: the batches its balancers have seen) for each balancer icefall's model has."""
    converted: StateDict = {}
    for key, value in state.items():
        if key.startswith(_EMBED):
            index, _, rest = key[len(_EMBED):].partition(".0.")
            key = f"{_EMBED}{_EMBED_OURS_TO_ICEFALL[index + '.0']}.{rest}"
        if _POINTWISE.search(key):
            value = value.unsqueeze(2)
        converted[key] = value
    for name in balancer_count_names(state):
        converted[name] = torch.tensor(count, dtype=torch.int64)
    return converted


def balancer_count_names(state: StateDict) -> List[str]:
    """The names of icefall's balancer counts for a model with our state dict `state`."""
    layers = sorted({key.split(".feed_forward1.")[0] for key in state if ".feed_forward1." in key})
    names = [f"{layer}.{balancer}.count" for layer in layers for balancer in _LAYER_BALANCERS]
    return names + [f"{_EMBED}{index}.count" for index in _EMBED_BALANCERS]
