"""What decode.py and streaming_decode.py share: token and test-set options, result names, the log file.

Usage::

    add_common_decoding_arguments(parser)
    sp = load_bpe_model(args.bpe_model)
    for name, cuts in test_sets(args, LibriSpeechAsrDataModule(AsrDataConfig.from_args(args))): ...
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import sentencepiece as spm
import torch
from lhotse import CutSet, load_manifest_lazy

from icefall_lite.cli import setup_logging
from icefall_lite.data.datamodule import LibriSpeechAsrDataModule
from icefall_lite.decoding.checkpoint_selection import CheckpointSelectionError, load_model_for_inference
from icefall_lite.decoding.features import AudioError
from icefall_lite.decoding.results import decode_log_path
from icefall_lite.model.options import build_model
from icefall_lite.model.transducer import MissingHeadError, Transducer
from icefall_lite.server.errors import ServerOptionError
from icefall_lite.training.checkpoint import CheckpointError

DEFAULT_BPE_MODEL = Path("data/lang_bpe_500/bpe.model")
USER_ERRORS = (
    CheckpointSelectionError, CheckpointError, AudioError, FileNotFoundError, MissingHeadError, ServerOptionError,
)
"""Errors a user fixes by changing options or files: reported in one line, without a traceback."""
CUTS_PREFIX = "librispeech_cuts_"


def add_common_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """``--bpe-model``, ``--cuts``, ``--num-threads``."""
    group = parser.add_argument_group("decoding input")
    group.add_argument(
        "--bpe-model", type=Path, default=DEFAULT_BPE_MODEL, help=f"sentencepiece model (default {DEFAULT_BPE_MODEL})"
    )
    group.add_argument(
        "--cuts",
        type=Path,
        nargs="+",
        default=None,
        help="cut manifests to decode instead of test-clean and test-other; each is named after its file "
        "(librispeech_cuts_dev-clean.jsonl.gz -> dev-clean)",
    )
    group.add_argument(
        "--num-threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)"
    )


def add_fast_beam_search_arguments(group: argparse._ArgumentGroup, beam: float, max_contexts: int, max_states: int) -> None:
    """``--beam --max-contexts --max-states`` (defaults differ: decode.py 20/8/64, streaming_decode.py 4/4/32)."""
    group.add_argument("--beam", type=float, default=beam, help=f"fast_beam_search: log-prob beam (default {beam})")
    group.add_argument(
        "--max-contexts", type=int, default=max_contexts, help=f"fast_beam_search: contexts per frame (default {max_contexts})"
    )
    group.add_argument(
        "--max-states", type=int, default=max_states, help=f"fast_beam_search: states per frame (default {max_states})"
    )


def fast_beam_search_names(args: argparse.Namespace) -> Tuple[str, str]:
    """icefall's wer-summary key and file-name suffix part of fast_beam_search's options."""
    key = f"beam_{args.beam}_max_contexts_{args.max_contexts}_max_states_{args.max_states}"
    return key, f"-beam-{args.beam}-max-contexts-{args.max_contexts}-max-states-{args.max_states}"


def load_bpe_model(path: Path) -> spm.SentencePieceProcessor:
    if not Path(path).is_file():
        raise FileNotFoundError(f"--bpe-model {path} not found: run ./prepare.sh (stage 5) or pass --bpe-model")
    return spm.SentencePieceProcessor(model_file=str(path))


def test_set_name(manifest: Path) -> str:
    """``data/fbank/librispeech_cuts_test-clean.jsonl.gz`` -> ``test-clean``; other names lose their suffixes."""
    name = Path(manifest).name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name.removeprefix(CUTS_PREFIX)


def test_sets(cuts: Optional[List[Path]], data: LibriSpeechAsrDataModule) -> List[Tuple[str, CutSet]]:
    """(name, cuts) of each ``--cuts`` manifest, or test-clean and test-other."""
    if not cuts:
        return [("test-clean", data.test_clean_cuts()), ("test-other", data.test_other_cuts())]
    missing = [str(path) for path in cuts if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"--cuts: no such manifest {missing}")
    return [(test_set_name(path), load_manifest_lazy(path)) for path in cuts]


def setup_decoding(args: argparse.Namespace, res_dir: Path, suffix: str) -> Tuple[torch.device, spm.SentencePieceProcessor, Transducer]:
    """What every decoding script does first: log to ``res_dir/log-decode-{suffix}-{date}`` and stderr, set
    ``--num-threads``, load the BPE model and the model with the weights the checkpoint options select.
    Returns the device, the BPE model and the model (eval mode)."""
    setup_logging(decode_log_path(res_dir, suffix))
    if args.num_threads is not None:
        torch.set_num_threads(args.num_threads)
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    logging.info(f"Decoding on {device} with {torch.get_num_threads()} threads; results in {res_dir}; options {vars(args)}")
    sp = load_bpe_model(args.bpe_model)
    model = build_model(args, vocab_size=sp.get_piece_size(), blank_id=sp.piece_to_id("<blk>"))
    model = load_model_for_inference(args, model, device)
    logging.info(f"Number of model parameters: {sum(p.numel() for p in model.parameters())}")
    return device, sp, model


def tokens_to_words(sp: spm.SentencePieceProcessor, tokens: List[int]) -> List[str]:
    return sp.decode(tokens).split()


def run_script(main: Callable[[], None]) -> int:
    """Run a script's ``main``; returns its exit code, 1 after logging a USER_ERRORS error."""
    try:
        main()
    except USER_ERRORS as error:
        logging.error(f"{type(error).__name__}: {error}")
        return 1
    return 0
