"""A small synthesized noise set standing in for MUSAN, so the noise-mixing path is always exercised.

Writes 16 kHz mono wav files under ``out_dir/{noise,music}/`` and lhotse recording manifests named like
``lhotse prepare musan`` names them (``musan_recordings_noise.jsonl.gz``, ``musan_recordings_music.jsonl.gz``).

Example::

    >>> write_noise_corpus(Path("download/synthetic_noise"), Path("data/manifests"), seed=0)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict

import numpy as np
import soundfile as sf
from lhotse import Recording, RecordingSet

SAMPLE_RATE = 16000
SECONDS_PER_FILE = 30.0
FILES_PER_KIND = 4


def _colored_noise(rng: np.random.Generator, num_samples: int, exponent: float) -> np.ndarray:
    """Noise whose power spectrum falls as 1/f^exponent (0 white, 1 pink, 2 brown). Shape (num_samples,)."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.maximum(np.fft.rfftfreq(num_samples), 1.0 / num_samples)
    return np.fft.irfft(spectrum / freqs ** (exponent / 2), n=num_samples)


def _hum(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """Mains hum: a 50 or 60 Hz tone with decaying harmonics, plus a little white noise."""
    t = np.arange(num_samples) / SAMPLE_RATE
    base = rng.choice([50.0, 60.0])
    tone = sum(np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
    return tone + 0.05 * rng.standard_normal(num_samples)


def _music(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """A sequence of random three-note chords with a decaying envelope, one chord every 0.5-1.5 s."""
    out = np.zeros(num_samples)
    start = 0
    while start < num_samples:
        length = min(int(rng.uniform(0.5, 1.5) * SAMPLE_RATE), num_samples - start)
        t = np.arange(length) / SAMPLE_RATE
        root = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        chord = sum(np.sin(2 * np.pi * root * 2 ** (step / 12) * t) for step in (0, 4, 7))
        out[start : start + length] = chord * np.exp(-3.0 * t)
        start += length
    return out


GENERATORS: Dict[str, Dict[str, Callable[[np.random.Generator, int], np.ndarray]]] = {
    "noise": {
        "white": lambda rng, n: _colored_noise(rng, n, 0.0),
        "pink": lambda rng, n: _colored_noise(rng, n, 1.0),
        "brown": lambda rng, n: _colored_noise(rng, n, 2.0),
        "hum": _hum,
    },
    "music": {"chords": _music},
}


def write_noise_corpus(out_dir: Path, manifest_dir: Path, seed: int) -> None:
    """Write the noise wav files and their MUSAN-style recording manifests."""
    rng = np.random.default_rng(seed)
    num_samples = int(SECONDS_PER_FILE * SAMPLE_RATE)
    manifest_dir.mkdir(parents=True, exist_ok=True)
    for kind, generators in GENERATORS.items():
        recordings = []
        for name, generate in generators.items():
            for index in range(FILES_PER_KIND):
                signal = generate(rng, num_samples)
                signal = 0.5 * signal / np.abs(signal).max()
                path = out_dir / kind / f"{kind}-{name}-{index:02d}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, signal.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
                recordings.append(Recording.from_file(path))
        RecordingSet.from_recordings(recordings).to_file(manifest_dir / f"musan_recordings_{kind}.jsonl.gz")
