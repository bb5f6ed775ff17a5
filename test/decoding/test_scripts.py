"""decode.py and streaming_decode.py on the tiny prepared corpus with a tiny random model: identical greedy
hypotheses when both see the same fbank, icefall's output files, and clear errors."""

from __future__ import annotations

import argparse
import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import List

import pytest
import torch
from lhotse import CutSet, NumpyFilesWriter, load_manifest

from icefall_lite.data.features import make_fbank
from icefall_lite.decoding.checkpoint_selection import CheckpointSelectionError
from icefall_lite.decoding.features import AudioError
from icefall_lite.decoding.options import load_bpe_model, run_script
from icefall_lite.decoding.wer import read_error_stats, read_recogs, read_wer_summary
from icefall_lite.model.options import add_model_arguments, build_model
from icefall_lite.training.checkpoint import save_checkpoint

from .helpers import randomize_

RECIPE = Path(__file__).resolve().parents[2] / "egs/librispeech/ASR/pruned_transducer_stateless7_streaming"
TINY_MODEL = (
    "--num-encoder-layers 1,1,1,1,1 --encoder-dims 64,64,64,64,64 --attention-dims 32,32,32,32,32 "
    "--feedforward-dims 64,64,64,64,64 --encoder-unmasked-dims 32,32,32,32,32 --nhead 2,2,2,2,2 "
    "--decoder-dim 64 --joiner-dim 64"
).split()
BPE_MODEL = "data/lang_bpe_80/bpe.model"
GREEDY_SUFFIX = "epoch-2-avg-1-streaming-chunk-size-32"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, RECIPE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def exp_dir(in_prepared_dir: None, tmp_path: Path) -> Path:
    """Two epoch checkpoints of one random tiny model (with its running average)."""
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    sp = load_bpe_model(Path(BPE_MODEL))
    torch.manual_seed(0)
    model = randomize_(build_model(parser.parse_args(TINY_MODEL), vocab_size=sp.get_piece_size()))
    for epoch in (1, 2):
        params = {"batch_idx_train": 100 * epoch, "average_period": 100}
        save_checkpoint(tmp_path / f"epoch-{epoch}.pt", model, copy.deepcopy(model), params=params)
    return tmp_path


def exact_fbank_manifest(tmp_path: Path) -> Path:
    """test-clean with its fbank recomputed and stored losslessly (the prepared one is lilcom-compressed,
    which streaming_decode.py, computing fbank from audio, cannot reproduce)."""
    cuts = load_manifest("data/fbank/librispeech_cuts_test-clean.jsonl.gz").drop_features()
    cuts = cuts.compute_and_store_features(make_fbank(), tmp_path / "feats", storage_type=NumpyFilesWriter)
    path = tmp_path / "librispeech_cuts_exact-test-clean.jsonl.gz"
    cuts.to_file(path)
    return path


def run(script: str, exp_dir: Path, *options: str) -> None:
    common = ["--epoch", "2", "--avg", "1", "--exp-dir", str(exp_dir), "--bpe-model", BPE_MODEL, "--num-threads", "1"]
    load_script(script).main(common + TINY_MODEL + list(options))


def hypotheses(path: Path) -> List[List[str]]:
    return [hyp for _, _, hyp in read_recogs(path)]


def test_decode_and_streaming_decode_agree_exactly(exp_dir: Path, tmp_path: Path) -> None:
    manifest = exact_fbank_manifest(tmp_path)
    run("decode", exp_dir, "--cuts", str(manifest), "--max-duration", "30")
    run("streaming_decode", exp_dir, "--cuts", str(manifest), "--num-decode-streams", "3")

    simulated = exp_dir / "greedy_search"
    streaming = exp_dir / "streaming" / "greedy_search"
    decode_suffix = f"{GREEDY_SUFFIX}-context-2-max-sym-per-frame-1-use-averaged-model"
    streaming_suffix = f"{GREEDY_SUFFIX}-use-averaged-model"
    simulated_hyps = hypotheses(simulated / f"recogs-exact-test-clean-{decode_suffix}.txt")
    streaming_hyps = hypotheses(streaming / f"recogs-exact-test-clean-{streaming_suffix}.txt")
    assert len(simulated_hyps) == 8 and sum(map(len, simulated_hyps)) > 50
    assert streaming_hyps == simulated_hyps

    for res_dir, suffix in ((simulated, decode_suffix), (streaming, streaming_suffix)):
        stats = read_error_stats(res_dir / f"errs-exact-test-clean-{suffix}.txt")
        assert read_wer_summary(res_dir / f"wer-summary-exact-test-clean-{suffix}.txt") == {"greedy_search": stats.wer}
        (log,) = res_dir.glob(f"log-decode-{suffix}-*")
        assert "cuts processed until now is 8" in log.read_text().lower()
    assert "real-time factor" in next(streaming.glob("log-decode-*")).read_text()


@pytest.mark.parametrize(
    "script, options, files",
    [
        ("decode", ["--decoding-method", "modified_beam_search"],
         "modified_beam_search/{kind}-{set}-epoch-2-avg-1-streaming-chunk-size-32-modified_beam_search-beam-size-4.txt"),
        ("streaming_decode", ["--decoding-method", "fast_beam_search", "--num-decode-streams", "4"],
         "streaming/fast_beam_search/{kind}-{set}-epoch-2-avg-1-streaming-chunk-size-32-beam-4.0-max-contexts-4-max-states-32.txt"),
    ],
)
def test_default_test_sets_and_result_names(exp_dir: Path, script: str, options: List[str], files: str) -> None:
    run(script, exp_dir, "--use-averaged-model", "0", *options)
    for test_set in ("test-clean", "test-other"):
        for kind in ("recogs", "errs", "wer-summary"):
            assert (exp_dir / files.format(kind=kind, set=test_set)).is_file()
        assert len(read_recogs(exp_dir / files.format(kind="recogs", set=test_set))) == 8


def test_missing_checkpoint_and_too_large_avg(exp_dir: Path, capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(CheckpointSelectionError, match=r"epoch-7\.pt.*Epochs available in .*\[1, 2\]"):
        load_script("decode").main(["--epoch", "7", "--avg", "1", "--exp-dir", str(exp_dir), "--bpe-model", BPE_MODEL] + TINY_MODEL)
    script = load_script("streaming_decode")
    argv = ["--epoch", "2", "--avg", "2", "--exp-dir", str(exp_dir), "--bpe-model", BPE_MODEL] + TINY_MODEL
    assert run_script(lambda: script.main(argv)) == 1
    error_lines = [line for line in capfd.readouterr().err.splitlines() if " ERROR " in line]
    assert len(error_lines) == 1 and "epoch-0.pt" in error_lines[0] and "--avg < --epoch" in error_lines[0]


def test_corrupt_audio_is_named(exp_dir: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC but not really" * 100)
    cut = load_manifest("data/fbank/librispeech_cuts_test-clean.jsonl.gz")[0].to_dict()
    cut["recording"]["sources"][0]["source"] = str(corrupt)
    manifest = tmp_path / "broken.jsonl.gz"
    CutSet.from_dicts([cut]).to_file(manifest)
    with pytest.raises(AudioError, match=rf"{cut['id']}.*corrupt\.flac"):
        run("streaming_decode", exp_dir, "--cuts", str(manifest))
