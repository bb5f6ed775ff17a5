"""ONNX export: the names, state order and metadata sherpa-onnx reads, and outputs equal to the model's."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.export.inputs import pad_for_chunks, wave_features
from icefall_lite.export.onnx_export import OnnxPaths, export_int8, export_onnx, read_metadata
from icefall_lite.export.onnx_model import OnnxTransducer
from icefall_lite.export.torchscript import StreamingEncoder, encode_in_chunks, example_chunk
from icefall_lite.model.encoder_state import state_names
from icefall_lite.model.transducer import Transducer

ENCODER_METADATA = {
    "model_type": "zipformer",
    "version": "1",
    "decode_chunk_len": "32",
    "T": "39",
    "num_encoder_layers": "1,1,1,1,1",
    "encoder_dims": "64,64,64,64,64",
    "attention_dims": "32,32,32,32,32",
    "cnn_module_kernels": "31,31,31,31,31",
    "left_context_len": "64,32,16,8,32",
}


@pytest.fixture(scope="module")
def onnx_paths(model: Transducer, tmp_path_factory: pytest.TempPathFactory) -> OnnxPaths:
    return export_onnx(model, tmp_path_factory.mktemp("onnx"), "epoch-1-avg-1")


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_files_names_and_metadata(onnx_paths: OnnxPaths) -> None:
    assert [path.name for path in onnx_paths.as_list()] == [
        "encoder-epoch-1-avg-1.onnx", "decoder-epoch-1-avg-1.onnx", "joiner-epoch-1-avg-1.onnx",
    ]
    encoder, decoder, joiner = (_session(path) for path in onnx_paths.as_list())
    names = state_names(5)
    assert [i.name for i in encoder.get_inputs()] == ["x"] + names
    assert [o.name for o in encoder.get_outputs()] == ["encoder_out"] + [f"new_{name}" for name in names]
    assert encoder.get_inputs()[0].shape == ["N", 39, 80]
    assert encoder.get_inputs()[1].type == "tensor(int64)" and encoder.get_inputs()[1].shape == [1, "N"]
    assert encoder.get_inputs()[11].shape == [1, 64, "N", 32]  # cached_key_0
    assert [i.name for i in decoder.get_inputs()] == ["y"] and decoder.get_inputs()[0].type == "tensor(int64)"
    assert [o.name for o in decoder.get_outputs()] == ["decoder_out"]
    assert [i.name for i in joiner.get_inputs()] == ["encoder_out", "decoder_out"]
    assert [o.name for o in joiner.get_outputs()] == ["logit"]
    metadata = read_metadata(onnx_paths.encoder)
    assert {key: metadata[key] for key in ENCODER_METADATA} == ENCODER_METADATA
    assert read_metadata(onnx_paths.decoder) == {"context_size": "2", "vocab_size": "80"}
    assert read_metadata(onnx_paths.joiner) == {"joiner_dim": "64"}


@pytest.mark.parametrize("batch", [1, 4])  # the export evaluates its shape arithmetic at batch 1, 2 and 3
@torch.no_grad()
def test_encoder_matches_the_streaming_forward_over_chunks(model: Transducer, onnx_paths: OnnxPaths, batch: int) -> None:
    session = _session(onnx_paths.encoder)
    input_names = [i.name for i in session.get_inputs()]
    x, x_lens, states = example_chunk(model.encoder, batch)
    onnx_states = [state.numpy() for state in states]
    generator = torch.Generator().manual_seed(batch)
    for _ in range(3):
        x = torch.randn(x.shape, generator=generator)
        expected, _, states = model.encoder.streaming_forward(x, x_lens, states)
        encoder_out, *onnx_states = session.run(None, dict(zip(input_names, [x.numpy()] + onnx_states)))
        np.testing.assert_allclose(encoder_out, model.joiner.encoder_proj(expected).numpy(), atol=1e-4, rtol=1e-4)
    for onnx_state, state in zip(onnx_states, states):
        np.testing.assert_allclose(onnx_state, state.numpy(), atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_decoder_and_joiner_match_the_model(model: Transducer, onnx_paths: OnnxPaths) -> None:
    y = torch.tensor([[-1, 0], [4, 79], [7, 7]])
    (decoder_out,) = _session(onnx_paths.decoder).run(None, {"y": y.numpy()})
    expected = model.joiner.decoder_proj(model.decoder(y, need_pad=False)).squeeze(1)
    np.testing.assert_allclose(decoder_out, expected.numpy(), atol=1e-5, rtol=1e-5)
    encoder_out = torch.randn(3, 64)
    (logit,) = _session(onnx_paths.joiner).run(None, {"encoder_out": encoder_out.numpy(), "decoder_out": decoder_out})
    expected_logit = model.joiner(encoder_out, torch.from_numpy(decoder_out), project_input=False)
    np.testing.assert_allclose(logit, expected_logit.numpy(), atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_onnx_greedy_search_gives_the_tokens_of_the_pytorch_greedy_search(
    model: Transducer, onnx_paths: OnnxPaths, waves: List[Path]
) -> None:
    features = wave_features(waves[:2], decode_chunk_len=32)[1]
    onnx_model = OnnxTransducer(onnx_paths)
    onnx_tokens = onnx_model.greedy_search(onnx_model.encode(features), skip_ids={2})
    encoder_out = encode_in_chunks(StreamingEncoder(model.encoder), features)
    (expected,) = GreedySearch(model, unk_id=2).decode(encoder_out.unsqueeze(0), torch.tensor([encoder_out.size(0)]))
    assert len(expected) > 15 and onnx_tokens == expected


@torch.no_grad()
def test_int8_files_keep_names_and_metadata_and_stay_close(model: Transducer, onnx_paths: OnnxPaths) -> None:
    int8 = export_int8(model, onnx_paths)
    assert [path.name for path in int8.as_list()] == [
        "encoder-epoch-1-avg-1.int8.onnx", "decoder-epoch-1-avg-1.int8.onnx", "joiner-epoch-1-avg-1.int8.onnx",
    ]
    int8_encoder_ops = {node.op_type for node in onnx.load(str(int8.encoder)).graph.node}
    assert "MatMulInteger" in int8_encoder_ops and "ConvInteger" not in int8_encoder_ops
    for float_path, int8_path in zip(onnx_paths.as_list(), int8.as_list()):
        assert read_metadata(float_path).items() <= read_metadata(int8_path).items()
        assert int8_path.stat().st_size < float_path.stat().st_size
    features = pad_for_chunks(torch.randn(100, 80), decode_chunk_len=32)
    float_out, int8_out = OnnxTransducer(onnx_paths).encode(features), OnnxTransducer(int8).encode(features)
    assert int8_out.shape == float_out.shape
    assert np.corrcoef(float_out.ravel(), int8_out.ravel())[0, 1] > 0.95


def test_missing_file_or_metadata_is_reported(onnx_paths: OnnxPaths, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.onnx does not exist"):
        OnnxTransducer(OnnxPaths(tmp_path / "nothing.onnx", onnx_paths.decoder, onnx_paths.joiner))
    with pytest.raises(ValueError, match="has no metadata key 'decode_chunk_len'"):
        OnnxTransducer(OnnxPaths(onnx_paths.joiner, onnx_paths.decoder, onnx_paths.joiner))
