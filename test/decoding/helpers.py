"""Tiny transducers for the decoding tests: random ones whose searches emit many tokens, and a hand-built one
whose best path is known."""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
from torch import Tensor

from model.tiny_models import TINY_ENCODER, randomize_  # test/model/tiny_models.py (test/ is on sys.path)

from icefall_lite.decoding.hypotheses import decoder_output, initial_context
from icefall_lite.model.config import TransducerConfig, ZipformerConfig
from icefall_lite.model.transducer import Transducer


def talkative_model(
    vocab_size: int = 6, context_size: int = 2, seed: int = 0, encoder: ZipformerConfig = TINY_ENCODER,
    use_ctc: bool = False,
) -> Transducer:
    """A random eval-mode transducer (with a CTC head if use_ctc) whose joiner and CTC head are peaky and not
    dominated by blank."""
    config = TransducerConfig(
        vocab_size=vocab_size, context_size=context_size, decoder_dim=16, joiner_dim=16, encoder=encoder,
        use_ctc=use_ctc,
    )
    torch.manual_seed(seed)
    model = randomize_(Transducer(config)).eval()
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(4.0)
        if use_ctc:
            model.ctc_output.output.weight.mul_(4.0)
            model.ctc_output.output.bias[0] -= 3.0  # blank less likely: more tokens to compare
    return model


def known_path_model(vocab_size: int = 8, strength: float = 5.0, peak: float = 20.0, blank_logit: float = 10.0) -> Transducer:
    """context_size 1: encoder frame ``strength * onehot(d)`` asks for token d (0 = nothing). The joiner emits d
    (logit ``peak``) unless d is the last emitted token, else blank (logit ``blank_logit``): the best path of a
    frame sequence d_1..d_T emits each d_t that differs from the token emitted before it."""
    encoder = ZipformerConfig(
        num_encoder_layers=(1,) * 5, feedforward_dims=(8,) * 5, nhead=(1,) * 5, encoder_dims=(vocab_size,) * 5,
        attention_dims=(4,) * 5, encoder_unmasked_dims=(4,) * 5,
    )
    config = TransducerConfig(vocab_size=vocab_size, context_size=1, decoder_dim=vocab_size, joiner_dim=vocab_size, encoder=encoder)
    model = Transducer(config).eval()
    identity = torch.eye(vocab_size)
    with torch.no_grad():
        model.decoder.embedding.weight.copy_(identity)
        model.joiner.decoder_proj.weight.copy_(-strength * identity)
        model.joiner.decoder_proj.bias.zero_()
        model.joiner.encoder_proj.weight.copy_(identity)
        model.joiner.encoder_proj.bias.zero_()
        model.joiner.output_linear.weight.copy_(peak * identity)
        model.joiner.output_linear.weight[0].zero_()
        model.joiner.output_linear.bias.zero_()
        model.joiner.output_linear.bias[0] = blank_logit
    return model


def frames_asking_for(tokens: Sequence[int], vocab_size: int = 8, strength: float = 5.0) -> Tensor:
    """(T, vocab_size) encoder frames for ``known_path_model``: one-hot of each wanted token, zeros for 0."""
    frames = torch.zeros(len(tokens), vocab_size)
    for t, token in enumerate(tokens):
        if token > 0:
            frames[t, token] = strength
    return frames


def joiner_log_probs(model: Transducer, projected_frame: Tensor, context: Sequence[int]) -> Tensor:
    """(V,) log-probabilities at one projected encoder frame (joiner_dim,) after ``context``."""
    decoder_out = decoder_output(model, torch.tensor([list(context)]))
    return model.joiner(projected_frame.unsqueeze(0), decoder_out, project_input=False)[0].log_softmax(dim=0)


@torch.no_grad()
def reference_greedy(model: Transducer, encoder_out: Tensor, max_sym_per_frame: int) -> Tuple[List[int], float]:
    """One utterance, encoder_out (T, C): icefall's per-utterance greedy search, written plainly. Returns the
    tokens and the log-probability of the path taken."""
    projected = model.joiner.encoder_proj(encoder_out)
    context = initial_context(model.decoder.context_size, model.decoder.blank_id)
    tokens: List[int] = []
    score = 0.0
    for t in range(projected.size(0)):
        for _ in range(max_sym_per_frame):
            log_probs = joiner_log_probs(model, projected[t], context)
            best = int(log_probs.argmax())
            score += float(log_probs[best])
            if best == model.decoder.blank_id:
                break
            tokens.append(best)
            context = context[1:] + [best]
    return tokens, score


def _log_add(a: float, b: float) -> float:
    high, low = max(a, b), min(a, b)
    return high if low == -math.inf else high + math.log1p(math.exp(low - high))


@torch.no_grad()
def exhaustive_one_symbol_per_frame(model: Transducer, encoder_out: Tensor, merge_on_context: bool) -> Tuple[List[int], float]:
    """Exact search over every path with at most one symbol per frame, encoder_out (T, C).

    merge_on_context: Viterbi over decoder contexts (what fast_beam_search approximates): returns the best
    path's tokens and score. Otherwise sums the probabilities of all paths of each token sequence (what
    modified_beam_search approximates) and returns the sequence with the best score / (context_size + length).
    """
    projected = model.joiner.encoder_proj(encoder_out)
    context_size, blank = model.decoder.context_size, model.decoder.blank_id
    hyps = {(): 0.0}
    for t in range(projected.size(0)):
        next_hyps: dict = {}
        best_by_context: dict = {}
        for tokens, score in hyps.items():
            context = (initial_context(context_size, blank) + list(tokens))[-context_size:]
            log_probs = joiner_log_probs(model, projected[t], context).tolist()
            for token, log_prob in enumerate(log_probs):
                new_tokens = tokens if token == blank else tokens + (token,)
                new_score = score + log_prob
                if merge_on_context:
                    key = (initial_context(context_size, blank) + list(new_tokens))[-context_size:]
                    if tuple(key) not in best_by_context or new_score > best_by_context[tuple(key)][1]:
                        best_by_context[tuple(key)] = (new_tokens, new_score)
                else:
                    next_hyps[new_tokens] = _log_add(next_hyps.get(new_tokens, -math.inf), new_score)
        hyps = dict(best_by_context.values()) if merge_on_context else next_hyps
    if merge_on_context:
        tokens, score = max(hyps.items(), key=lambda item: item[1])
    else:
        tokens, score = max(hyps.items(), key=lambda item: item[1] / (context_size + len(item[0])))
    return list(tokens), score
