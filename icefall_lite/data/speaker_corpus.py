"""Synthesize a VoxCeleb1-format speaker recognition corpus with espeak-ng (the ASR corpus's machinery).

A speaker is a fixed voice (accent, variant, pitch, rate: ``voices.Speaker``) heard through a fixed channel
(``voices.Channel``: band-pass and EQ). Each utterance is a new sentence at a random level with random noise, so
neither loudness nor noise tells speakers apart. "dev" speakers train the model; "test" speakers are never used
in training and have a trial list of same- and different-speaker pairs.

Layout under ``corpus_dir`` (VoxCeleb1's)::

    wav/SPEAKER/SESSION/NNNNN.wav     16 kHz mono, 2 to 8 s
    vox1_meta.csv                     "VoxCeleb1 ID<TAB>VGGFace1 ID<TAB>Gender<TAB>Nationality<TAB>Set"
    voxceleb1_test_v2.txt             trials: "1|0 SPEAKER/SESSION/NNNNN.wav SPEAKER/SESSION/NNNNN.wav"
    SYNTHETIC.txt                     marks the corpus as synthetic

Example::

    >>> plan = plan_speaker_corpus(SpeakerCorpusSize(num_train_speakers=4, train_utterances=6), seed=0)
    >>> synthesize_speaker_corpus(plan, Path("download/VoxCeleb1"), num_jobs=2)
"""

from __future__ import annotations

import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import soundfile
from tqdm import tqdm

from icefall_lite.data.sentences import generate_splits
from icefall_lite.data.synthetic_corpus import SAMPLE_RATE, SYNTHETIC_MARKER, add_noise_floor, check_programs, speak
from icefall_lite.data.voices import Channel, Speaker, SpeakerPool, make_channels, make_speakers

META_FILE = "vox1_meta.csv"
TRIALS_FILE = "voxceleb1_test_v2.txt"
META_HEADER = "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
MIN_WORDS, MAX_WORDS = 6, 15
MIN_SECONDS, MAX_SECONDS = 2.0, 8.0
LEVEL_RANGE_DBFS = (-32.0, -12.0)
SNR_RANGE_DB = (20.0, 45.0)
FIRST_SPEAKER_NUMBER = 10001
FEMALE_VARIANTS = {"f1", "f2", "f3", "f4", "f5", "linda", "steph", "aunty", "belinda", "Annie"}


@dataclass(frozen=True)
class SpeakerCorpusSize:
    """How many speakers and utterances; the defaults are the recipe's (>= 300 training speakers)."""

    num_train_speakers: int = 300
    train_utterances: int = 24
    num_test_speakers: int = 40
    test_utterances: int = 12
    sessions: int = 4
    targets_per_utterance: int = 5

    def check(self) -> None:
        if self.num_train_speakers < 2 or self.num_test_speakers < 2:
            raise ValueError(f"the corpus needs at least 2 training and 2 test speakers, got {self}")
        if self.train_utterances < 2 or self.test_utterances < 2:
            raise ValueError(f"every speaker needs at least 2 utterances, got {self}")


@dataclass(frozen=True)
class SyntheticSpeaker:
    """One speaker of the corpus: VoxCeleb id, voice, channel and split ("dev" trains, "test" is held out)."""

    speaker_id: str
    voice: Speaker
    channel: Channel
    split: str

    @property
    def gender(self) -> str:
        return "f" if self.voice.variant in FEMALE_VARIANTS else "m"


@dataclass(frozen=True)
class SpeakerUtterance:
    """One sentence of one speaker, in one session."""

    speaker: SyntheticSpeaker
    session: str
    index: int
    text: str

    @property
    def relative_path(self) -> str:
        """VoxCeleb's name of the file, as the trial list writes it: SPEAKER/SESSION/NNNNN.wav."""
        return f"{self.speaker.speaker_id}/{self.session}/{self.index:05d}.wav"

    @property
    def utterance_id(self) -> str:
        """lhotse's recording id of the file: SPEAKER-SESSION-NNNNN."""
        return self.relative_path[: -len(".wav")].replace("/", "-")


@dataclass(frozen=True)
class SpeakerCorpusPlan:
    speakers: List[SyntheticSpeaker]
    utterances: List[SpeakerUtterance]
    trials: List[Tuple[int, str, str]]
    seed: int


def plan_speaker_corpus(size: SpeakerCorpusSize, seed: int) -> SpeakerCorpusPlan:
    """Speakers, utterances (distinct sentences) and trials of the corpus; deterministic for a seed."""
    size.check()
    num_speakers = size.num_train_speakers + size.num_test_speakers
    voices = make_speakers(SpeakerPool.SEEN, num_speakers, seed)
    channels = make_channels(num_speakers, seed)
    speakers = [
        SyntheticSpeaker(f"id{FIRST_SPEAKER_NUMBER + i}", voices[i], channels[i], "dev" if i < size.num_train_speakers else "test")
        for i in range(num_speakers)
    ]
    per_speaker = {"dev": size.train_utterances, "test": size.test_utterances}
    counts = {split: per_speaker[split] * sum(s.split == split for s in speakers) for split in per_speaker}
    texts = {split: iter(lines) for split, lines in generate_splits(seed, counts, MIN_WORDS, MAX_WORDS).items()}
    utterances = [
        SpeakerUtterance(speaker, f"s{seed:04d}{k % size.sessions:02d}", k + 1, next(texts[speaker.split]))
        for speaker in speakers
        for k in range(per_speaker[speaker.split])
    ]
    test = [u for u in utterances if u.speaker.split == "test"]
    return SpeakerCorpusPlan(speakers, utterances, make_trials(test, size.targets_per_utterance, seed), seed)


def make_trials(utterances: Sequence[SpeakerUtterance], per_utterance: int, seed: int) -> List[Tuple[int, str, str]]:
    """(label, path 1, path 2) trials: for each utterance, up to `per_utterance` same-speaker partners (label 1)
    and as many different-speaker ones (label 0); no pair twice, no utterance with itself."""
    rng = random.Random(f"trials-{seed}")
    by_speaker: Dict[str, List[SpeakerUtterance]] = {}
    for utterance in utterances:
        by_speaker.setdefault(utterance.speaker.speaker_id, []).append(utterance)
    trials, seen = [], set()
    for utterance in utterances:
        same = [u for u in by_speaker[utterance.speaker.speaker_id] if u is not utterance]
        others = [u for u in utterances if u.speaker.speaker_id != utterance.speaker.speaker_id]
        count = min(per_utterance, len(same))
        for label, partners in ((1, rng.sample(same, count)), (0, rng.sample(others, count))):
            for partner in partners:
                pair = tuple(sorted((utterance.relative_path, partner.relative_path)))
                if pair not in seen:
                    seen.add(pair)
                    trials.append((label, utterance.relative_path, partner.relative_path))
    return trials


def render_utterance(utterance: SpeakerUtterance, seed: int) -> np.ndarray:
    """The utterance's audio: (S,) float32, MIN_SECONDS <= S / 16000 <= MAX_SECONDS.

    The voice speaks through the speaker's channel; the result is padded with silence to MIN_SECONDS (centred),
    cut to MAX_SECONDS, brought to a random RMS level and given a noise floor at a random SNR (both drawn per
    utterance)."""
    speaker = utterance.speaker
    samples = speak(speaker.voice, utterance.text, speaker.channel.sox_effects(), dither=False)
    min_samples, max_samples = int(MIN_SECONDS * SAMPLE_RATE), int(MAX_SECONDS * SAMPLE_RATE)
    if samples.shape[0] < min_samples:
        before = (min_samples - samples.shape[0]) // 2
        samples = np.pad(samples, (before, min_samples - samples.shape[0] - before))
    samples = samples[:max_samples]
    rng = random.Random(f"level-{seed}-{utterance.utterance_id}")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) or 1.0
    samples = samples * (10.0 ** (rng.uniform(*LEVEL_RANGE_DBFS) / 20.0) / rms)
    return add_noise_floor(samples.astype(np.float32), rng.uniform(*SNR_RANGE_DB), seed=f"{seed}-{utterance.utterance_id}")


def _write_utterance(utterance: SpeakerUtterance, corpus_dir: Path, seed: int) -> None:
    target = corpus_dir / "wav" / utterance.relative_path
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.partial.wav")
    soundfile.write(partial, render_utterance(utterance, seed), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    os.replace(partial, target)


def synthesize_speaker_corpus(plan: SpeakerCorpusPlan, corpus_dir: Path, num_jobs: int) -> None:
    """Write the corpus of `plan` into `corpus_dir` (built in `corpus_dir.partial`, resumable, then renamed)."""
    check_programs()
    if corpus_dir.exists():
        raise FileExistsError(f"{corpus_dir} exists already; remove it to synthesize a new corpus")
    partial_dir = corpus_dir.with_name(corpus_dir.name + ".partial")
    logging.info(f"Synthesizing {len(plan.utterances)} utterances of {len(plan.speakers)} speakers into {partial_dir}")
    with ThreadPoolExecutor(num_jobs) as pool:  # each job is an espeak-ng + sox subprocess
        jobs = pool.map(lambda u: _write_utterance(u, partial_dir, plan.seed), plan.utterances)
        for _ in tqdm(jobs, total=len(plan.utterances), desc="espeak-ng", unit="utt"):
            pass
    rows = [
        f"{s.speaker_id}\t{s.voice.espeak_voice}-p{s.voice.pitch}-s{s.voice.rate_wpm}\t{s.gender}\t{s.voice.accent}\t{s.split}\n"
        for s in plan.speakers
    ]
    (partial_dir / META_FILE).write_text(META_HEADER + "".join(rows))
    (partial_dir / TRIALS_FILE).write_text("".join(f"{label} {a} {b}\n" for label, a, b in plan.trials))
    (partial_dir / SYNTHETIC_MARKER).write_text(
        f"VoxCeleb1-format corpus synthesized with espeak-ng by icefall_lite: {len(plan.speakers)} speakers, "
        f"{len(plan.utterances)} utterances, {len(plan.trials)} trials, seed {plan.seed}.\n"
    )
    os.replace(partial_dir, corpus_dir)
    logging.info(f"Synthetic speaker corpus ready: {corpus_dir}")
