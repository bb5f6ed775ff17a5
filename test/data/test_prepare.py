"""prepare.sh end to end on a tiny synthetic corpus: every stage's output, idempotence and bad options."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import soundfile as sf
from lhotse import load_manifest
from lhotse.qa import validate

from conftest import REPO_ROOT, TINY_VOCAB_SIZE, run_prepare
from icefall_lite.data.synthetic_corpus import EVAL_SUBSETS, SYNTHETIC_MARKER, TRAIN_SUBSET

ALL_SUBSETS = (TRAIN_SUBSET, *EVAL_SUBSETS)


def read_transcripts(corpus_dir: Path, subset: str) -> dict[str, str]:
    """utterance id -> text of every trans.txt line of a subset."""
    lines = [line for path in (corpus_dir / subset).rglob("*.trans.txt") for line in path.read_text().splitlines()]
    return dict(line.split(" ", 1) for line in lines)


def test_stage0_writes_librispeech_layout(prepared_dir: Path) -> None:
    corpus_dir = prepared_dir / "download" / "LibriSpeech"
    for subset in ALL_SUBSETS:
        transcripts = read_transcripts(corpus_dir, subset)
        assert transcripts, subset
        for utterance_id, text in transcripts.items():
            speaker, chapter, _ = utterance_id.split("-")
            audio = corpus_dir / subset / speaker / chapter / f"{utterance_id}.flac"
            info = sf.info(audio)
            assert (info.samplerate, info.channels) == (16000, 1)
            assert 1.0 < info.duration < 25.0
            assert text == text.upper() and text.replace(" ", "").replace("'", "").isalpha()
    assert not list(corpus_dir.parent.glob("*.partial"))
    assert (corpus_dir / SYNTHETIC_MARKER).is_file()


def test_stage0_pauses_have_a_noise_floor_not_digital_silence(prepared_dir: Path) -> None:
    for audio in sorted((prepared_dir / "download" / "LibriSpeech" / "test-clean").glob("*/*/*.flac"))[:5]:
        samples, _ = sf.read(audio, dtype="float32")
        frames = samples[: len(samples) // 400 * 400].reshape(-1, 400)
        frame_rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        quietest_db = 20 * np.log10(np.percentile(frame_rms, 5) / np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
        assert frame_rms.min() > 0, audio
        assert -55.0 < quietest_db < -30.0, (audio, quietest_db)


def test_stage0_keeps_eval_sentences_and_other_speakers_out_of_training(prepared_dir: Path) -> None:
    corpus_dir = prepared_dir / "download" / "LibriSpeech"
    train = read_transcripts(corpus_dir, TRAIN_SUBSET)
    train_speakers = {utterance_id.split("-")[0] for utterance_id in train}
    for subset in EVAL_SUBSETS:
        evaluation = read_transcripts(corpus_dir, subset)
        assert not set(evaluation.values()) & set(train.values()), subset
        assert not {utterance_id.split("-")[0] for utterance_id in evaluation} & train_speakers, subset


def test_stages_1_to_4_write_valid_manifests(prepared_dir: Path) -> None:
    manifests = sorted((prepared_dir / "data" / "manifests").glob("*.jsonl.gz"))
    cuts = sorted((prepared_dir / "data" / "fbank").glob("*_cuts_*.jsonl.gz"))
    names = {path.name for path in manifests + cuts}
    for subset in ALL_SUBSETS:
        assert f"librispeech_recordings_{subset}.jsonl.gz" in names
        assert f"librispeech_supervisions_{subset}.jsonl.gz" in names
        assert f"librispeech_cuts_{subset}.jsonl.gz" in names
    assert "musan_recordings_noise.jsonl.gz" in names
    for path in manifests + cuts + [prepared_dir / "data" / "fbank" / "musan_cuts.jsonl.gz"]:
        validate(load_manifest(path), read_data=False)


@pytest.mark.usefixtures("in_prepared_dir")
def test_stage3_fbank_has_80_bins_and_speed_perturbed_training_copies(prepared_dir: Path) -> None:
    fbank_dir = prepared_dir / "data" / "fbank"
    recordings = load_manifest(prepared_dir / "data" / "manifests" / f"librispeech_recordings_{TRAIN_SUBSET}.jsonl.gz")
    train_cuts = load_manifest(fbank_dir / f"librispeech_cuts_{TRAIN_SUBSET}.jsonl.gz")
    assert len(train_cuts) == 3 * len(recordings)
    assert sum(cut.id.endswith("_sp0.9") for cut in train_cuts) == len(recordings)
    assert sum(cut.id.endswith("_sp1.1") for cut in train_cuts) == len(recordings)
    cut = next(iter(load_manifest(fbank_dir / "librispeech_cuts_dev-clean.jsonl.gz")))
    features = cut.load_features()
    assert features.shape == (cut.num_frames, 80)
    assert abs(cut.num_frames - round(cut.duration * 100)) <= 1


@pytest.mark.usefixtures("in_prepared_dir")
def test_stage4_noise_cuts_are_5_to_10_seconds(prepared_dir: Path) -> None:
    noise_cuts = load_manifest(prepared_dir / "data" / "fbank" / "musan_cuts.jsonl.gz")
    assert len(noise_cuts) > 0
    assert all(5.0 < cut.duration <= 10.0 for cut in noise_cuts)
    assert next(iter(noise_cuts)).load_features().shape[1] == 80


def test_stage5_bpe_special_token_ids(prepared_dir: Path) -> None:
    lang_dir = prepared_dir / "data" / f"lang_bpe_{TINY_VOCAB_SIZE}"
    sp = spm.SentencePieceProcessor(model_file=str(lang_dir / "bpe.model"))
    assert [sp.piece_to_id(piece) for piece in ("<blk>", "<sos/eos>", "<unk>")] == [0, 1, 2]
    tokens = [line.split() for line in (lang_dir / "tokens.txt").read_text().splitlines()]
    assert tokens[:3] == [["<blk>", "0"], ["<sos/eos>", "1"], ["<unk>", "2"]]
    assert [int(token_id) for _, token_id in tokens] == list(range(sp.get_piece_size()))
    words = (lang_dir / "transcript_words.txt").read_text().split()
    assert sp.decode(sp.encode(" ".join(words[:20]))) == " ".join(words[:20])


def test_rerun_skips_finished_stages(prepared_dir: Path) -> None:
    outputs = [p for p in (prepared_dir / "data").rglob("*") if p.is_file()]
    before = {path: path.stat().st_mtime_ns for path in outputs}
    result = run_prepare(prepared_dir, "--vocab-size", str(TINY_VOCAB_SIZE), "--stage", "0", "--stop-stage", "5")
    assert "Using the corpus in" in result.stdout
    assert {path: path.stat().st_mtime_ns for path in outputs} == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--stage", "7"], "--stage must be between 0 and 5, got 7"),
        (["--vocab-size", "abc"], "--vocab-size expects an integer, got 'abc'"),
        (["--synthetic-hours", "lots"], "--synthetic-hours expects a positive number"),
        (["--stage", "3", "--stop-stage", "1"], "--stage (3) is after --stop-stage (1)"),
        (["--colour", "blue"], "unknown option '--colour'"),
        (["--nj"], "--nj needs a value"),
    ],
)
def test_bad_options_fail_at_once_with_a_clear_message(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_prepare(tmp_path, *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert not list(tmp_path.iterdir())


def test_top_level_prepare_passes_options_to_the_recipe(tmp_path: Path) -> None:
    result = run_prepare(tmp_path, "--stage", "9", check=False, script=REPO_ROOT / "prepare.sh")
    assert result.returncode != 0 and "--stage must be between 0 and 5, got 9" in result.stderr


def test_missing_espeak_names_the_install_command(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("bash", "python3", "dirname", "readlink", "date", "awk", "mkdir"):
        os.symlink(shutil.which(program), bin_dir / program)
    env = {**os.environ, "PATH": str(bin_dir)}
    result = run_prepare(tmp_path, "--stage", "0", "--stop-stage", "0", check=False, env=env)
    assert result.returncode != 0
    assert "apt-get install -y --no-install-recommends espeak-ng sox" in result.stderr
