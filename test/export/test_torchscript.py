"""cpu_jit.pt (torch.jit.script) and the traced encoder/decoder/joiner behave as the model they come from."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from icefall_lite.export.inputs import pad_for_chunks
from icefall_lite.export.torchscript import (
    StreamingEncoder,
    encode_in_chunks,
    example_chunk,
    load_script_module,
    script_transducer,
    trace_decoder,
    trace_encoder,
    trace_joiner,
)
from icefall_lite.model.transducer import Transducer


@pytest.fixture(scope="module")
def scripted(model: Transducer) -> torch.jit.ScriptModule:
    return script_transducer(model)


def _chunks(model: Transducer, batch: int, num_chunks: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x, x_lens, states = example_chunk(model.encoder, batch)
    return [torch.randn(x.shape, generator=generator) for _ in range(num_chunks)], x_lens, states


@torch.no_grad()
def test_scripted_encoder_forward_is_the_streaming_forward(model: Transducer, scripted: torch.jit.ScriptModule) -> None:
    chunks, x_lens, states = _chunks(model, batch=2, num_chunks=3)
    scripted_states = [state.clone() for state in states]
    for x in chunks:
        expected, expected_lens, states = model.encoder.streaming_forward(x, x_lens, states)
        actual, actual_lens, scripted_states = scripted.encoder(x, x_lens, scripted_states)
        torch.testing.assert_close(actual, expected)
        assert torch.equal(actual_lens, expected_lens)
    for actual_state, expected_state in zip(scripted_states, states):
        torch.testing.assert_close(actual_state, expected_state)


@torch.no_grad()
def test_scripted_model_keeps_init_state_non_streaming_forward_decoder_and_joiner(
    model: Transducer, scripted: torch.jit.ScriptModule
) -> None:
    device = torch.device("cpu")
    for actual, expected in zip(scripted.encoder.get_init_state(device), model.encoder.get_init_state(device)):
        assert actual.shape == expected.shape and actual.dtype == expected.dtype and not actual.any()
    x, x_lens = torch.randn(2, 100, 80), torch.tensor([100, 71])
    torch.testing.assert_close(scripted.encoder.non_streaming_forward(x, x_lens), model.encoder(x, x_lens))
    y = torch.tensor([[-1, 0], [5, 7]])
    torch.testing.assert_close(scripted.decoder(y, need_pad=False), model.decoder(y, need_pad=False))
    encoder_out, decoder_out = torch.randn(3, 64), torch.randn(3, 64)
    torch.testing.assert_close(scripted.joiner(encoder_out, decoder_out), model.joiner(encoder_out, decoder_out))
    assert (scripted.encoder.decode_chunk_len, scripted.encoder.pad_length) == (32, 7)
    assert (scripted.decoder.context_size, scripted.decoder.blank_id) == (2, 0)


@torch.no_grad()
def test_cpu_jit_loads_and_runs_without_this_project(
    model: Transducer, scripted: torch.jit.ScriptModule, tmp_path: Path
) -> None:
    scripted.save(str(tmp_path / "cpu_jit.pt"))
    chunks, x_lens, states = _chunks(model, batch=1, num_chunks=2)
    torch.save({"chunks": chunks, "x_lens": x_lens}, tmp_path / "inputs.pt")
    for x in chunks:
        expected, _, states = model.encoder.streaming_forward(x, x_lens, states)
    code = (
        "import sys, torch\n"
        f"model = torch.jit.load({str(tmp_path / 'cpu_jit.pt')!r})\n"
        f"inputs = torch.load({str(tmp_path / 'inputs.pt')!r})\n"
        "states = model.encoder.get_init_state(torch.device('cpu'))\n"
        "for x in inputs['chunks']:\n"
        "    out, _, states = model.encoder(x, inputs['x_lens'], states)\n"
        "logits = model.joiner(out, model.decoder(torch.tensor([[-1, 0]]), need_pad=False))\n"
        f"torch.save({{'out': out, 'logits': logits}}, {str(tmp_path / 'outputs.pt')!r})\n"
        "assert not any(name.startswith('icefall_lite') for name in sys.modules), 'icefall_lite was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    outputs = torch.load(tmp_path / "outputs.pt")
    torch.testing.assert_close(outputs["out"], expected)
    assert outputs["logits"].shape == (1, 8, 80)


@torch.no_grad()
def test_chunk_by_chunk_encoding_equals_the_masked_whole_utterance_forward(
    model: Transducer, scripted: torch.jit.ScriptModule
) -> None:
    """What makes jit_pretrained.py (chunks) and pretrained.py (whole utterance) agree."""
    features = pad_for_chunks(torch.randn(150, 80), decode_chunk_len=32)
    whole, whole_lens = model.encoder(features.unsqueeze(0), torch.tensor([features.size(0)]))
    streamed = encode_in_chunks(scripted.encoder, features)
    assert streamed.size(0) == int(whole_lens) == whole.size(1)
    torch.testing.assert_close(streamed, whole[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(encode_in_chunks(StreamingEncoder(model.encoder), features), streamed)


@torch.no_grad()
def test_traced_modules_match_the_model(model: Transducer, tmp_path: Path) -> None:
    encoder = trace_encoder(model.encoder)
    chunks, x_lens, states = _chunks(model, batch=1, num_chunks=2)
    traced_states = states
    for x in chunks:
        expected, _, states = model.encoder.streaming_forward(x, x_lens, states)
        actual, _, traced_states = encoder(x, x_lens, traced_states)
        torch.testing.assert_close(actual, expected)
    decoder, joiner = trace_decoder(model.decoder), trace_joiner(model.joiner)
    for module, name in [(encoder, "encoder"), (decoder, "decoder"), (joiner, "joiner")]:
        module.save(str(tmp_path / f"{name}_jit_trace.pt"))
    decoder = load_script_module(tmp_path / "decoder_jit_trace.pt")
    joiner = load_script_module(tmp_path / "joiner_jit_trace.pt")
    y = torch.tensor([[-1, 0], [3, 9], [9, 9]])
    torch.testing.assert_close(decoder(y), model.decoder(y, need_pad=False))
    encoder_out, decoder_out = torch.randn(3, 64), torch.randn(3, 64)
    torch.testing.assert_close(joiner(encoder_out, decoder_out), model.joiner(encoder_out, decoder_out))


def test_load_script_module_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cpu_jit.pt does not exist"):
        load_script_module(tmp_path / "cpu_jit.pt")
