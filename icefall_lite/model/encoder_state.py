"""The streaming encoder's state: a flat list of 7 x num_stacks tensors, and batching of streams.

Order (as icefall and sherpa-onnx expect): all stacks' ``cached_len``, then all ``cached_avg``, ``cached_key``,
``cached_val``, ``cached_val2``, ``cached_conv1``, ``cached_conv2``. For stack i with L_i layers, batch N:

| kind | shape | batch dim |
|---|---|---|
| cached_len | (L_i, N) int64 | 1 |
| cached_avg | (L_i, N, encoder_dim) | 1 |
| cached_key | (L_i, left_context_len, N, attention_dim) | 2 |
| cached_val, cached_val2 | (L_i, left_context_len, N, attention_dim / 2) | 2 |
| cached_conv1, cached_conv2 | (L_i, N, encoder_dim, kernel - 1) | 1 |

Usage::

    states = stack_states([model.encoder.get_init_state(device) for _ in range(num_streams)])
    out, out_lens, states = model.encoder.streaming_forward(x, x_lens, states)
    per_stream = unstack_states(states)
"""

from typing import List

import torch
from torch import Tensor

from icefall_lite.model.encoder_layer import LayerCache

STATE_KINDS = ("cached_len", "cached_avg", "cached_key", "cached_val", "cached_val2", "cached_conv1", "cached_conv2")
_KINDS_BATCHED_ON_DIM_2 = ("cached_key", "cached_val", "cached_val2")


def state_names(num_stacks: int) -> List[str]:
    """Names of the flat state list, e.g. ``cached_len_0 ... cached_conv2_4`` (the ONNX input names)."""
    return [f"{kind}_{i}" for kind in STATE_KINDS for i in range(num_stacks)]


def state_batch_dim(index: int, num_stacks: int) -> int:
    """The batch dim of ``states[index]``: 2 for keys and values, 1 otherwise."""
    return 2 if STATE_KINDS[index // num_stacks] in _KINDS_BATCHED_ON_DIM_2 else 1


def _num_stacks(states: List[Tensor]) -> int:
    """len(states) / 7 (a literal 7 = len(STATE_KINDS), as TorchScript reads no globals)."""
    if len(states) == 0 or len(states) % 7 != 0:
        raise ValueError(f"expected 7 x num_stacks state tensors, got {len(states)}")
    return len(states) // 7


def stack_states(state_list: List[List[Tensor]]) -> List[Tensor]:
    """Batch streams: ``state_list[n]`` is stream n's state list -> one state list of all streams in order."""
    num_stacks = _num_stacks(state_list[0])
    return [
        torch.cat([states[i] for states in state_list], dim=state_batch_dim(i, num_stacks))
        for i in range(len(state_list[0]))
    ]


def unstack_states(states: List[Tensor]) -> List[List[Tensor]]:
    """Inverse of ``stack_states``: a batched state list -> one state list per stream (batch 1 each)."""
    num_stacks = _num_stacks(states)
    batch = states[0].size(1)
    per_kind = [state.split(1, dim=state_batch_dim(i, num_stacks)) for i, state in enumerate(states)]
    return [[pieces[n] for pieces in per_kind] for n in range(batch)]


def caches_from_states(states: List[Tensor]) -> List[List[LayerCache]]:
    """Flat state list -> ``caches[stack][layer]``."""
    s = _num_stacks(states)
    caches: List[List[LayerCache]] = []
    for i in range(s):
        caches.append(
            [
                LayerCache(
                    states[i][j], states[s + i][j], states[2 * s + i][j], states[3 * s + i][j],
                    states[4 * s + i][j], states[5 * s + i][j], states[6 * s + i][j],
                )
                for j in range(states[i].size(0))
            ]
        )
    return caches


def states_from_caches(caches: List[List[LayerCache]]) -> List[Tensor]:
    """``caches[stack][layer]`` -> flat state list (inverse of ``caches_from_states``)."""
    lens, avgs, keys, vals, val2s, conv1s, conv2s = [], [], [], [], [], [], []
    for stack in caches:
        lens.append(torch.stack([c.len for c in stack]))
        avgs.append(torch.stack([c.avg for c in stack]))
        keys.append(torch.stack([c.key for c in stack]))
        vals.append(torch.stack([c.val for c in stack]))
        val2s.append(torch.stack([c.val2 for c in stack]))
        conv1s.append(torch.stack([c.conv1 for c in stack]))
        conv2s.append(torch.stack([c.conv2 for c in stack]))
    return lens + avgs + keys + vals + val2s + conv1s + conv2s
