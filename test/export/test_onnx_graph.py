"""Folding the batch-independent shape arithmetic of an exported graph, and export forms onnxruntime fuses."""

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import onnx
import onnxruntime
import torch
from model.tiny_models import randomize_  # test/model/tiny_models.py (test/ is on sys.path)
from torch import Tensor, nn

from icefall_lite.export.onnx_graph import fold_batch_independent_shapes, shape_derived_values
from icefall_lite.model.encoder_layer import ConvolutionModule, FeedforwardModule
from icefall_lite.model.scaling import BasicNorm


class PairSums(nn.Module):
    """Sums channel pairs and scales by the channel count: shapes used both with and without the batch."""

    def forward(self, x: Tensor) -> Tensor:
        """x: (N, C) -> (N, C / 2)."""
        pairs = x.reshape(x.size(0), x.size(1) // 2, 2)
        return pairs.sum(-1) * x.size(1) + torch.arange(x.size(1) // 2, dtype=x.dtype)


def _export(path: Path) -> None:
    torch.onnx.export(
        PairSums(), (torch.zeros(2, 6),), str(path), input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=13, dynamo=False,
    )


def _op_types(path: Path) -> List[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_batch_independent_values_become_initializers_and_outputs_stay(tmp_path: Path) -> None:
    path = tmp_path / "pair_sums.onnx"
    _export(path)
    before = _op_types(path)
    assert "Range" in before and before.count("Shape") >= 2
    fold_batch_independent_shapes(path)
    after = _op_types(path)
    assert "Range" not in after and after.count("Shape") == 1  # only the batch size is still read
    assert len(after) < len(before)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(5, 6)
    (y,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(y, PairSums()(x).numpy(), rtol=1e-6)


def test_shape_derived_values_exclude_anything_computed_from_data(tmp_path: Path) -> None:
    path = tmp_path / "pair_sums.onnx"
    _export(path)
    graph = onnx.load(str(path)).graph
    derived = set(shape_derived_values(graph))
    producers = {name: node.op_type for node in graph.node for name in node.output}
    assert {producers[name] for name in derived} >= {"Shape", "Gather", "Range"}
    assert "y" not in derived and not any(producers[name] == "ReduceSum" for name in derived)


def _export_and_optimize(
    module: nn.Module, inputs: Tuple[Tensor, ...], batch_axes: Dict[str, int], tmp_path: Path
) -> onnxruntime.InferenceSession:
    """Export ``module`` (inputs named and batched as in ``batch_axes``) and open it in onnxruntime, which writes
    its optimized graph to tmp_path / "opt.onnx"."""
    path = tmp_path / "module.onnx"
    torch.onnx.export(
        module, inputs, str(path), input_names=list(batch_axes),
        dynamic_axes={name: {axis: "N"} for name, axis in batch_axes.items()}, opset_version=13, dynamo=False,
    )
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "opt.onnx")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def test_basic_norm_exports_as_one_fused_rms_norm(tmp_path: Path) -> None:
    norm = BasicNorm(16).eval()
    session = _export_and_optimize(norm, (torch.zeros(3, 2, 16),), {"x": 1}, tmp_path)
    assert _op_types(tmp_path / "opt.onnx") == ["SimplifiedLayerNormalization"]
    x = torch.randn(3, 4, 16) * 3.0
    (y,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(y, norm(x).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_feedforward_exports_as_one_nchwc_block(tmp_path: Path) -> None:
    feedforward = randomize_(FeedforwardModule(32, 64, dropout=0.0)).eval()
    session = _export_and_optimize(feedforward, (torch.zeros(8, 2, 32),), {"x": 1}, tmp_path)
    exported = _op_types(tmp_path / "module.onnx")
    assert "MatMul" not in exported and "Sub" not in exported and exported.count("Conv") == 2
    optimized = _op_types(tmp_path / "opt.onnx")
    assert optimized.count("ReorderInput") == 1 and optimized.count("ReorderOutput") == 1  # NCHWc from end to end
    x = torch.randn(8, 3, 32)
    (y,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(y, feedforward(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_convolution_module_exports_with_1x1_convolutions(tmp_path: Path) -> None:
    conv = randomize_(ConvolutionModule(32, kernel_size=5)).eval()
    x, cache = torch.randn(8, 3, 32), torch.randn(3, 32, 4)
    pad_mask = torch.zeros(3, 8, dtype=torch.bool)
    pad_mask[1, 6:] = True
    inputs = (torch.zeros(8, 2, 32), pad_mask[:2], cache[:2])
    session = _export_and_optimize(conv, inputs, {"x": 1, "pad_mask": 0, "cache": 0}, tmp_path)
    assert "MatMul" not in _op_types(tmp_path / "module.onnx")
    outputs = session.run(None, {"x": x.numpy(), "pad_mask": pad_mask.numpy(), "cache": cache.numpy()})
    for got, expected in zip(outputs, conv(x, pad_mask, cache)):
        np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-4, atol=1e-5)
