"""A Hugging Face dataset as a LibriSpeech-format corpus (prepare.sh --hf-dataset DIR), so that stage 1's lhotse
manifests, the fbank and BPE stages and every script work unchanged.

DIR may be what `datasets`' `save_to_disk` wrote (a DatasetDict, or one folder per split), a folder of shard
folders per split (`train/0`, `train/1`, ...: concatenated in numeric order, the WeNet-on-Lightning layout), or
Parquet files (`SPLIT*.parquet`, `SPLIT/*.parquet` or the Hub's `data/SPLIT-*.parquet`). The audio column is
either an `Audio` feature (any format soundfile reads) or raw float arrays with a sampling-rate column (the
`input_values` layout). Each split named in the split map becomes one LibriSpeech part:

    CORPUS/PART/0/CHAPTER/0-CHAPTER-ROW.flac          16 kHz mono, 16-bit
    CORPUS/PART/0/CHAPTER/0-CHAPTER.trans.txt         "0-CHAPTER-ROW TEXT" per line (CHAPTER = ROW // 1000)
    CORPUS/HF_DATASET.txt                             the source and the counts

Rows that cannot be used are skipped and counted by reason (the first few row indices logged): empty audio,
unreadable audio, a missing or empty transcript, a sampling rate that cannot be resampled. A missing column stops
with a message that lists the dataset's columns. `lhotse.CutSet.from_huggingface_dataset` is not used: it keeps
each recording's bytes inside the manifest and has no place for raw arrays or per-row checks.

Usage::

    import_hf_dataset(Path("my_dataset"), Path("download/LibriSpeech"), parse_split_map("train=train-clean-100"),
                      HfColumns(audio="audio", text="text"))
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import soundfile
import torch
import torchaudio
from tqdm import tqdm

SAMPLE_RATE = 16000
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000
ROWS_PER_CHAPTER = 1000
SHOWN_ROWS = 5
MARKER = "HF_DATASET.txt"
LIBRISPEECH_PARTS = (
    "train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean", "test-other",
)
DEFAULT_SPLIT_MAP = "train=train-clean-100,validation=dev-clean,test=test-clean"
INSTALL_HINT = "Hugging Face input needs the `datasets` package: pip install datasets==5.2.0"


class HfDatasetError(ValueError):
    """The dataset or the options do not fit (missing split or column, bad split map)."""


@dataclass(frozen=True)
class HfColumns:
    """--hf-audio-column, --hf-text-column and, for raw arrays, --hf-sampling-rate-column."""

    audio: str = "audio"
    text: str = "text"
    sampling_rate: str = "sampling_rate"


@dataclass
class SkippedRows:
    """Rows skipped per reason, with their indices."""

    rows: Dict[str, List[int]] = field(default_factory=dict)

    def add(self, reason: str, row: int) -> None:
        self.rows.setdefault(reason, []).append(row)

    def total(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def summary(self) -> str:
        parts = [f"{len(rows)} with {reason} (rows {rows[:SHOWN_ROWS]}{', ...' if len(rows) > SHOWN_ROWS else ''})"
                 for reason, rows in self.rows.items()]
        return "; ".join(parts) if parts else "none"


def require_datasets() -> Any:
    """The `datasets` module, or ImportError saying how to install it."""
    try:
        import datasets
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return datasets


def parse_split_map(text: str) -> Dict[str, str]:
    """"train=train-clean-100,validation=dev-clean" -> {"train": "train-clean-100", ...}; HfDatasetError for a
    malformed entry, a part LibriSpeech does not have, or two splits for one part."""
    mapping: Dict[str, str] = {}
    for entry in filter(None, (item.strip() for item in text.split(","))):
        split, sep, part = (value.strip() for value in entry.partition("="))
        if not sep or not split or not part:
            raise HfDatasetError(f"--hf-split-map: '{entry}' is not SPLIT=PART (e.g. train=train-clean-100)")
        if part not in LIBRISPEECH_PARTS:
            raise HfDatasetError(f"--hf-split-map: '{part}' is not a LibriSpeech part; parts: {', '.join(LIBRISPEECH_PARTS)}")
        if part in mapping.values():
            raise HfDatasetError(f"--hf-split-map: two splits map to {part}")
        mapping[split] = part
    if not mapping:
        raise HfDatasetError("--hf-split-map is empty")
    return mapping


def load_split(directory: Path, split: str, cache_dir: Path) -> Any:
    """The `datasets.Dataset` of one split of DIR, whichever layout DIR has; HfDatasetError naming the splits
    found when it has no such split."""
    datasets = require_datasets()
    if (directory / "dataset_dict.json").is_file():
        splits = datasets.load_from_disk(str(directory))
        if split not in splits:
            raise HfDatasetError(f"{directory} has no split '{split}'; its splits: {', '.join(splits)}")
        return splits[split]
    parquet = parquet_files(directory, split)
    if parquet:
        return datasets.Dataset.from_parquet([str(p) for p in parquet], cache_dir=str(cache_dir))
    split_dir = directory / split
    if (split_dir / "state.json").is_file():
        return datasets.load_from_disk(str(split_dir))
    shards = sorted((d for d in split_dir.glob("*") if (d / "state.json").is_file()), key=shard_order)
    if shards:
        return datasets.concatenate_datasets([datasets.load_from_disk(str(shard)) for shard in shards])
    found = sorted(d.name for d in directory.iterdir() if d.is_dir()) if directory.is_dir() else []
    raise HfDatasetError(
        f"{directory} has no split '{split}' (no dataset_dict.json, Parquet files or saved dataset for it; "
        f"folders there: {', '.join(found) or 'none'})"
    )


def parquet_files(directory: Path, split: str) -> List[Path]:
    patterns = [f"{split}*.parquet", f"{split}/*.parquet", f"data/{split}-*.parquet", f"data/{split}/*.parquet"]
    return sorted({path for pattern in patterns for path in directory.glob(pattern)})


def shard_order(path: Path) -> Tuple[int, str]:
    """Shard folders 0, 1, ..., 10 in numeric order (others after, by name)."""
    return (int(path.name), "") if path.name.isdigit() else (1 << 62, path.name)


def check_columns(dataset: Any, columns: HfColumns, split: str) -> bool:
    """Whether the audio column is raw arrays; HfDatasetError listing the dataset's columns if one is missing."""
    datasets = require_datasets()
    is_audio = isinstance(dataset.features.get(columns.audio), datasets.Audio)
    needed = [columns.audio, columns.text] + ([] if is_audio else [columns.sampling_rate])
    missing = [name for name in needed if name not in dataset.column_names]
    if missing:
        what = " (raw audio arrays need a sampling-rate column: --hf-sampling-rate-column)" if columns.sampling_rate in missing else ""
        raise HfDatasetError(
            f"split '{split}' has no column {', '.join(repr(m) for m in missing)}{what}; "
            f"its columns: {', '.join(dataset.column_names)}"
        )
    return not is_audio


def decoded_audio(row: Dict[str, Any], columns: HfColumns, raw: bool) -> Tuple[np.ndarray, Any]:
    """(samples, sampling rate) of a row: samples (S,) or (S, C) float32. Raises on unreadable audio."""
    value = row[columns.audio]
    if raw:
        return np.asarray(value if value is not None else [], dtype=np.float32), row[columns.sampling_rate]
    if value is None or not (value.get("bytes") or value.get("path")):
        return np.zeros(0, dtype=np.float32), SAMPLE_RATE
    source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
    samples, rate = soundfile.read(source, dtype="float32")
    return samples, rate


def usable_rate(rate: Any) -> Optional[int]:
    """The sampling rate as an int if audio at that rate can be resampled to 16 kHz, else None."""
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
        return None
    if not float(rate).is_integer() or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        return None
    return int(rate)


def to_16k_mono(samples: np.ndarray, rate: int) -> np.ndarray:
    """(S,) or (S, C) float32 at `rate` -> (S',) float32 at 16 kHz (channels averaged)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if rate == SAMPLE_RATE:
        return mono
    return torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(mono)), rate, SAMPLE_RATE).numpy()


def clean_text(text: Any) -> str:
    """The transcript on one line with single spaces ('' for None or blank)."""
    return re.sub(r"\s+", " ", text).strip() if isinstance(text, str) else ""


def usable_samples(row: Dict[str, Any], columns: HfColumns, raw: bool) -> Tuple[Optional[np.ndarray], str]:
    """(16 kHz mono samples (S,) float32, "") for a usable row, else (None, why it is skipped)."""
    if not clean_text(row[columns.text]):
        return None, "a missing or empty transcript"
    try:
        samples, rate = decoded_audio(row, columns, raw)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, TypeError):
        return None, "unreadable audio"
    if samples.size == 0:
        return None, "empty audio"
    usable = usable_rate(rate)
    if usable is None:
        return None, "a sampling rate that cannot be resampled"
    return to_16k_mono(samples, usable), ""


def write_part(dataset: Any, part_dir: Path, columns: HfColumns, raw: bool, skipped: SkippedRows) -> int:
    """Every usable row of `dataset` as flac + transcript lines under `part_dir`; returns the rows written."""
    datasets = require_datasets()
    if not raw:
        dataset = dataset.cast_column(columns.audio, datasets.Audio(decode=False))
    transcripts: Dict[int, List[str]] = {}
    for index, row in enumerate(tqdm(dataset, desc=part_dir.name, unit="row")):
        samples, reason = usable_samples(row, columns, raw)
        if samples is None:
            skipped.add(reason, index)
            continue
        chapter = index // ROWS_PER_CHAPTER
        utterance_id = f"0-{chapter}-{index}"
        chapter_dir = part_dir / "0" / str(chapter)
        chapter_dir.mkdir(parents=True, exist_ok=True)
        soundfile.write(chapter_dir / f"{utterance_id}.flac", samples, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
        transcripts.setdefault(chapter, []).append(f"{utterance_id} {clean_text(row[columns.text])}\n")
    for chapter, lines in transcripts.items():
        (part_dir / "0" / str(chapter) / f"0-{chapter}.trans.txt").write_text("".join(lines))
    return sum(len(lines) for lines in transcripts.values())


def import_hf_dataset(source: Path, corpus_dir: Path, split_map: Dict[str, str], columns: HfColumns) -> None:
    """Write the mapped splits of the dataset at `source` as a LibriSpeech-format corpus at `corpus_dir` (built in
    `corpus_dir.partial`, renamed when complete)."""
    if corpus_dir.exists():
        raise FileExistsError(f"{corpus_dir} exists already; remove it to import {source}")
    if not source.exists():
        raise FileNotFoundError(f"--hf-dataset {source} does not exist")
    partial = corpus_dir.with_name(corpus_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    report = [f"Imported from the Hugging Face dataset {source.resolve()}"]
    for split, part in split_map.items():
        dataset = load_split(source, split, partial / ".hf_cache")
        raw = check_columns(dataset, columns, split)
        skipped = SkippedRows()
        written = write_part(dataset, partial / part, columns, raw, skipped)
        line = f"{split} -> {part}: {written} of {len(dataset)} rows; skipped {skipped.total()}: {skipped.summary()}"
        logging.info(line)
        report.append(line)
        if written == 0:
            raise HfDatasetError(f"split '{split}' of {source} has no usable row ({skipped.summary()})")
    shutil.rmtree(partial / ".hf_cache", ignore_errors=True)
    (partial / MARKER).write_text("\n".join(report) + "\n")
    os.replace(partial, corpus_dir)
