"""prepare.sh --hf-dataset: small Hugging Face datasets built from the tiny synthetic corpus in every layout the
importer reads (Audio column in a saved DatasetDict, raw arrays with sampling rates, shard folders, Parquet)
give stage-1 manifests with the source's texts and durations; bad rows are counted and skipped; a missing column
names the columns there are; and a tiny model trains an epoch on an imported corpus."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, List, Tuple

import datasets
import numpy as np
import pytest
import soundfile
from lhotse import load_manifest
from lhotse.qa import validate

from conftest import TINY_VOCAB_SIZE, run_prepare
from icefall_lite.data.hf_import import HfColumns, HfDatasetError, import_hf_dataset, parse_split_map, require_datasets

Row = Tuple[Path, str]


def corpus_rows(prepared_dir: Path, part: str) -> List[Row]:
    """(flac, transcript) of each utterance of a part of the prepared synthetic corpus."""
    rows = []
    for trans in sorted((prepared_dir / "download" / "LibriSpeech" / part).rglob("*.trans.txt")):
        for line in trans.read_text().splitlines():
            utterance_id, text = line.split(" ", 1)
            rows.append((trans.parent / f"{utterance_id}.flac", text))
    return rows


def audio_dataset(rows: List[Row]):
    """An Audio-column dataset holding the files' bytes."""
    audio = [{"bytes": path.read_bytes(), "path": None} for path, _ in rows]
    return datasets.Dataset.from_dict({"audio": audio, "text": [t for _, t in rows]}).cast_column("audio", datasets.Audio())


def raw_dataset(rows: List[Row], rate: int = 16000):
    """input_values (float32 arrays at `rate`), sampling_rate and sentence columns."""
    values, rates = [], []
    for path, _ in rows:
        samples, _ = soundfile.read(path, dtype="float32")
        if rate != 16000:
            samples = np.interp(np.arange(0, len(samples), 16000 / rate), np.arange(len(samples)), samples).astype(np.float32)
        values.append(samples)
        rates.append(rate)
    return datasets.Dataset.from_dict({"input_values": values, "sampling_rate": rates, "sentence": [t for _, t in rows]})


def manifests_after_stage_1(corpus: Path, work_dir: Path) -> Dict[str, Tuple[object, object]]:
    """Run stage 1 on the imported corpus: part -> (recordings, supervisions), validated by lhotse."""
    result = run_prepare(work_dir, "--stage", "1", "--stop-stage", "1", "--dl-dir", str(corpus.parent), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    manifests = {}
    for path in (work_dir / "data" / "manifests").glob("librispeech_recordings_*.jsonl.gz"):
        part = path.name[len("librispeech_recordings_"):-len(".jsonl.gz")]
        recordings = load_manifest(path)
        supervisions = load_manifest(path.with_name(f"librispeech_supervisions_{part}.jsonl.gz"))
        validate(recordings)
        validate(supervisions)
        manifests[part] = (recordings, supervisions)
    return manifests


def assert_same_texts_and_durations(manifests, part: str, rows: List[Row], tolerance: float) -> None:
    recordings, supervisions = manifests[part]
    assert sorted(s.text for s in supervisions) == sorted(t for _, t in rows)
    by_text = {s.text: recordings[s.recording_id].duration for s in supervisions}
    for path, text in rows:
        assert by_text[text] == pytest.approx(soundfile.info(str(path)).duration, abs=tolerance)


def test_saved_dataset_dict_with_an_audio_column(prepared_dir: Path, tmp_path: Path) -> None:
    train, dev = corpus_rows(prepared_dir, "train-clean-100")[:12], corpus_rows(prepared_dir, "dev-clean")[:5]
    datasets.DatasetDict({"train": audio_dataset(train), "validation": audio_dataset(dev)}).save_to_disk(str(tmp_path / "hf"))
    corpus = tmp_path / "download" / "LibriSpeech"
    import_hf_dataset(tmp_path / "hf", corpus, parse_split_map("train=train-clean-100,validation=dev-clean"), HfColumns())
    manifests = manifests_after_stage_1(corpus, tmp_path)
    assert set(manifests) == {"train-clean-100", "dev-clean"}
    assert_same_texts_and_durations(manifests, "train-clean-100", train, tolerance=1e-4)
    assert_same_texts_and_durations(manifests, "dev-clean", dev, tolerance=1e-4)


def test_raw_arrays_in_shard_folders_are_concatenated_and_resampled(prepared_dir: Path, tmp_path: Path) -> None:
    rows = corpus_rows(prepared_dir, "train-clean-100")[:9]
    for shard, (start, stop) in enumerate([(0, 4), (4, 9)]):
        raw_dataset(rows[start:stop], rate=22050).save_to_disk(str(tmp_path / "hf" / "train" / str(shard)))
    corpus = tmp_path / "download" / "LibriSpeech"
    columns = HfColumns(audio="input_values", text="sentence", sampling_rate="sampling_rate")
    import_hf_dataset(tmp_path / "hf", corpus, parse_split_map("train=train-clean-100"), columns)
    manifests = manifests_after_stage_1(corpus, tmp_path)
    assert_same_texts_and_durations(manifests, "train-clean-100", rows, tolerance=2e-3)
    recordings, _ = manifests["train-clean-100"]
    assert {r.sampling_rate for r in recordings} == {16000}


def test_parquet_files(prepared_dir: Path, tmp_path: Path) -> None:
    rows = corpus_rows(prepared_dir, "test-clean")[:6]
    (tmp_path / "hf" / "data").mkdir(parents=True)
    audio_dataset(rows[:3]).to_parquet(str(tmp_path / "hf" / "data" / "test-00000-of-00002.parquet"))
    audio_dataset(rows[3:]).to_parquet(str(tmp_path / "hf" / "data" / "test-00001-of-00002.parquet"))
    corpus = tmp_path / "download" / "LibriSpeech"
    import_hf_dataset(tmp_path / "hf", corpus, parse_split_map("test=test-clean"), HfColumns())
    assert_same_texts_and_durations(manifests_after_stage_1(corpus, tmp_path), "test-clean", rows, tolerance=1e-4)


def test_bad_rows_are_skipped_and_counted_by_reason(prepared_dir: Path, tmp_path: Path, caplog) -> None:
    rows = corpus_rows(prepared_dir, "train-clean-100")[:4]
    good = raw_dataset(rows).to_dict()
    good["input_values"] += [[], [0.1] * 1600, [0.1] * 1600, [0.1] * 1600]
    good["sampling_rate"] += [16000, 16000, 16000, 0]
    good["sentence"] += ["EMPTY AUDIO", None, "   ", "ZERO RATE"]
    datasets.Dataset.from_dict(good).save_to_disk(str(tmp_path / "hf" / "train"))
    corpus = tmp_path / "LibriSpeech"
    with caplog.at_level("INFO"):
        import_hf_dataset(tmp_path / "hf", corpus, parse_split_map("train=train-clean-100"),
                          HfColumns(audio="input_values", text="sentence"))
    report = (corpus / "HF_DATASET.txt").read_text()
    assert "4 of 8 rows; skipped 4" in report
    assert "1 with empty audio (rows [4])" in report
    assert "2 with a missing or empty transcript (rows [5, 6])" in report
    assert "1 with a sampling rate that cannot be resampled (rows [7])" in report
    assert "skipped 4" in caplog.text
    assert len(list(corpus.rglob("*.flac"))) == 4


def test_a_missing_column_lists_the_columns(prepared_dir: Path, tmp_path: Path) -> None:
    raw_dataset(corpus_rows(prepared_dir, "dev-clean")[:2]).save_to_disk(str(tmp_path / "hf" / "validation"))
    with pytest.raises(HfDatasetError, match="no column 'audio', 'text'.*its columns: input_values, sampling_rate, sentence"):
        import_hf_dataset(tmp_path / "hf", tmp_path / "LibriSpeech", parse_split_map("validation=dev-clean"), HfColumns())
    with pytest.raises(HfDatasetError, match="no split 'train'"):
        import_hf_dataset(tmp_path / "hf", tmp_path / "LibriSpeech", parse_split_map("train=train-clean-100"), HfColumns())
    assert not (tmp_path / "LibriSpeech").exists()


@pytest.mark.parametrize("text, message", [("train", "not SPLIT=PART"), ("train=train-clean-200", "not a LibriSpeech part"),
                                           ("a=dev-clean,b=dev-clean", "two splits map to dev-clean")])
def test_bad_split_maps_are_named(text: str, message: str) -> None:
    with pytest.raises(HfDatasetError, match=message):
        parse_split_map(text)


def test_a_tiny_model_trains_an_epoch_on_an_imported_corpus(prepared_dir: Path, tmp_path: Path) -> None:
    from training.test_train import run_train  # test/training/test_train.py (test/ is on sys.path)

    train, dev = corpus_rows(prepared_dir, "train-clean-100"), corpus_rows(prepared_dir, "dev-clean")
    datasets.DatasetDict({"train": audio_dataset(train), "validation": audio_dataset(dev)}).save_to_disk(str(tmp_path / "hf"))
    result = run_prepare(tmp_path, "--hf-dataset", str(tmp_path / "hf"), "--hf-split-map",
                         "train=train-clean-100,validation=dev-clean", "--vocab-size", str(TINY_VOCAB_SIZE), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Writing the Hugging Face dataset" in result.stdout
    result = run_train(tmp_path, tmp_path / "exp")
    assert (tmp_path / "exp" / "epoch-1.pt").is_file()
    assert "Validating on dev-clean alone" in result.stderr


def test_without_datasets_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"pip install datasets==5\.2\.0"):
        require_datasets()
