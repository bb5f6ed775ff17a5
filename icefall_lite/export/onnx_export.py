"""ONNX files for sherpa-onnx's streaming Zipformer (``OnlineZipformerTransducerModel``), spec section 6.4.

Three files, each with the input/output names and metadata that sherpa-onnx reads:

| file | inputs | outputs | metadata |
|---|---|---|---|
| encoder | ``x`` (N, T, 80), the 35 states (``cached_len_0`` ... ``cached_conv2_4``) | ``encoder_out`` (N, T', joiner_dim), ``new_cached_len_0`` ... | model_type, version, model_author, decode_chunk_len, T, num_encoder_layers, encoder_dims, attention_dims, cnn_module_kernels, left_context_len |
| decoder | ``y`` (N, context_size) int64 | ``decoder_out`` (N, joiner_dim) | context_size, vocab_size |
| joiner | ``encoder_out``, ``decoder_out`` (N, joiner_dim) | ``logit`` (N, vocab_size) | joiner_dim |

The encoder and decoder outputs are already projected into the joiner's space, so the joiner is only
``output_linear(tanh(encoder_out + decoder_out))``. T = decode_chunk_len + 7 fbank frames per chunk; sherpa-onnx
advances by decode_chunk_len. The batch axis N is dynamic everywhere. The float32 encoder runs its feed-forward
and convolution modules as 1x1 convolutions in onnxruntime's NCHWc layout (``scaling.pointwise_conv``); the int8
files come from a second export that keeps them MatMul, which int8 quantization needs (``export_int8``).

Usage::

    paths = export_onnx(model, Path("exp"), suffix="epoch-30-avg-9")
    export_int8(model, paths)  # encoder-epoch-30-avg-9.int8.onnx, ...
"""

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import Tensor, nn

from icefall_lite.export.onnx_graph import fold_batch_independent_shapes
from icefall_lite.export.torchscript import example_chunk, quiet_tracing
from icefall_lite.model.decoder import Decoder
from icefall_lite.model.encoder_state import state_batch_dim, state_names
from icefall_lite.model.joiner import Joiner
from icefall_lite.model.scaling import matmul_onnx_forms
from icefall_lite.model.transducer import Transducer
from icefall_lite.model.zipformer import Zipformer

OPSET_VERSION = 13
MODEL_TYPE = "zipformer"


@dataclass(frozen=True)
class OnnxPaths:
    """The three files of one export."""

    encoder: Path
    decoder: Path
    joiner: Path

    def as_list(self) -> List[Path]:
        return [self.encoder, self.decoder, self.joiner]


class OnnxEncoder(nn.Module):
    """Streaming forward of one chunk (all frames valid) followed by the joiner's ``encoder_proj``."""

    def __init__(self, encoder: Zipformer, encoder_proj: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder_proj = encoder_proj

    def forward(self, x: Tensor, states: List[Tensor]) -> Tuple[Tensor, List[Tensor]]:
        """
        Args:
          x: (N, T, feature_dim) float, T = decode_chunk_len + 7 fbank frames of each stream's chunk.
          states: the 7 x num_stacks stacked encoder states (see ``encoder_state``).
        Returns:
          (N, T', joiner_dim) float projected encoder frames and the new states.
        """
        x_lens = torch.full_like(x[:, 0, 0], x.size(1), dtype=torch.int64)
        encoder_out, _, new_states = self.encoder.streaming_forward(x, x_lens, states)
        return self.encoder_proj(encoder_out), new_states


class OnnxDecoder(nn.Module):
    """Decoder on the last ``context_size`` tokens followed by the joiner's ``decoder_proj``."""

    def __init__(self, decoder: Decoder, decoder_proj: nn.Linear) -> None:
        super().__init__()
        self.decoder = decoder
        self.decoder_proj = decoder_proj

    def forward(self, y: Tensor) -> Tensor:
        """y: (N, context_size) int64 token ids (-1: none) -> (N, joiner_dim) float."""
        return self.decoder_proj(self.decoder(y, need_pad=False).squeeze(1))


class OnnxJoiner(nn.Module):
    """The joiner on already projected inputs."""

    def __init__(self, joiner: Joiner) -> None:
        super().__init__()
        self.joiner = joiner

    def forward(self, encoder_out: Tensor, decoder_out: Tensor) -> Tensor:
        """encoder_out, decoder_out: (N, joiner_dim) float -> (N, vocab_size) float logits."""
        return self.joiner(encoder_out, decoder_out, project_input=False)


def _joined(values: Sequence[int]) -> str:
    return ",".join(str(value) for value in values)


def encoder_metadata(encoder: Zipformer) -> Dict[str, str]:
    """The encoder file's metadata, as sherpa-onnx requires it."""
    config = encoder.config
    decode_chunk_len = 2 * config.decode_chunk_size
    return {
        "model_type": MODEL_TYPE,
        "version": "1",
        "model_author": "icefall_lite",
        "decode_chunk_len": str(decode_chunk_len),
        "T": str(decode_chunk_len + encoder.encoder_embed.context),
        "num_encoder_layers": _joined(config.num_encoder_layers),
        "encoder_dims": _joined(config.encoder_dims),
        "attention_dims": _joined(config.attention_dims),
        "cnn_module_kernels": _joined(config.cnn_module_kernels),
        "left_context_len": _joined(config.left_context_len),
    }


def add_metadata(path: Path, metadata: Dict[str, str]) -> None:
    """Store ``metadata`` as the ONNX file's ``metadata_props`` (replacing keys already there)."""
    model = onnx.load(str(path))
    kept = [prop for prop in model.metadata_props if prop.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def read_metadata(path: Path) -> Dict[str, str]:
    """The ``metadata_props`` of an ONNX file."""
    return {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}


def export_module(module: nn.Module, args: Tuple, path: Path, input_names: List[str], output_names: List[str], dynamic_axes: Dict[str, Dict[int, str]]) -> None:
    """``torch.onnx.export`` with the TorchScript-based exporter, in eval mode (the exporter restores the
    wrapper's mode afterwards, hence eval on the wrapper too); the tracer's warnings about shape checks turned
    into constants are expected and silenced."""
    module.eval()
    with quiet_tracing():
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=OPSET_VERSION,
            dynamo=False,
        )


def export_encoder(model: Transducer, path: Path) -> None:
    """Write the encoder file (see the module docstring) for chunks of ``decode_chunk_len + 7`` frames."""
    encoder = model.encoder
    x, _, states = example_chunk(encoder)
    names = state_names(len(encoder.encoders))
    axes: Dict[str, Dict[int, str]] = {"x": {0: "N"}, "encoder_out": {0: "N"}}
    for i, name in enumerate(names):
        batch_axis = {state_batch_dim(i, len(encoder.encoders)): "N"}
        axes[name] = batch_axis
        axes[f"new_{name}"] = batch_axis
    wrapper = OnnxEncoder(encoder, model.joiner.encoder_proj)
    export_module(wrapper, (x, states), path, ["x"] + names, ["encoder_out"] + [f"new_{name}" for name in names], axes)
    fold_batch_independent_shapes(path)
    add_metadata(path, encoder_metadata(encoder))


def export_decoder(model: Transducer, path: Path) -> None:
    """Write the decoder file: ``y`` (N, context_size) int64 -> ``decoder_out`` (N, joiner_dim)."""
    decoder = model.decoder
    y = torch.zeros(2, decoder.context_size, dtype=torch.int64)
    wrapper = OnnxDecoder(decoder, model.joiner.decoder_proj)
    export_module(wrapper, (y,), path, ["y"], ["decoder_out"], {"y": {0: "N"}, "decoder_out": {0: "N"}})
    add_metadata(path, {"context_size": str(decoder.context_size), "vocab_size": str(decoder.vocab_size)})


def export_joiner(model: Transducer, path: Path) -> None:
    """Write the joiner file: ``encoder_out``, ``decoder_out`` (N, joiner_dim) -> ``logit`` (N, vocab_size)."""
    joiner_dim = model.joiner.output_linear.in_features
    projected = torch.zeros(2, joiner_dim)
    axes = {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}}
    export_module(OnnxJoiner(model.joiner), (projected, projected), path, ["encoder_out", "decoder_out"], ["logit"], axes)
    add_metadata(path, {"joiner_dim": str(joiner_dim)})


def export_onnx(model: Transducer, out_dir: Path, suffix: str) -> OnnxPaths:
    """Write ``{encoder,decoder,joiner}-{suffix}.onnx`` into ``out_dir`` (fp32, CPU); the model is switched to
    eval mode and moved to the CPU."""
    model.eval().cpu()
    paths = OnnxPaths(*(out_dir / f"{part}-{suffix}.onnx" for part in ("encoder", "decoder", "joiner")))
    with torch.no_grad():
        export_encoder(model, paths.encoder)
        export_decoder(model, paths.decoder)
        export_joiner(model, paths.joiner)
    return paths


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs a line per tensor (and advice on pre-processing) to the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def int8_path(path: Path) -> Path:
    """``encoder-x.onnx`` -> ``encoder-x.int8.onnx``."""
    return path.with_suffix(".int8.onnx")


def _quantize(float_path: Path, int8_out: Path, op_types: List[str]) -> None:
    """Dynamic int8 quantization by onnxruntime of the weights of ``op_types`` nodes; the metadata is kept."""
    with _quiet_root_logger():
        quantize_dynamic(str(float_path), str(int8_out), op_types_to_quantize=op_types, weight_type=QuantType.QInt8)


def export_int8(model: Transducer, paths: OnnxPaths) -> OnnxPaths:
    """Write ``*.int8.onnx`` next to the float files of ``export_onnx``: weights of MatMul (and the decoder's
    embedding Gather) dynamically quantized to int8. The encoder is quantized from a second export whose linear
    layers all stay MatMul (``matmul_onnx_forms``); the decoder and joiner have no other form and are quantized
    from ``paths``."""
    int8_paths = OnnxPaths(*(int8_path(path) for path in paths.as_list()))
    with tempfile.TemporaryDirectory() as matmul_dir, matmul_onnx_forms(), torch.no_grad():
        matmul_encoder = Path(matmul_dir) / paths.encoder.name
        export_encoder(model.eval().cpu(), matmul_encoder)
        _quantize(matmul_encoder, int8_paths.encoder, ["MatMul"])
    _quantize(paths.decoder, int8_paths.decoder, ["MatMul", "Gather"])
    _quantize(paths.joiner, int8_paths.joiner, ["MatMul"])
    return int8_paths
