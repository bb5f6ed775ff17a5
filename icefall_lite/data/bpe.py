"""The BPE lang directory: a sentencepiece unigram model with icefall's special tokens.

Ids 0, 1, 2 are ``<blk>`` (the transducer blank), ``<sos/eos>`` and ``<unk>``. Files written into
``lang_dir``: ``transcript_words.txt``, ``unigram_{V}.model``/``.vocab``, ``bpe.model`` (a copy) and
``tokens.txt`` ("piece id" per line).

Example::

    >>> write_transcript_words(Path("download/LibriSpeech"), ["train-clean-100"], lang_dir / "transcript_words.txt")
    >>> train_bpe_model(lang_dir, vocab_size=500)
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Sequence

import sentencepiece as spm

BLANK, SOS_EOS, UNK = "<blk>", "<sos/eos>", "<unk>"
SPECIAL_TOKEN_IDS = {BLANK: 0, SOS_EOS: 1, UNK: 2}


def write_transcript_words(corpus_dir: Path, subsets: Sequence[str], output: Path) -> None:
    """Write the text column of every ``*.trans.txt`` of `subsets` (LibriSpeech layout), one line each."""
    trans_files = sorted(path for subset in subsets for path in (corpus_dir / subset).rglob("*.trans.txt"))
    if not trans_files:
        raise FileNotFoundError(f"no *.trans.txt under {corpus_dir} for subsets {list(subsets)}")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(".partial." + output.name)
    with open(partial, "w") as out:
        for path in trans_files:
            for line in path.read_text().splitlines():
                utterance_id, _, text = line.partition(" ")
                if text:
                    out.write(text + "\n")
    os.replace(partial, output)


def train_bpe_model(lang_dir: Path, vocab_size: int) -> None:
    """Train a unigram sentencepiece model on ``lang_dir/transcript_words.txt``; write bpe.model and tokens.txt.

    On a corpus too small for `vocab_size` pieces sentencepiece makes as many as it can (a warning says so).
    """
    transcript = lang_dir / "transcript_words.txt"
    if not transcript.is_file():
        raise FileNotFoundError(f"{transcript} not found")
    model_prefix = lang_dir / f"unigram_{vocab_size}"
    spm.SentencePieceTrainer.train(
        input=str(transcript),
        model_prefix=str(model_prefix),
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=1.0,
        input_sentence_size=100000000,
        user_defined_symbols=[BLANK, SOS_EOS],
        unk_id=SPECIAL_TOKEN_IDS[UNK],
        bos_id=-1,
        eos_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    shutil.copyfile(f"{model_prefix}.model", lang_dir / "bpe.model")
    sp = spm.SentencePieceProcessor(model_file=str(lang_dir / "bpe.model"))
    if sp.get_piece_size() != vocab_size:
        logging.warning(
            f"the transcripts support only {sp.get_piece_size()} pieces; asked for --vocab-size {vocab_size}"
        )
    write_tokens(sp, lang_dir / "tokens.txt")


def write_tokens(sp: spm.SentencePieceProcessor, path: Path) -> None:
    """Write ``tokens.txt``: one "piece id" line per piece, in id order."""
    path.write_text("".join(f"{sp.id_to_piece(i)} {i}\n" for i in range(sp.get_piece_size())))
