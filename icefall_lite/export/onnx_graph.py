"""Folding the shape arithmetic of an exported ONNX graph that does not depend on the batch size.

The TorchScript exporter records every ``tensor.size(i)`` as ``Shape -> Gather`` and everything computed from it
(reshape targets, mask and position-embedding sizes, cache slices) as nodes: with a dynamic batch axis N,
onnxruntime can fold none of it, and the streaming encoder runs thousands of such small nodes per chunk. Most
of these values (frame counts, cache lengths, channels) do not depend on N. ``fold_batch_independent_shapes``
finds the values computed from input shapes and constants alone, evaluates them with onnxruntime at batch
sizes 1, 2 and 3, and stores those that agree as initializers; nodes left without consumers are removed.
onnxruntime then folds what they fed (e.g. relative-position embeddings and their per-layer projections).

Values computed from shapes alone depend on nothing but N (every other input dimension is fixed), so
agreement at three batch sizes identifies the batch-independent ones.

Usage::

    fold_batch_independent_shapes(Path("encoder-epoch-30-avg-9.onnx"))  # rewrites the file
"""

from pathlib import Path
from typing import Dict, List, Sequence, Set

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

PROBE_BATCH_SIZES = (1, 2, 3)
# Operators through which a value computed from shapes (and constants) stays one.
SHAPE_ARITHMETIC_OPS = frozenset(
    {
        "Add", "And", "Cast", "Concat", "ConstantOfShape", "Div", "Equal", "Expand", "Gather", "Greater",
        "Identity", "Less", "Max", "Min", "Mod", "Mul", "Neg", "Not", "Or", "Range", "Reshape", "Slice",
        "Squeeze", "Sub", "Unsqueeze", "Where",
    }
)
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64}


def shape_derived_values(graph: onnx.GraphProto) -> List[str]:
    """Names of the values computed from input shapes and constants only, in graph (topological) order."""
    known: Set[str] = {initializer.name for initializer in graph.initializer}
    derived: List[str] = []
    for node in graph.node:
        if node.op_type == "Constant":
            known.update(node.output)
        elif node.op_type == "Shape" or (
            node.op_type in SHAPE_ARITHMETIC_OPS and all(name == "" or name in known for name in node.input)
        ):
            known.update(node.output)
            derived.extend(node.output)
    return derived


def _value_types(model: onnx.ModelProto) -> Dict[str, int]:
    """ONNX element type of every intermediate value that shape inference can type."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {info.name: info.type.tensor_type.elem_type for info in inferred.graph.value_info}
    types.update({node.output[0]: TensorProto.INT64 for node in model.graph.node if node.op_type == "Shape"})
    return types


def evaluate_values(model: onnx.ModelProto, types: Dict[str, int], batch_sizes: Sequence[int]) -> List[Dict[str, np.ndarray]]:
    """Run ``model`` once per batch size on all-zero inputs whose dynamic dimensions are that size, and return
    each run's values of the names in ``types`` (name -> ONNX element type)."""
    names = list(types)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(name, types[name], None) for name in names)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    runs = []
    for batch in batch_sizes:
        feeds = {
            model_input.name: np.zeros(
                [batch if isinstance(dim, str) else dim for dim in model_input.shape], dtype=_NUMPY_TYPES[model_input.type]
            )
            for model_input in session.get_inputs()
        }
        runs.append(dict(zip(names, session.run(names, feeds))))
    return runs


def _remove_unused(graph: onnx.GraphProto) -> None:
    """Drop the nodes and initializers that no graph output depends on."""
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    initializers = [initializer for initializer in graph.initializer if initializer.name in needed]
    del graph.node[:]
    graph.node.extend(reversed(kept))
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def fold_batch_independent_shapes(path: Path) -> None:
    """Rewrite the ONNX file at ``path`` with its batch-independent shape arithmetic folded (module docstring).
    Its inputs and outputs, their names and the metadata are unchanged."""
    model = onnx.load(str(path))
    types = _value_types(model)
    derived = {name: types[name] for name in shape_derived_values(model.graph) if name in types}
    first, *others = evaluate_values(model, derived, PROBE_BATCH_SIZES)
    constant = {
        name for name in derived
        if all(values[name].shape == first[name].shape and np.array_equal(values[name], first[name]) for values in others)
    }
    graph = model.graph
    nodes = list(graph.node)
    del graph.node[:]
    for node in nodes:
        if node.op_type != "Constant" and set(node.output) <= constant:
            graph.initializer.extend(numpy_helper.from_array(first[name], name) for name in node.output)
        else:
            graph.node.append(node)
    _remove_unused(graph)
    onnx.save(model, str(path))
