"""Decoder, joiner, the transducer's losses (pruned and full) and their warm-up weighting."""

from __future__ import annotations

import pytest
import torch

from icefall_lite.model.config import TransducerConfig
from icefall_lite.model.decoder import Decoder
from icefall_lite.model.joiner import Joiner
from icefall_lite.model.transducer import Transducer, combine_losses, pad_targets
from icefall_lite.model.warmup import set_batch_count
from icefall_lite.rnnt_loss import rnnt_loss

from .tiny_models import TINY_TRANSDUCER


def num_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_default_model_has_icefalls_parameter_count() -> None:
    model = Transducer(TransducerConfig())
    assert num_parameters(model) == 70_369_391
    assert num_parameters(model.encoder) == 68_944_019
    assert num_parameters(model.encoder.encoder_embed) == 973_680
    assert num_parameters(model.decoder) == 260_096
    assert num_parameters(model.joiner) == 716_276
    assert num_parameters(model.simple_am_proj) + num_parameters(model.simple_lm_proj) == 449_000


def test_decoder_negative_ids_embed_to_zero() -> None:
    decoder = Decoder(vocab_size=10, decoder_dim=8, blank_id=0, context_size=2)
    with torch.no_grad():
        decoder.conv.weight.fill_(1.0)
    y = torch.tensor([[-1, -1]])
    assert torch.equal(decoder(y, need_pad=False), torch.zeros(1, 1, 8))


def test_decoder_inference_context_reproduces_training_padding() -> None:
    decoder = Decoder(vocab_size=10, decoder_dim=8, blank_id=0, context_size=2)
    training = decoder(torch.tensor([[0, 4, 7]]), need_pad=True)
    assert training.shape == (1, 3, 8)
    torch.testing.assert_close(decoder(torch.tensor([[-1, 0]]), need_pad=False)[:, 0], training[:, 0])
    torch.testing.assert_close(decoder(torch.tensor([[4, 7]]), need_pad=False)[:, 0], training[:, 2])
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        decoder(torch.tensor([[1, 2, 3]]), need_pad=False)


def test_joiner_projection_flag() -> None:
    joiner = Joiner(encoder_dim=6, decoder_dim=5, joiner_dim=7, vocab_size=11)
    encoder_out, decoder_out = torch.randn(2, 3, 1, 6), torch.randn(2, 1, 4, 5)
    logits = joiner(encoder_out, decoder_out)
    assert logits.shape == (2, 3, 4, 11)
    projected = joiner(joiner.encoder_proj(encoder_out), joiner.decoder_proj(decoder_out), project_input=False)
    torch.testing.assert_close(projected, logits)


def test_pad_targets() -> None:
    padded, lengths = pad_targets([[3, 4], [], [5]], padding_value=0, device=torch.device("cpu"))
    assert padded.tolist() == [[3, 4], [0, 0], [5, 0]]
    assert lengths.tolist() == [2, 0, 1]


def test_transducer_losses_and_gradients_are_finite() -> None:
    model = Transducer(TINY_TRANSDUCER).train()
    set_batch_count(model, 100)
    x, x_lens = torch.randn(2, 120, 80), torch.tensor([120, 95])
    losses = model(x, x_lens, y=[[1, 2, 3, 4], [5, 6]], prune_range=3)
    simple_loss, pruned_loss = losses["simple_loss"], losses["pruned_loss"]
    assert simple_loss.ndim == 0 and pruned_loss.ndim == 0
    assert simple_loss > 0 and pruned_loss > 0
    combine_losses(simple_loss, pruned_loss, batch_idx=100, warm_step=2000, simple_loss_scale=0.5).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    assert model.joiner.output_linear.weight.grad.abs().sum() > 0
    assert model.simple_lm_proj.weight.grad.abs().sum() > 0


def test_full_loss_equals_the_exact_loss_of_the_padded_joiner_output() -> None:
    torch.manual_seed(0)
    model = Transducer(TINY_TRANSDUCER).eval()
    x, x_lens, y = torch.randn(3, 100, 80), torch.tensor([100, 61, 80]), [[1, 2, 3, 4], [5], []]
    full = model(x, x_lens, y=y, loss="full")["transducer_loss"]
    encoder_out, encoder_lens = model.encoder(x, x_lens)
    y_padded, y_lens = pad_targets(y, 0, x.device)
    decoder_out = model.decoder(torch.nn.functional.pad(y_padded, (1, 0), value=0))
    padded_logits = model.joiner(encoder_out[:, :, None], decoder_out[:, None])  # (N, T, S+1, V)
    boundary = torch.stack([torch.zeros_like(y_lens), torch.zeros_like(y_lens), y_lens, encoder_lens], dim=1)
    expected = rnnt_loss(padded_logits, y_padded, 0, boundary, reduction="sum")
    torch.testing.assert_close(full, expected, rtol=1e-5, atol=1e-4)


def test_full_loss_trains_every_joiner_and_encoder_parameter_but_not_the_simple_projections() -> None:
    model = Transducer(TINY_TRANSDUCER).train()
    set_batch_count(model, 100)
    loss = model(torch.randn(2, 120, 80), torch.tensor([120, 95]), y=[[1, 2, 3], [4]], loss="full")["transducer_loss"]
    loss.backward()
    assert model.joiner.output_linear.weight.grad.abs().sum() > 0
    assert model.joiner.decoder_proj.weight.grad.abs().sum() > 0
    assert model.simple_am_proj.weight.grad is None
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_transducer_rejects_an_unknown_loss() -> None:
    with pytest.raises(ValueError, match="loss must be one of"):
        Transducer(TINY_TRANSDUCER)(torch.randn(1, 60, 80), torch.tensor([60]), y=[[1]], loss="exact")


def test_transducer_rejects_wrong_number_of_targets() -> None:
    model = Transducer(TINY_TRANSDUCER)
    with pytest.raises(ValueError, match="x has batch 2, y has 1"):
        model(torch.randn(2, 60, 80), torch.tensor([60, 60]), y=[[1]])


@pytest.mark.parametrize(
    "batch_idx, simple_scale, pruned_scale", [(0, 1.0, 0.1), (1000, 0.75, 0.55), (2000, 0.5, 1.0), (9000, 0.5, 1.0)]
)
def test_combine_losses_warm_up(batch_idx: int, simple_scale: float, pruned_scale: float) -> None:
    loss = combine_losses(torch.tensor(1.0), torch.tensor(100.0), batch_idx, warm_step=2000, simple_loss_scale=0.5)
    assert float(loss) == pytest.approx(simple_scale + 100.0 * pruned_scale)
