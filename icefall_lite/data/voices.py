"""espeak-ng voices that act as the speakers of the synthetic corpus.

A speaker is an accent, a voice variant, a pitch and a speaking rate. Training and the "-clean" dev/test
subsets draw from one pool of accents and variants (new pitch/rate combinations, so new speakers); the "-other"
subsets draw from accents and variants never heard in training. The speaker recognition corpus adds a fixed
``Channel`` per speaker (a band-pass and a peaking EQ, applied with sox), as a microphone and room would.

Example::

    >>> speakers = make_speakers(SpeakerPool.SEEN, count=3, seed=0)
    >>> speakers[0].espeak_voice   # e.g. "en-gb-x-rp+m3"
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import List

SEEN_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan")
UNSEEN_ACCENTS = ("en-029", "en-gb-x-gbcwmd")

SEEN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4", "klatt", "klatt2", "klatt3",
    "adam", "Alex", "Andy", "aunty", "david", "ed", "edward", "john", "linda", "max", "michel",
    "paul", "pedro", "robert", "steph", "victor", "zac", "Lee", "norbert",
)
UNSEEN_VARIANTS = ("m7", "f5", "klatt4", "belinda", "benjamin", "quincy", "rob", "travis", "Annie")

PITCH_RANGE = (25, 75)
RATE_RANGE_WPM = (135, 185)
HIGHPASS_RANGE_HZ = (50.0, 400.0)
LOWPASS_RANGE_HZ = (3000.0, 7500.0)
EQ_CENTRE_RANGE_HZ = (300.0, 3000.0)
EQ_GAIN_RANGE_DB = (-10.0, 10.0)


class SpeakerPool(enum.Enum):
    """Which accents and variants a subset's speakers come from."""

    SEEN = "seen"
    UNSEEN = "unseen"


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: espeak-ng voice name plus pitch (0-99) and rate (words per minute)."""

    accent: str
    variant: str
    pitch: int
    rate_wpm: int

    @property
    def espeak_voice(self) -> str:
        return f"{self.accent}+{self.variant}"

    def espeak_args(self) -> List[str]:
        """The espeak-ng options that select this speaker."""
        return ["-v", self.espeak_voice, "-p", str(self.pitch), "-s", str(self.rate_wpm)]


def make_speakers(pool: SpeakerPool, count: int, seed: int) -> List[Speaker]:
    """Draw `count` distinct speakers from `pool`, deterministically for a given seed."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    accents, variants = (
        (SEEN_ACCENTS, SEEN_VARIANTS) if pool is SpeakerPool.SEEN else (UNSEEN_ACCENTS, UNSEEN_VARIANTS)
    )
    rng = random.Random(f"{pool.value}-{seed}")
    speakers: List[Speaker] = []
    seen = set()
    while len(speakers) < count:
        speaker = Speaker(
            accent=rng.choice(accents),
            variant=rng.choice(variants),
            pitch=rng.randint(*PITCH_RANGE),
            rate_wpm=rng.randint(*RATE_RANGE_WPM),
        )
        if speaker not in seen:
            seen.add(speaker)
            speakers.append(speaker)
    return speakers


@dataclass(frozen=True)
class Channel:
    """A fixed channel colouring: high-pass and low-pass corners (Hz) and one peaking EQ band (Hz, dB)."""

    highpass_hz: float
    lowpass_hz: float
    eq_centre_hz: float
    eq_gain_db: float

    def sox_effects(self) -> List[str]:
        """The sox effect chain that applies this channel (after 12 dB of headroom, so a boost cannot clip)."""
        return [
            "gain", "-12",
            "highpass", f"{self.highpass_hz:.0f}", "lowpass", f"{self.lowpass_hz:.0f}",
            "equalizer", f"{self.eq_centre_hz:.0f}", "1q", f"{self.eq_gain_db:.1f}",
        ]


def make_channels(count: int, seed: int) -> List[Channel]:
    """`count` channel colourings, deterministically for a given seed."""
    rng = random.Random(f"channel-{seed}")
    return [
        Channel(
            highpass_hz=rng.uniform(*HIGHPASS_RANGE_HZ), lowpass_hz=rng.uniform(*LOWPASS_RANGE_HZ),
            eq_centre_hz=rng.uniform(*EQ_CENTRE_RANGE_HZ), eq_gain_db=rng.uniform(*EQ_GAIN_RANGE_DB),
        )
        for _ in range(count)
    ]
