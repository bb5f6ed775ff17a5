"""The model can learn: a tiny streaming transducer overfits 8 utterances of the tiny corpus, and greedy search on
decode.py's path (eval mode, simulated streaming with the tail padding) reproduces their transcripts.

With only 8 sentences, the stateless decoder alone can tell which sentence it is in from its last two tokens
and the loss goes to zero without the encoder saying *when* each token comes: the joiner then spreads a
token's emission evenly over many frames (measured: P(token) about 0.1 on each of 80 frames, blank 0.9), which
is a near-zero loss that greedy search, taking blank every time, cannot decode. ``--am-scale 0.25`` (the
encoder-only term of the smoothed simple loss) makes the encoder carry the tokens, and their timing. The
character-like vocabulary of the tiny corpus (80 pieces, about 0.45 tokens per encoder frame) needs a few
symbols per frame at times: greedy search with ``max_sym_per_frame=3`` (icefall's ``greedy_search``).

With ``--transducer-loss full`` (the exact loss, no simple loss and so no encoder-only term) the same spread
emissions remain (measured: greedy search 0-2 of 8 right after 500 steps at a loss of 1e-4 per frame), but the
exact loss is the sum over alignments that icefall's ``beam_search`` computes per hypothesis (alignments of the
same tokens merged by log-add): it reproduces all 8 after about 300 steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
import sentencepiece as spm
import torch
from lhotse import CutSet, load_manifest
from lhotse.dataset import K2SpeechRecognitionDataset

from conftest import TINY_VOCAB_SIZE
from icefall_lite.decoding.beam_search import BeamSearch
from icefall_lite.decoding.greedy_search import GreedySearch
from icefall_lite.decoding.simulated import decode_batch
from icefall_lite.model.config import TransducerConfig, ZipformerConfig
from icefall_lite.model.transducer import Transducer
from icefall_lite.model.warmup import set_batch_count
from icefall_lite.training.metrics import LossStats
from icefall_lite.training.optim import Eden, ScaledAdam
from icefall_lite.training.options import TrainConfig
from icefall_lite.training.asr_objective import TRANSDUCER_STAT_NAMES, AsrObjective

NUM_UTTERANCES = 8
MAX_STEPS = 800
FIRST_CHECK, CHECK_EVERY = 200, 25
NEAR_ZERO_LOSS_PER_FRAME = 0.02  # of the pruned loss, or of the exact loss with --transducer-loss full
AM_SCALE = 0.25
MAX_SYM_PER_FRAME = 3


def tiny_model(vocab_size: int) -> Transducer:
    """About 0.6 M parameters; the regularizers relax within 50 batches instead of icefall's 4000."""
    encoder = ZipformerConfig(
        num_encoder_layers=(1, 1, 1, 1, 1), encoder_dims=(96,) * 5, attention_dims=(48,) * 5,
        feedforward_dims=(192,) * 5, encoder_unmasked_dims=(96,) * 5, nhead=(4,) * 5, cnn_module_kernels=(15,) * 5,
        dropout=0.0, warmup_batches=50.0,
    )
    return Transducer(TransducerConfig(vocab_size=vocab_size, decoder_dim=96, joiner_dim=96, encoder=encoder))


def decoded_texts(model: Transducer, batch: dict, sp: spm.SentencePieceProcessor, transducer_loss: str) -> List[str]:
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
    model: Transducer, batch: dict, sp: spm.SentencePieceProcessor, transducer_loss: str
) -> Tuple[int, LossStats, List[str]]:
    """Train on the one batch until the search gives the references and the transducer loss (pruned, or the
    exact one) is near zero, or MAX_STEPS.
    Returns the steps taken, the last step's loss statistics and the last hypotheses."""
    references = batch["supervisions"]["text"]
    config = TrainConfig(warm_step=50, use_fp16=False, am_scale=AM_SCALE, transducer_loss=transducer_loss)
    objective = AsrObjective(sp, config, model.config)
    watched = TRANSDUCER_STAT_NAMES[transducer_loss][-1]
    optimizer = ScaledAdam(model.parameters(), lr=0.05, clipping_scale=2.0)
    scheduler = Eden(optimizer, lr_batches=100, lr_epochs=3.5, warmup_batches=20)
    hypotheses: List[str] = []
    for step in range(1, MAX_STEPS + 1):
        model.train()
        loss, stats = objective(model, batch, step, torch.device("cpu"))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        set_batch_count(model, step)
        scheduler.step_batch(step)
        if step >= FIRST_CHECK and step % CHECK_EVERY == 0:
            hypotheses = decoded_texts(model, batch, sp, transducer_loss)
            if hypotheses == references and stats.per_frame()[watched] < NEAR_ZERO_LOSS_PER_FRAME:
                break
    return step, stats, hypotheses


@pytest.mark.parametrize("transducer_loss", ["pruned", "full"])
def test_tiny_model_overfits_eight_utterances(prepared_dir: Path, in_prepared_dir: None, transducer_loss: str) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    sp = spm.SentencePieceProcessor(model_file=str(prepared_dir / "data" / f"lang_bpe_{TINY_VOCAB_SIZE}" / "bpe.model"))
    cuts = load_manifest(prepared_dir / "data" / "fbank" / "librispeech_cuts_train-clean-100.jsonl.gz")
    originals = [cut for cut in cuts if "_sp" not in cut.id]  # not the speed-perturbed copies
    shortest = sorted(originals, key=lambda cut: cut.duration)[:NUM_UTTERANCES]
    assert len(shortest) == NUM_UTTERANCES
    batch = K2SpeechRecognitionDataset(return_cuts=True)[CutSet.from_cuts(shortest)]
    model = tiny_model(sp.get_piece_size())
    assert decoded_texts(model, batch, sp, transducer_loss) != batch["supervisions"]["text"]  # nothing learned yet

    steps, stats, hypotheses = train_until_reproduced(model, batch, sp, transducer_loss)

    assert hypotheses == batch["supervisions"]["text"], f"after {steps} steps, loss {stats.per_frame()}"
    assert stats.per_frame()[TRANSDUCER_STAT_NAMES[transducer_loss][-1]] < NEAR_ZERO_LOSS_PER_FRAME, f"after {steps} steps"
