"""Streaming Zipformer transducer: encoder, decoder, joiner, loss wiring.

Modules, from the bottom up: ``scaling`` and ``grad_regularizers`` (building blocks), ``subsampling``
(front end), ``attention``, ``encoder_layer``, ``frame_rate`` (down/upsampling between stacks),
``zipformer`` (the encoder), ``encoder_state`` (streaming states), ``decoder``, ``joiner``, ``transducer``;
``config`` holds the dimensions and ``warmup`` the batch-count schedules.
"""

from icefall_lite.model.config import TransducerConfig, ZipformerConfig, parse_per_stack
from icefall_lite.model.encoder_state import stack_states, state_names, unstack_states
from icefall_lite.model.transducer import Transducer, combine_losses
from icefall_lite.model.warmup import set_batch_count
from icefall_lite.model.zipformer import Zipformer

__all__ = [
    "Transducer",
    "TransducerConfig",
    "Zipformer",
    "ZipformerConfig",
    "combine_losses",
    "parse_per_stack",
    "set_batch_count",
    "stack_states",
    "state_names",
    "unstack_states",
]
