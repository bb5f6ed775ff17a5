"""Training a tiny streaming transducer until it reproduces a few utterances: the model, the search that checks
it, the loop (test_overfit.py), and batches of audio shifted by a few samples (the server's trained model, which
chromium's fake microphone hears a little late).

Usage::

    batch = fbank_batch(waves, texts)                      # waves: (S,) float32 at 16 kHz each
    model = tiny_model(sp.get_piece_size())
    steps, stats, hypotheses = train_until_reproduced(
        model, batch, sp, "pruned", train_batch=ShiftedBatches(waves, texts, max_shift=240))
    assert hypotheses == texts
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import sentencepiece as spm
import torch
from lhotse import Fbank

from icefall_lite.data.features import make_fbank
from icefall_lite.decoding.beam_search import BeamSearch
from icefall_lite.decoding.features import LOG_EPS
from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.decoding.simulated import decode_batch
from icefall_lite.export.inputs import SAMPLE_RATE
from icefall_lite.model.config import TransducerConfig, ZipformerConfig
from icefall_lite.model.transducer import Transducer
from icefall_lite.model.warmup import set_batch_count
from icefall_lite.training.asr_objective import TRANSDUCER_STAT_NAMES, AsrLossConfig, AsrObjective
from icefall_lite.training.metrics import LossStats
from icefall_lite.training.optim import Eden, ScaledAdam

MAX_STEPS = 800
FIRST_CHECK, CHECK_EVERY = 200, 25
NEAR_ZERO_LOSS_PER_FRAME = 0.02  # of the pruned loss, or of the exact loss with --transducer-loss full
AM_SCALE = 0.25
MAX_SYM_PER_FRAME = 3

Batch = Dict  # a K2SpeechRecognitionDataset batch: "inputs" (N, T, 80) float, "supervisions" text/num_frames/sequence_idx


def tiny_model(vocab_size: int) -> Transducer:
    """About 0.6 M parameters; the regularizers relax within 50 batches instead of icefall's 4000."""
    encoder = ZipformerConfig(
        num_encoder_layers=(1, 1, 1, 1, 1), encoder_dims=(96,) * 5, attention_dims=(48,) * 5,
        feedforward_dims=(192,) * 5, encoder_unmasked_dims=(96,) * 5, nhead=(4,) * 5, cnn_module_kernels=(15,) * 5,
        dropout=0.0, warmup_batches=50.0,
    )
    return Transducer(TransducerConfig(vocab_size=vocab_size, decoder_dim=96, joiner_dim=96, encoder=encoder))


def decoded_texts(model: Transducer, batch: Batch, sp: spm.SentencePieceProcessor, transducer_loss: str) -> List[str]:
    """decode.py's search on the batch (eval mode, attention in chunks of decode_chunk_size): greedy search for
    a model trained with the pruned loss, beam search (4) for one trained with the exact loss."""
    model.eval()
    unk_id = sp.piece_to_id("<unk>")
    if transducer_loss == "full":
        search = BeamSearch(model, beam_size=4, unk_id=unk_id)
    else:
        search = GreedySearch(model, max_sym_per_frame=MAX_SYM_PER_FRAME, unk_id=unk_id)
    return [sp.decode(tokens) for tokens in decode_batch(batch, model, search, torch.device("cpu"))]


def train_until_reproduced(
    model: Transducer, batch: Batch, sp: spm.SentencePieceProcessor, transducer_loss: str,
    train_batch: Optional[Callable[[int], Batch]] = None, first_check: int = FIRST_CHECK,
    hypotheses_of: Optional[Callable[[Transducer], List[str]]] = None, max_steps: int = MAX_STEPS,
) -> Tuple[int, LossStats, List[str]]:
    """Train until the hypotheses (default: ``decoded_texts`` of ``batch``; or ``hypotheses_of(model)``, e.g. of
    an export) are ``batch``'s references and the transducer loss (pruned, or the exact one) of the last training
    batch is near zero, or ``max_steps``; checked every CHECK_EVERY steps from ``first_check``. Each step trains on
    ``train_batch(step)`` (default: ``batch`` itself; e.g. ShiftedBatches).
    Returns the steps taken, the last step's loss statistics and the last hypotheses."""
    references = batch["supervisions"]["text"]
    loss_config = AsrLossConfig(warm_step=50, am_scale=AM_SCALE, transducer_loss=transducer_loss)
    objective = AsrObjective(sp, loss_config, model.config)
    watched = TRANSDUCER_STAT_NAMES[transducer_loss][-1]
    optimizer = ScaledAdam(model.parameters(), lr=0.05, clipping_scale=2.0)
    scheduler = Eden(optimizer, lr_batches=100, lr_epochs=3.5, warmup_batches=20)
    hypotheses: List[str] = []
    for step in range(1, max_steps + 1):
        model.train()
        loss, stats = objective(model, train_batch(step) if train_batch else batch, step, torch.device("cpu"))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        set_batch_count(model, step)
        scheduler.step_batch(step)
        if step >= first_check and step % CHECK_EVERY == 0:
            hypotheses = hypotheses_of(model) if hypotheses_of else decoded_texts(model, batch, sp, transducer_loss)
            if hypotheses == references and stats.per_frame()[watched] < NEAR_ZERO_LOSS_PER_FRAME:
                break
    return step, stats, hypotheses


def fbank_batch(waves: Sequence[np.ndarray], texts: Sequence[str], fbank: Optional[Fbank] = None) -> Batch:
    """The batch K2SpeechRecognitionDataset would give for these utterances (features of ``fbank``, default
    make_fbank(), padded with LOG_EPS); waves: (S,) float32 at 16 kHz each."""
    fbank = fbank or make_fbank()
    features = [torch.from_numpy(fbank.extract(wave, SAMPLE_RATE)) for wave in waves]
    return {
        "inputs": torch.nn.utils.rnn.pad_sequence(features, batch_first=True, padding_value=LOG_EPS),
        "supervisions": {
            "text": list(texts),
            "num_frames": torch.tensor([len(f) for f in features]),
            "sequence_idx": torch.arange(len(features)),
        },
    }


class ShiftedBatches:
    """``fbank_batch`` of the utterances, each shifted by its own random number of samples in
    [-max_shift, max_shift] at every call: later (zeros before it) or earlier (its start cut off), and followed by
    ``tail_samples`` zeros (e.g. the silence sherpa-onnx's decoders append). A model overfitted to one alignment of
    its 10 ms frames and 40-160 ms encoder strides changes its output when the audio arrives a few ms late; one
    trained on these does not (within max_shift)."""

    def __init__(
        self, waves: Sequence[np.ndarray], texts: Sequence[str], max_shift: int, seed: int = 0, tail_samples: int = 0
    ) -> None:
        self.waves = [np.concatenate([wave, np.zeros(tail_samples, dtype=wave.dtype)]) for wave in waves]
        self.texts, self.max_shift = list(texts), max_shift
        self.rng = np.random.default_rng(seed)
        self.fbank = make_fbank()  # its mel filters are made once

    def __call__(self, step: int) -> Batch:
        shifts = self.rng.integers(-self.max_shift, self.max_shift + 1, size=len(self.waves))
        shifted = [shift_samples(wave, int(shift)) for wave, shift in zip(self.waves, shifts)]
        return fbank_batch(shifted, self.texts, self.fbank)


def shift_samples(wave: np.ndarray, shift: int) -> np.ndarray:
    """wave (S,) float32 later by ``shift`` samples (zeros before it), or earlier for a negative one (cut)."""
    return np.concatenate([np.zeros(shift, dtype=wave.dtype), wave]) if shift >= 0 else wave[-shift:]
