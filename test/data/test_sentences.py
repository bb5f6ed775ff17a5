"""Tests for icefall_lite/data/sentences.py: English-like, Zipf-distributed, disjoint, deterministic sentences."""

import random
import re
from collections import Counter
from typing import List

import numpy as np
import pytest

from icefall_lite.data.english_words import add_ed_suffix, add_s_suffix, parse_nouns, parse_verbs, Verb
from icefall_lite.data.sentences import SentenceGenerator, ZipfSampler, generate_splits

MIN_WORDS, MAX_WORDS = 5, 50
SAMPLE_SIZE = 2000


@pytest.fixture(scope="module")
def sample() -> List[str]:
    generator = SentenceGenerator(seed=0)
    return [generator.sentence(MIN_WORDS, MAX_WORDS) for _ in range(SAMPLE_SIZE)]


@pytest.fixture(scope="module")
def word_counts(sample: List[str]) -> Counter:
    return Counter(word for text in sample for word in text.split())


def test_same_seed_same_sentences_other_seed_other_sentences() -> None:
    def draw(seed: int) -> List[str]:
        generator = SentenceGenerator(seed)
        return [generator.sentence(MIN_WORDS, MAX_WORDS) for _ in range(20)]

    assert draw(7) == draw(7)
    assert len(set(draw(7)) & set(draw(8))) == 0


@pytest.mark.parametrize("min_words,max_words", [(2, 2), (5, 6), (6, 48), (40, 50)])
def test_length_within_bounds_and_spans_them(min_words: int, max_words: int) -> None:
    generator = SentenceGenerator(seed=1)
    lengths = [len(generator.sentence(min_words, max_words).split()) for _ in range(200)]
    assert min(lengths) == min_words
    assert max(lengths) == max_words


def test_only_upper_case_words_with_single_spaces(sample: List[str]) -> None:
    transcript_style = re.compile(r"[A-Z']+( [A-Z']+)*")
    assert all(transcript_style.fullmatch(text) for text in sample)


def test_vocabulary_is_large_and_mostly_used(word_counts: Counter) -> None:
    vocabulary = set(SentenceGenerator(seed=0).vocabulary())
    assert len(vocabulary) >= 1000
    assert set(word_counts) <= vocabulary
    assert len(word_counts) >= 0.9 * len(vocabulary)


def test_word_frequencies_follow_zipf_law(word_counts: Counter) -> None:
    frequencies = np.array(sorted(word_counts.values(), reverse=True), dtype=float)
    assert frequencies[:300].sum() / frequencies.sum() > 0.7
    ranks = np.arange(1, 301)
    slope = np.polyfit(np.log(ranks), np.log(frequencies[:300]), deg=1)[0]
    assert -1.4 < slope < -0.6


def test_zipf_exponent_zero_spreads_words_more_evenly(word_counts: Counter) -> None:
    generator = SentenceGenerator(seed=0, zipf_exponent=0.0)
    flat_counts = Counter(word for _ in range(SAMPLE_SIZE) for word in generator.sentence(MIN_WORDS, MAX_WORDS).split())

    def top_300_share(counts: Counter) -> float:
        return sum(count for _, count in counts.most_common(300)) / sum(counts.values())

    assert top_300_share(flat_counts) < top_300_share(word_counts) - 0.1


def test_verbs_agree_with_their_subjects(sample: List[str]) -> None:
    disagreements = (
        "I IS|I ARE|HE ARE|SHE ARE|SHE AM|THEY IS|WE WAS|YOU WAS|HE WERE|SHE WERE|HE DON'T|SHE DON'T|THEY DOESN'T|"
        "I DOESN'T|I HAS|HE HAVE|SHE HAVE|THEY HAS"
    )
    text = " ".join(sample)
    for pair in disagreements.split("|"):
        assert f" {pair} " not in f" {text} ", pair


def test_indefinite_article_matches_next_word(sample: List[str]) -> None:
    bigrams = [pair for text in sample for pair in zip(text.split(), text.split()[1:])]
    assert all(following[0] not in "AEIOU" for article, following in bigrams if article == "A")
    an_followers = [following for article, following in bigrams if article == "AN"]
    assert an_followers and all(following[0] in "AEIOU" for following in an_followers)


def test_inflection_rules() -> None:
    assert [add_s_suffix(word) for word in ("BOX", "CHURCH", "CITY", "DAY", "DOG")] == [
        "BOXES", "CHURCHES", "CITIES", "DAYS", "DOGS"
    ]
    assert [add_ed_suffix(word) for word in ("LOVE", "CARRY", "PLAY", "WALK")] == [
        "LOVED", "CARRIED", "PLAYED", "WALKED"
    ]
    assert parse_nouns("MOUSE:MICE")[0].plural == "MICE"
    assert parse_verbs("HAVE:HAD:HAS")[0] == Verb("HAVE", "HAS", "HAD")


def test_zipf_sampler_prefers_low_ranks() -> None:
    sampler = ZipfSampler(["FIRST", "SECOND", "THIRD", "FOURTH"], exponent=1.0)
    rng = random.Random(0)
    counts = Counter(sampler.draw(rng) for _ in range(4000))
    assert counts["FIRST"] > counts["SECOND"] > counts["FOURTH"]
    assert counts["FIRST"] / counts["FOURTH"] == pytest.approx(4.0, rel=0.3)


def test_splits_are_disjoint_distinct_and_deterministic() -> None:
    counts = {"train": 300, "dev": 50, "test": 50}
    splits = generate_splits(seed=0, counts=counts, min_words=2, max_words=3)
    assert {name: len(texts) for name, texts in splits.items()} == counts
    all_sentences = [text for texts in splits.values() for text in texts]
    assert len(set(all_sentences)) == len(all_sentences)
    assert generate_splits(seed=0, counts=counts, min_words=2, max_words=3) == splits
    assert generate_splits(seed=1, counts=counts, min_words=2, max_words=3)["test"] != splits["test"]


def test_a_split_does_not_depend_on_the_size_of_the_others() -> None:
    small = generate_splits(seed=0, counts={"train": 50, "test": 20}, min_words=10, max_words=40)
    large = generate_splits(seed=0, counts={"train": 300, "test": 20}, min_words=10, max_words=40)
    assert small["test"] == large["test"]
    assert large["train"][:50] == small["train"]


def test_test_words_are_seen_in_train() -> None:
    splits = generate_splits(seed=0, counts={"train": 2000, "test": 200}, min_words=5, max_words=50)
    train_words = {word for text in splits["train"] for word in text.split()}
    test_tokens = [word for text in splits["test"] for word in text.split()]
    seen = sum(word in train_words for word in test_tokens)
    assert seen / len(test_tokens) > 0.98


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"min_words": 1, "max_words": 5}, "min_words"),
        ({"min_words": 6, "max_words": 5}, "max_words"),
    ],
)
def test_bad_lengths_are_named(kwargs: dict, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        SentenceGenerator(seed=0).sentence(**kwargs)


def test_bad_exponent_and_counts_are_named() -> None:
    with pytest.raises(ValueError, match="zipf_exponent"):
        SentenceGenerator(seed=0, zipf_exponent=-1.0)
    with pytest.raises(ValueError, match=r"counts\['dev'\]"):
        generate_splits(seed=0, counts={"train": 1, "dev": -1}, min_words=5, max_words=10)
