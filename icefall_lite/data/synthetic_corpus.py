"""Synthesize a LibriSpeech-format corpus with espeak-ng.

Layout written under ``corpus_dir`` (exactly LibriSpeech's, so lhotse's own recipe reads it)::

    SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac      16 kHz mono
    SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt     "SPEAKER-CHAPTER-UTT UPPER CASE TEXT" per line
    SYNTHETIC.txt                                        marks the corpus as synthetic

The corpus is built in ``corpus_dir.partial`` and renamed to ``corpus_dir`` when complete, so an interrupted run
never leaves something that looks like a finished corpus; a re-run resumes, keeping the finished audio files.

Example::

    >>> plan = plan_corpus(train_hours=0.1, seed=0)
    >>> synthesize_corpus(plan, Path("download/LibriSpeech"), num_jobs=2)
"""

from __future__ import annotations

import io
import logging
import math
import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import soundfile
from tqdm import tqdm

from icefall_lite.data.sentences import generate_splits
from icefall_lite.data.voices import Speaker, SpeakerPool, make_speakers

TRAIN_SUBSET = "train-clean-100"
EVAL_SUBSETS = ("dev-clean", "dev-other", "test-clean", "test-other")
SAMPLE_RATE = 16000
MIN_WORDS, MAX_WORDS = 4, 20
MEAN_SECONDS_PER_UTTERANCE = 4.2
EVAL_FRACTION = 0.05
MIN_EVAL_UTTERANCES = 8
UTTERANCES_PER_SPEAKER = 24
REQUIRED_PROGRAMS = ("espeak-ng", "sox")
# Written at the top of a synthesized corpus (run.sh picks the small demo model for it).
SYNTHETIC_MARKER = "SYNTHETIC.txt"
# The noise floor of every utterance: white noise this many dB below the speech (a quiet room).
NOISE_SNR_DB_MIN, NOISE_SNR_DB_MAX = 35.0, 50.0


@dataclass(frozen=True)
class Utterance:
    """One sentence spoken by one speaker, with its LibriSpeech ids."""

    subset: str
    speaker_id: int
    chapter_id: int
    index: int
    text: str
    speaker: Speaker

    @property
    def utterance_id(self) -> str:
        return f"{self.speaker_id}-{self.chapter_id}-{self.index:04d}"

    def audio_path(self, corpus_dir: Path) -> Path:
        chapter_dir = corpus_dir / self.subset / str(self.speaker_id) / str(self.chapter_id)
        return chapter_dir / f"{self.utterance_id}.flac"


def check_programs() -> None:
    """Raise a clear error when espeak-ng or sox is not installed."""
    missing = [name for name in REQUIRED_PROGRAMS if shutil.which(name) is None]
    if missing:
        raise RuntimeError(
            f"missing program(s): {', '.join(missing)}. Install them with: "
            "apt-get install -y --no-install-recommends espeak-ng sox"
        )


def subset_utterance_counts(train_hours: float) -> Dict[str, int]:
    """How many utterances each subset gets for `train_hours` of training speech."""
    if not train_hours > 0:
        raise ValueError(f"--synthetic-hours must be > 0, got {train_hours}")
    num_train = max(MIN_EVAL_UTTERANCES, math.ceil(train_hours * 3600 / MEAN_SECONDS_PER_UTTERANCE))
    num_eval = max(MIN_EVAL_UTTERANCES, round(num_train * EVAL_FRACTION))
    return {TRAIN_SUBSET: num_train, **{subset: num_eval for subset in EVAL_SUBSETS}}


def plan_corpus(train_hours: float, seed: int) -> List[Utterance]:
    """Every utterance of the corpus: its subset, ids, text and speaker. Deterministic for a seed.

    Sentences never repeat across subsets. Each subset has its own speakers; "-other" subsets use voices from
    the pool never heard in training.
    """
    texts = generate_splits(
        seed=seed, counts=subset_utterance_counts(train_hours), min_words=MIN_WORDS, max_words=MAX_WORDS
    )
    speakers_per_subset = {
        subset: max(2, math.ceil(len(subset_texts) / UTTERANCES_PER_SPEAKER)) for subset, subset_texts in texts.items()
    }
    speakers = {
        pool: iter(make_speakers(pool, sum(n for s, n in speakers_per_subset.items() if _pool_of(s) is pool), seed))
        for pool in set(map(_pool_of, texts))
    }
    plan: List[Utterance] = []
    next_speaker_id = 100
    for subset_index, (subset, subset_texts) in enumerate(texts.items()):
        num_speakers = speakers_per_subset[subset]
        subset_speakers = [next(speakers[_pool_of(subset)]) for _ in range(num_speakers)]
        for i, text in enumerate(subset_texts):
            slot = i % num_speakers
            plan.append(
                Utterance(
                    subset=subset,
                    speaker_id=next_speaker_id + slot,
                    chapter_id=(subset_index + 1) * 10000 + slot,
                    index=i // num_speakers,
                    text=text,
                    speaker=subset_speakers[slot],
                )
            )
        next_speaker_id += num_speakers
    return plan


def _pool_of(subset: str) -> SpeakerPool:
    return SpeakerPool.UNSEEN if subset.endswith("-other") else SpeakerPool.SEEN


def noise_floor_snr_db(utterance: Utterance) -> float:
    """The utterance's signal-to-noise ratio in dB, in [NOISE_SNR_DB_MIN, NOISE_SNR_DB_MAX], fixed by its id."""
    rng = random.Random(f"noise-{utterance.subset}-{utterance.utterance_id}")
    return rng.uniform(NOISE_SNR_DB_MIN, NOISE_SNR_DB_MAX)


def add_noise_floor(samples: np.ndarray, snr_db: float, seed: str) -> np.ndarray:
    """samples: (S,) float32 speech -> (S,) float32 with white noise ``snr_db`` below the speech's RMS.

    espeak-ng pauses are digital silence, which no microphone records: their fbank frames sit at the log floor
    (about -16, far below speech), unlike any real corpus. A noise floor makes pauses look like a quiet room.
    """
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    generator = np.random.default_rng(list(seed.encode()))
    noise = generator.standard_normal(samples.shape[0]) * rms * 10.0 ** (-snr_db / 20.0)
    return np.clip(samples + noise, -1.0, 1.0).astype(np.float32)


def speak(speaker: Speaker, text: str, sox_effects: Sequence[str] = (), dither: bool = True) -> np.ndarray:
    """`text` spoken by `speaker` with espeak-ng, resampled by sox to 16 kHz mono (then `sox_effects`, e.g. a
    ``Channel``'s), as (S,) float32 samples in [-1, 1]. sox dithers the 16-bit output with fresh random noise
    unless ``dither=False`` (then the samples are the same on every call)."""
    espeak = subprocess.run(
        ["espeak-ng", *speaker.espeak_args(), "--stdout", text.lower()],
        check=True,
        capture_output=True,
    )
    resampled = subprocess.run(
        ["sox", *([] if dither else ["-D"]), "-t", "wav", "-", "-t", "wav", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
         "-", *sox_effects],
        input=espeak.stdout,
        check=True,
        capture_output=True,
    )
    samples, _ = soundfile.read(io.BytesIO(resampled.stdout), dtype="float32")
    return samples


def synthesize_utterance(utterance: Utterance, corpus_dir: Path) -> None:
    """Speak one utterance with espeak-ng, resample it to 16 kHz mono with sox, add a noise floor
    (``add_noise_floor``) and store it as 16-bit flac (atomically)."""
    target = utterance.audio_path(corpus_dir)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.partial.flac")
    samples = speak(utterance.speaker, utterance.text)
    noisy = add_noise_floor(samples, noise_floor_snr_db(utterance), seed=f"{utterance.subset}-{utterance.utterance_id}")
    soundfile.write(partial, noisy, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    os.replace(partial, target)


def write_transcripts(plan: Sequence[Utterance], corpus_dir: Path) -> None:
    """Write one SPEAKER-CHAPTER.trans.txt per chapter, utterances in id order."""
    chapters: Dict[Path, List[Utterance]] = {}
    for utterance in plan:
        chapters.setdefault(utterance.audio_path(corpus_dir).parent, []).append(utterance)
    for chapter_dir, utterances in chapters.items():
        first = utterances[0]
        lines = [f"{u.utterance_id} {u.text}\n" for u in sorted(utterances, key=lambda u: u.index)]
        (chapter_dir / f"{first.speaker_id}-{first.chapter_id}.trans.txt").write_text("".join(lines))


def synthesize_corpus(plan: Sequence[Utterance], corpus_dir: Path, num_jobs: int) -> None:
    """Synthesize every utterance of `plan` into `corpus_dir` (built in `corpus_dir.partial`, then renamed)."""
    check_programs()
    if corpus_dir.exists():
        raise FileExistsError(f"{corpus_dir} exists already; remove it to synthesize a new corpus")
    partial_dir = corpus_dir.with_name(corpus_dir.name + ".partial")
    logging.info(f"Synthesizing {len(plan)} utterances into {partial_dir} with {num_jobs} jobs")
    # Each job is an espeak-ng + sox subprocess, so threads suffice to keep `num_jobs` cores busy.
    with ThreadPoolExecutor(num_jobs) as pool:
        jobs = pool.map(lambda u: synthesize_utterance(u, partial_dir), plan)
        for _ in tqdm(jobs, total=len(plan), desc="espeak-ng", unit="utt"):
            pass
    write_transcripts(plan, partial_dir)
    (partial_dir / SYNTHETIC_MARKER).write_text(
        f"LibriSpeech-format corpus synthesized with espeak-ng by icefall_lite: {len(plan)} utterances.\n"
    )
    os.replace(partial_dir, corpus_dir)
    logging.info(f"Synthetic corpus ready: {corpus_dir}")
