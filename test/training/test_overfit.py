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

import pytest
import sentencepiece as spm
import torch
from lhotse import CutSet, load_manifest
from lhotse.dataset import K2SpeechRecognitionDataset

from conftest import TINY_VOCAB_SIZE
from icefall_lite.training.asr_objective import TRANSDUCER_STAT_NAMES
from training.overfit import NEAR_ZERO_LOSS_PER_FRAME, decoded_texts, tiny_model, train_until_reproduced  # test/training/overfit.py

NUM_UTTERANCES = 8


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
