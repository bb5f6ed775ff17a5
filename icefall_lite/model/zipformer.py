"""The streaming Zipformer encoder: Conv2dSubsampling, then stacks of layers at different frame rates.

Usage::

    encoder = Zipformer(ZipformerConfig())
    out, out_lens = encoder(x, x_lens)                                  # (N, T, 80) -> (N, ((T-7)//2+1)//2, 384)
    states = encoder.get_init_state(torch.device("cpu"))
    out, out_lens, states = encoder.streaming_forward(chunk, chunk_lens, states)   # chunk: (1, 39, 80)

In training, each batch uses one random attention chunk size (about a quarter of the batches attend to the
whole utterance); in eval mode the whole-utterance forward attends in chunks of ``decode_chunk_size``
frames (50 Hz) with ``num_left_chunks`` chunks of left context. ``streaming_forward`` fed chunk after chunk
(``2 * decode_chunk_size + 7`` fbank frames, advancing by ``2 * decode_chunk_size``) gives the same output as
that eval-mode forward, from the first chunk on: cache slots not yet filled are masked out.
"""

import random
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from icefall_lite.model.attention import RelPositionalEncoding, attention_bias, attention_mask
from icefall_lite.model.config import ZipformerConfig
from icefall_lite.model.encoder_layer import LayerCache, LayerDims, ZipformerEncoderLayer
from icefall_lite.model.encoder_state import caches_from_states, states_from_caches
from icefall_lite.model.frame_rate import AttentionDownsample, SimpleCombiner, SimpleUpsample
from icefall_lite.model.subsampling import Conv2dSubsampling
from icefall_lite.model.warmup import ICEFALL_WARMUP_BATCHES, linear_warmup

OUTPUT_DOWNSAMPLING_FACTOR = 2
FEATURE_MASK_DROPOUT_PROB = 0.15
# Per-layer layer-drop probability over the layer's warm-up window.
LAYERDROP_INITIAL, LAYERDROP_FINAL = 0.5, 0.05
# Probability of dropping a skip connection: 0.5 -> 0.025 over warmup_batches, then 0.025.
SKIP_DROPOUT_INITIAL, SKIP_DROPOUT_FINAL = 0.5, 0.025


def padding_mask(lengths: Tensor, num_frames: int) -> Tensor:
    """lengths: (N,) int64 -> (N, num_frames) bool, True at frames >= length."""
    return torch.arange(num_frames, device=lengths.device).unsqueeze(0) >= lengths.unsqueeze(1)


def skip_sources(downsampling_factors: Tuple[int, ...]) -> List[int]:
    """For each stack, the earlier stack whose output is combined into its input, or -1 for none.

    A skip is added where the frame rate goes back up (factor decreases after an increase): from the latest
    stack j <= i - 2 with factor <= this stack's (or stack 0). For (1, 2, 4, 8, 2) -> [-1, -1, -1, -1, 1].
    """
    sources: List[int] = []
    for i, factor in enumerate(downsampling_factors):
        if i <= 1 or downsampling_factors[i - 1] <= factor:
            sources.append(-1)
            continue
        candidates = [j for j in range(i - 2, 0, -1) if downsampling_factors[j] <= factor]
        sources.append(candidates[0] if candidates else 0)
    return sources


class PassThrough(nn.Module):
    """Stands in for a ``SimpleCombiner`` at stacks without a skip connection: returns src2."""

    def forward(self, src1: Tensor, src2: Tensor) -> Tensor:
        return src2


class ZipformerEncoder(nn.Module):
    """A stack of ``ZipformerEncoderLayer``s at one frame rate, sharing one relative-position embedding.

    In training, layers are dropped (each w.p. 0.5 -> 0.05 over its part of [warmup_begin, warmup_end] in
    batches; the number dropped is drawn from an RNG seeded by the batch count, so DDP workers agree), and
    ``feature_mask`` multiplies the input and every layer's output.
    """

    def __init__(
        self, dims: LayerDims, num_layers: int, warmup: Tuple[float, float],
        model_warmup_batches: float = ICEFALL_WARMUP_BATCHES,
    ) -> None:
        super().__init__()
        self.batch_count = 0.0
        self.warmup_begin, self.warmup_end = warmup
        self.module_seed = int(torch.randint(0, 1000, ()).item())
        self.embed_dim, self.attention_dim, self.kernel_size = dims.embed_dim, dims.attention_dim, dims.kernel_size
        self.encoder_pos = RelPositionalEncoding(dims.embed_dim, dims.dropout)
        self.layers = nn.ModuleList([ZipformerEncoderLayer(dims, model_warmup_batches) for _ in range(num_layers)])

    def forward(
        self, src: Tensor, lengths: Tensor, chunk_size: int, num_left_chunks: int, feature_mask: Optional[Tensor], caches: List[LayerCache]
    ) -> Tuple[Tensor, List[LayerCache]]:
        """
        Args:
          src: (T, N, C) float; lengths: (N,) int64 valid frames.
          chunk_size: attention chunk in frames at this stack's rate, <= 0 for none (see ``attention_mask``).
          num_left_chunks: left chunks visible, < 0 for all.
          feature_mask: (T, N, C) float 0/1 (training) or None.
          caches: one per layer; their attention caches hold S frames (S = 0 for a whole utterance).
        Returns:
          (T, N, C) output and the updated caches.
        """
        num_frames = src.size(0)
        cache_size = caches[0].key.size(0)
        pad_mask = padding_mask(lengths, num_frames)
        attn_mask = attention_mask(lengths, caches[0].len, cache_size, num_frames, chunk_size, num_left_chunks)
        attn_bias = attention_bias(attn_mask, src.dtype)
        pos_emb = self.encoder_pos(cache_size, num_frames)
        dropped: List[int] = self._layers_to_drop() if self.training else []
        if feature_mask is not None:
            src = src * feature_mask
        new_caches: List[LayerCache] = []
        for i, layer in enumerate(self.layers):
            cache = caches[i]
            if i not in dropped:
                src, cache = layer(src, pos_emb, attn_bias, pad_mask, cache)
                if feature_mask is not None:
                    src = src * feature_mask
            new_caches.append(cache)
        return src, new_caches

    def initial_caches(self, batch: int, cache_size: int, device: torch.device, dtype: torch.dtype) -> List[LayerCache]:
        """Zero caches (one per layer) for ``batch`` new streams, with ``cache_size`` attention slots."""
        conv = torch.zeros(batch, self.embed_dim, self.kernel_size - 1, device=device, dtype=dtype)
        value = torch.zeros(cache_size, batch, self.attention_dim // 2, device=device, dtype=dtype)
        cache = LayerCache(
            len=torch.zeros(batch, device=device, dtype=torch.int64),
            avg=torch.zeros(batch, self.embed_dim, device=device, dtype=dtype),
            key=torch.zeros(cache_size, batch, self.attention_dim, device=device, dtype=dtype),
            val=value, val2=value, conv1=conv, conv2=conv,
        )
        return [cache for _ in self.layers]

    def layerdrop_probs(self) -> List[float]:
        """Each layer's drop probability at the current batch count."""
        num_layers = len(self.layers)
        width = (self.warmup_end - self.warmup_begin) / num_layers
        return [
            linear_warmup(self.batch_count, begin, begin + width, LAYERDROP_INITIAL, LAYERDROP_FINAL)
            for begin in (self.warmup_begin + i * width for i in range(num_layers))
        ]

    @torch.jit.unused
    def _layers_to_drop(self) -> List[int]:
        if self.batch_count == 0:
            return []
        probs = self.layerdrop_probs()
        total = sum(probs)
        shared_rng = random.Random(int(self.batch_count) + self.module_seed)
        num_to_drop = int(total) + int(shared_rng.random() < total - int(total))
        if num_to_drop == 0:
            return []
        return torch.multinomial(torch.tensor(probs), num_to_drop).tolist()


class DownsampledZipformerEncoder(nn.Module):
    """AttentionDownsample -> ZipformerEncoder -> SimpleUpsample -> truncate -> SimpleCombiner(input, output)."""

    def __init__(self, encoder: ZipformerEncoder, input_dim: int, output_dim: int, downsample: int) -> None:
        super().__init__()
        self.downsample_factor = downsample
        self.downsample = AttentionDownsample(input_dim, output_dim, downsample)
        self.encoder = encoder
        self.upsample = SimpleUpsample(output_dim, downsample)
        self.out_combiner = SimpleCombiner(input_dim, output_dim, min_weight=(0.0, 0.25))

    def forward(
        self, src: Tensor, lengths: Tensor, chunk_size: int, num_left_chunks: int, feature_mask: Optional[Tensor], caches: List[LayerCache]
    ) -> Tuple[Tensor, List[LayerCache]]:
        """As ``ZipformerEncoder.forward``; src (T, N, input_dim) -> (T, N, output_dim). ``chunk_size`` is at the
        input's rate and must be a multiple of the downsampling factor; feature_mask is at the reduced rate."""
        down, down_lengths = self.downsample(src, lengths)
        if chunk_size > 0:
            chunk_size = chunk_size // self.downsample_factor
        out, caches = self.encoder(down, down_lengths, chunk_size, num_left_chunks, feature_mask, caches)
        up = self.upsample(out)[: src.size(0)]
        return self.out_combiner(src, up), caches

    def initial_caches(self, batch: int, cache_size: int, device: torch.device, dtype: torch.dtype) -> List[LayerCache]:
        """As ``ZipformerEncoder.initial_caches`` (``cache_size`` at the reduced rate)."""
        return self.encoder.initial_caches(batch, cache_size, device, dtype)


class Zipformer(nn.Module):
    """Streaming Zipformer encoder (see the module docstring); ``config`` holds every dimension."""

    def __init__(self, config: ZipformerConfig) -> None:
        super().__init__()
        self.config = config
        self.batch_count = 0.0
        self.num_left_chunks = config.num_left_chunks
        self.decode_chunk_size = config.decode_chunk_size
        self.left_context_len: List[int] = list(config.left_context_len)
        self.encoder_embed = Conv2dSubsampling(config.feature_dim, config.encoder_dims[0], config.dropout)
        self.encoders = nn.ModuleList([self._make_stack(i) for i in range(config.num_stacks)])
        self.skip_layers = skip_sources(config.zipformer_downsampling_factors)
        self.skip_modules = nn.ModuleList(
            [
                PassThrough() if k < 0 else SimpleCombiner(config.encoder_dims[k], config.encoder_dims[i - 1])
                for i, k in enumerate(self.skip_layers)
            ]
        )
        self.downsample_output = AttentionDownsample(config.output_dim, config.output_dim, OUTPUT_DOWNSAMPLING_FACTOR)

    def _make_stack(self, i: int) -> nn.Module:
        c = self.config
        period = c.warmup_batches / (c.num_stacks + 1)
        dims = LayerDims(
            c.encoder_dims[i], c.attention_dims[i], c.nhead[i], c.feedforward_dims[i], c.cnn_module_kernels[i], c.pos_dim, c.dropout
        )
        encoder = ZipformerEncoder(dims, c.num_encoder_layers[i], (period * (i + 1), period * (i + 2)), c.warmup_batches)
        ds = c.zipformer_downsampling_factors[i]
        if ds == 1:
            return encoder
        return DownsampledZipformerEncoder(encoder, c.encoder_dims[max(i - 1, 0)], c.encoder_dims[i], ds)

    def forward(self, x: Tensor, x_lens: Tensor) -> Tuple[Tensor, Tensor]:
        """Whole utterances: chunked attention with a random chunk (training) or ``decode_chunk_size`` (eval).

        Args:
          x: (N, T, feature_dim) float fbank frames at 100 Hz, T >= 7; x_lens: (N,) int64 valid frames.
        Returns:
          (N, T', output_dim) float at 25 Hz, T' = ((T - 7) // 2 + 1) // 2, and (N,) int64 valid output frames.
        """
        x, lengths = self.encoder_embed(x, x_lens)
        num_frames = x.size(1)
        chunk_size = self._training_chunk_size(num_frames) if self.training else self.decode_chunk_size
        caches = self._initial_caches(x.size(0), [0] * len(self.encoders), x.device, x.dtype)
        x, lengths, _ = self._encode(x.permute(1, 0, 2), lengths, chunk_size, caches)
        return x.permute(1, 0, 2), lengths

    @torch.jit.export
    def streaming_forward(self, x: Tensor, x_lens: Tensor, states: List[Tensor]) -> Tuple[Tensor, Tensor, List[Tensor]]:
        """One chunk of a batch of streams; each chunk attends to itself and the cached left context.

        Args:
          x: (N, T, feature_dim) float: the chunk's fbank frames plus the 7 that overlap the next chunk
            (T = 2 * decode_chunk_size + 7 for output equal to the eval-mode forward).
          x_lens: (N,) int64 valid frames; only a stream's last chunk may be shorter than T.
          states: 7 x num_stacks tensors (see ``encoder_state``), e.g. ``stack_states`` of ``get_init_state``s.
        Returns:
          (N, ((T - 7) // 2 + 1) // 2, output_dim) float, (N,) int64 valid output frames, the new states.
        """
        if len(states) != 7 * len(self.encoders) or states[0].size(1) != x.size(0):
            raise ValueError(
                f"states must be {7 * len(self.encoders)} tensors with batch {x.size(0)} (that of x), "
                f"got {len(states)} tensors, states[0] of shape {list(states[0].shape)}"
            )
        x, lengths = self.encoder_embed(x, x_lens)
        x, lengths, caches = self._encode(x.permute(1, 0, 2), lengths, -1, caches_from_states(states))
        return x.permute(1, 0, 2), lengths, states_from_caches(caches)

    @torch.jit.export
    def get_init_state(self, device: torch.device) -> List[Tensor]:
        """The state of one new stream (batch 1): zeros, with ``left_context_len[i]`` attention slots per stack."""
        if self.decode_chunk_size <= 0:
            raise ValueError(f"streaming needs decode_chunk_size > 0 in ZipformerConfig, got {self.decode_chunk_size}")
        dtype = self.encoder_embed.out.weight.dtype
        return states_from_caches(self._initial_caches(1, self.left_context_len, device, dtype))

    def _encode(
        self, x: Tensor, lengths: Tensor, chunk_size: int, caches: List[List[LayerCache]]
    ) -> Tuple[Tensor, Tensor, List[List[LayerCache]]]:
        """x: (T, N, encoder_dims[0]) at 50 Hz, lengths: (N,) -> (ceil(T / 2), N, output_dim) at 25 Hz,
        the output lengths and the updated caches."""
        no_masks: List[Optional[Tensor]] = [None for _ in range(len(self.encoders))]
        feature_masks = self._feature_masks(x) if self.training else no_masks
        outputs: List[Tensor] = []
        new_caches: List[List[LayerCache]] = []
        for i, (stack, skip) in enumerate(zip(self.encoders, self.skip_modules)):
            k = self.skip_layers[i]
            if k >= 0 and not (self.training and self._drop_skip()):
                x = skip(outputs[k], x)
            x, stack_caches = stack(x, lengths, chunk_size, self.num_left_chunks, feature_masks[i], caches[i])
            outputs.append(x)
            new_caches.append(stack_caches)
        x, lengths = self.downsample_output(x, lengths)
        return x, lengths, new_caches

    def _initial_caches(self, batch: int, cache_sizes: List[int], device: torch.device, dtype: torch.dtype) -> List[List[LayerCache]]:
        """Zero caches for ``batch`` new streams, with ``cache_sizes[i]`` attention slots in stack i."""
        caches: List[List[LayerCache]] = []
        for i, stack in enumerate(self.encoders):
            caches.append(stack.initial_caches(batch, cache_sizes[i], device, dtype))
        return caches

    @torch.jit.unused
    def _training_chunk_size(self, num_frames: int) -> int:
        """Attention chunk for one training batch of ``num_frames`` (50 Hz) frames, or -1 for full attention:
        about a quarter of batches attend fully, the rest use a multiple of the largest downsampling factor
        up to ``short_chunk_size``."""
        c = self.config
        max_ds = c.max_downsampling_factor
        max_len = num_frames // max_ds
        if max_len < 2:
            return -1
        draw = int(torch.randint(1, max_len, ()).item())
        if draw > c.short_chunk_threshold * max_len:
            return -1
        return (draw % (c.short_chunk_size // max_ds) + 1) * max_ds

    @torch.jit.unused
    def _drop_skip(self) -> bool:
        prob = linear_warmup(self.batch_count, 0.0, self.config.warmup_batches, SKIP_DROPOUT_INITIAL, SKIP_DROPOUT_FINAL)
        return random.random() < prob

    @torch.jit.unused
    def _feature_masks(self, x: Tensor) -> List[Optional[Tensor]]:
        """x: (T, N, C) at 50 Hz -> per stack a (ceil(T / ds_i), N, encoder_dims[i]) 0/1 mask that zeroes the
        channels from ``encoder_unmasked_dims[i]`` on, at the same 15% of frames (drawn at the slowest rate)."""
        c = self.config
        num_frames, batch = x.size(0), x.size(1)
        max_ds = c.max_downsampling_factor
        keep = torch.rand((num_frames + max_ds - 1) // max_ds, 1, batch, 1, device=x.device) > FEATURE_MASK_DROPOUT_PROB
        masks: List[Optional[Tensor]] = []
        for ds, dim, unmasked in zip(c.zipformer_downsampling_factors, c.encoder_dims, c.encoder_unmasked_dims):
            frames = (num_frames + ds - 1) // ds
            frame_keep = keep.expand(-1, max_ds // ds, batch, 1).reshape(-1, batch, 1)[:frames].to(x.dtype)
            always = torch.ones(frames, batch, unmasked, device=x.device, dtype=x.dtype)
            masks.append(torch.cat([always, frame_keep.expand(frames, batch, dim - unmasked)], dim=2))
        return masks
