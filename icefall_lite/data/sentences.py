"""English-like sentences for the synthetic corpus: simple grammar templates over Zipf-distributed common words.

A sentence is one or more clauses (subject, verb group, object or complement, optional place phrase, adverb,
relative clause, reported clause) joined by conjunctions until it reaches a length drawn uniformly from
``[min_words, max_words]``. Inside each word class, the word of frequency rank ``r`` is drawn with weight
``1 / r ** zipf_exponent``, so the few hundred most frequent words cover most running words, as in real text,
while more than 1,000 distinct words occur. Output is LibriSpeech transcript style: upper case words separated
by single spaces, no punctuation. Everything is deterministic for a given seed.

Speech rate is about 2.7 words per second, so 2-20 s of speech is roughly 5-50 words.

Example::

    >>> generator = SentenceGenerator(seed=0)
    >>> text = generator.sentence(min_words=5, max_words=20)
    >>> 5 <= len(text.split()) <= 20
    True
    >>> splits = generate_splits(seed=0, counts={"train": 100, "test": 10}, min_words=5, max_words=50)
    >>> set(splits["train"]) & set(splits["test"])
    set()
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import random
from typing import Callable, Dict, Generic, List, Sequence, Set, Tuple, TypeVar

from icefall_lite.data.english_words import (
    ADJECTIVES,
    ANIMALS,
    COMPANION_PREPOSITIONS,
    CONJUNCTIONS,
    DIRECTION_NAME_PREPOSITIONS,
    DIRECTION_PREPOSITIONS,
    FIRST_NAMES,
    FREQUENCY_ADVERBS,
    INDEFINITE_PLURAL_DETERMINERS,
    INDEFINITE_SINGULAR_DETERMINERS,
    INTENSIFIERS,
    INTRANSITIVE_VERBS,
    LOCATION_NAME_PREPOSITIONS,
    LOCATION_PREPOSITIONS,
    MANNER_ADVERBS,
    MONTHS,
    NUMBERS,
    OBJECT_PRONOUNS,
    ORDINALS,
    PARTS_OF_DAY,
    PEOPLE,
    PLACE_NAMES,
    PLACES,
    PLURAL_DETERMINERS,
    POSSESSIVES,
    SAYING_VERBS,
    SINGULAR_DETERMINERS,
    SUBJECT_PRONOUNS,
    THINGS,
    TIME_NOUNS,
    TIME_SPANS,
    TRANSITIVE_VERBS,
    WEEKDAYS,
    Noun,
    Verb,
)

T = TypeVar("T")
Words = List[str]

MAX_ATTEMPTS_PER_SENTENCE = 10_000
CLAUSE_ATTEMPTS = 10
MAX_REPEATS_IN_A_ROW = 1000
PLURAL_PROBABILITY = 0.3


class Tense(enum.Enum):
    """One tense per sentence, so that its clauses and time expression fit together."""

    PAST = "past"
    PRESENT = "present"
    FUTURE = "future"


class Person(enum.Enum):
    """Grammatical person and number, as far as verb agreement needs it."""

    FIRST_SINGULAR = "I"
    THIRD_SINGULAR = "he, she, it"
    OTHER = "you, we, they"


TENSE_WEIGHTS = {Tense.PAST: 0.5, Tense.PRESENT: 0.35, Tense.FUTURE: 0.15}
MODALS = {
    Tense.PAST: ["DIDN'T", "COULD", "WOULD", "COULDN'T", "DID NOT", "WOULDN'T"],
    Tense.PRESENT: ["CAN", "MUST", "SHOULD", "CAN'T", "MAY", "MIGHT", "SHOULDN'T", "CANNOT"],
    Tense.FUTURE: ["WILL", "WON'T", "MIGHT", "WILL NOT", "WILL SOON", "WILL NEVER"],
}
PRESENT_NEGATIONS = {Person.THIRD_SINGULAR: "DOESN'T", Person.FIRST_SINGULAR: "DON'T", Person.OTHER: "DON'T"}
COPULAS = {
    (Tense.PRESENT, Person.FIRST_SINGULAR): ["AM", "AM NOT"],
    (Tense.PRESENT, Person.THIRD_SINGULAR): ["IS", "ISN'T"],
    (Tense.PRESENT, Person.OTHER): ["ARE", "AREN'T"],
    (Tense.PAST, Person.FIRST_SINGULAR): ["WAS", "WASN'T"],
    (Tense.PAST, Person.THIRD_SINGULAR): ["WAS", "WASN'T"],
    (Tense.PAST, Person.OTHER): ["WERE", "WEREN'T"],
    **{(Tense.FUTURE, person): ["WILL BE", "WON'T BE"] for person in Person},
}
TIME_EXPRESSIONS = {
    Tense.PAST: [
        "YESTERDAY", "LAST {time}", "ONE {part_of_day}", "{number} {time_spans} AGO", "LAST {weekday}",
        "THAT {time}", "LONG AGO", "IN {month}", "ON {weekday}", "EARLIER",
    ],
    Tense.PRESENT: [
        "EVERY {time}", "NOW", "TODAY", "IN THE {part_of_day}", "ON {weekdays}", "AT NIGHT", "IN {month}",
    ],
    Tense.FUTURE: [
        "TOMORROW", "NEXT {time}", "SOON", "ON {weekday}", "ONE DAY", "NEXT {weekday}", "IN {month}", "LATER",
    ],
}
TIME_SLOT_FILLERS = {
    "time": TIME_NOUNS,
    "part_of_day": PARTS_OF_DAY,
    "number": NUMBERS,
    "month": MONTHS,
    "time_spans": [span.plural for span in TIME_SPANS],
    "weekday": [day.singular for day in WEEKDAYS],
    "weekdays": [day.plural for day in WEEKDAYS],
}
RELATIVE_PRONOUN_FOR_PEOPLE = "WHO"
RELATIVE_PRONOUN_FOR_THINGS = "THAT"
COMPLEMENTIZER = "THAT"
EXPLETIVE_THERE = "THERE"
VOWEL_LETTERS = tuple("AEIOU")
TEMPLATE_WORDS = [
    RELATIVE_PRONOUN_FOR_PEOPLE, RELATIVE_PRONOUN_FOR_THINGS, COMPLEMENTIZER, EXPLETIVE_THERE, "AN",
    *PRESENT_NEGATIONS.values(),
]
# Every list `SentenceGenerator._phrase` may draw from; `SentenceGenerator.vocabulary` reads the same lists.
PHRASE_LISTS: List[Sequence[str]] = [
    ADJECTIVES, COMPANION_PREPOSITIONS, CONJUNCTIONS, DIRECTION_NAME_PREPOSITIONS, DIRECTION_PREPOSITIONS,
    FIRST_NAMES, FREQUENCY_ADVERBS, INDEFINITE_PLURAL_DETERMINERS, INDEFINITE_SINGULAR_DETERMINERS, INTENSIFIERS,
    LOCATION_NAME_PREPOSITIONS, LOCATION_PREPOSITIONS, MANNER_ADVERBS, OBJECT_PRONOUNS, ORDINALS, PLACE_NAMES,
    PLURAL_DETERMINERS, POSSESSIVES, SINGULAR_DETERMINERS, SUBJECT_PRONOUNS,
    *MODALS.values(), *COPULAS.values(), *TIME_EXPRESSIONS.values(), *TIME_SLOT_FILLERS.values(),
]


class ZipfSampler(Generic[T]):
    """Draws items with probability proportional to ``1 / rank ** exponent``, the first item having rank 1.

    >>> sampler = ZipfSampler(["THE", "A", "ONE"], exponent=1.0)
    >>> sampler.draw(random.Random(0)) in {"THE", "A", "ONE"}
    True
    """

    def __init__(self, items: Sequence[T], exponent: float) -> None:
        if not items:
            raise ValueError("ZipfSampler needs at least one item, got an empty sequence")
        self.items = list(items)
        self._cumulative_weights = list(itertools.accumulate(rank**-exponent for rank in range(1, len(items) + 1)))

    def draw(self, rng: random.Random) -> T:
        return rng.choices(self.items, cum_weights=self._cumulative_weights)[0]


class SentenceGenerator:
    """Random English-like sentences, deterministic for a seed.

    Args:
        seed: seed of the generator's own random number generator.
        zipf_exponent: ``s`` in the word weights ``1 / rank ** s`` of each word class; 0 makes them uniform.

    Example::

        >>> generator = SentenceGenerator(seed=1)
        >>> words = generator.sentence(min_words=8, max_words=12).split()
        >>> 8 <= len(words) <= 12 and set(words) <= set(generator.vocabulary())
        True
    """

    def __init__(self, seed: int, zipf_exponent: float = 1.0) -> None:
        if not zipf_exponent >= 0:
            raise ValueError(f"zipf_exponent must be >= 0, got {zipf_exponent}")
        self._rng = random.Random(seed)
        self._zipf_exponent = zipf_exponent
        self._people = self._sampler(PEOPLE)
        self._animals = self._sampler(ANIMALS)
        self._things = self._sampler(THINGS)
        self._places = self._sampler(PLACES)
        self._transitive_verbs = self._sampler(TRANSITIVE_VERBS)
        self._intransitive_verbs = self._sampler(INTRANSITIVE_VERBS)
        self._saying_verbs = self._sampler(SAYING_VERBS)
        # Keyed by id(): the phrase lists are module-level constants, alive as long as the module.
        self._phrase_samplers = {id(phrases): self._sampler(phrases) for phrases in PHRASE_LISTS}

    def sentence(self, min_words: int, max_words: int) -> str:
        """One sentence of ``min_words`` to ``max_words`` upper case words separated by single spaces.

        Its length is close to a target drawn uniformly from ``[min_words, max_words]``: clauses are added while
        they bring the length nearer to the target.
        """
        if min_words < 2:
            raise ValueError(f"min_words must be >= 2 (the shortest clause), got {min_words}")
        if max_words < min_words:
            raise ValueError(f"max_words must be >= min_words={min_words}, got {max_words}")
        target_words = self._rng.randint(min_words, max_words)
        for _ in range(MAX_ATTEMPTS_PER_SENTENCE):
            words = self._clauses_up_to(target_words, max_words)
            if min_words <= len(words) <= max_words:
                return " ".join(words)
        raise RuntimeError(f"no sentence of {min_words} to {max_words} words in {MAX_ATTEMPTS_PER_SENTENCE} attempts")

    def vocabulary(self) -> List[str]:
        """Every word `sentence` can emit, sorted."""
        nouns = [*PEOPLE, *ANIMALS, *THINGS, *PLACES]
        verbs = [*TRANSITIVE_VERBS, *INTRANSITIVE_VERBS, *SAYING_VERBS]
        phrase_words = {word for phrases in PHRASE_LISTS for phrase in phrases for word in phrase.split()}
        return sorted(
            {form for noun in nouns for form in (noun.singular, noun.plural)}
            | {form for verb in verbs for form in (verb.base, verb.third_person, verb.past)}
            | {word for word in phrase_words if not word.startswith("{")}
            | set(TEMPLATE_WORDS)
        )

    def _clauses_up_to(self, target_words: int, max_words: int) -> Words:
        tense = self._rng.choices(list(TENSE_WEIGHTS), weights=list(TENSE_WEIGHTS.values()))[0]
        words = self._first_clause(tense)
        for _ in range(CLAUSE_ATTEMPTS):
            if len(words) >= target_words:
                break
            more = self._phrase(CONJUNCTIONS) + self._clause(tense, allow_embedding=True)
            overshoot = len(words) + len(more) - target_words
            if len(words) + len(more) <= max_words and overshoot <= target_words - len(words):
                words += more
        return _with_article_agreement(words)

    def _first_clause(self, tense: Tense) -> Words:
        clause = self._clause(tense, allow_embedding=True)
        if self._rng.random() < 0.15:
            return self._time_expression(tense) + clause
        if self._rng.random() < 0.1:
            return clause + self._time_expression(tense)
        return clause

    def _clause(self, tense: Tense, allow_embedding: bool) -> Words:
        kinds: List[Tuple[Callable[[Tense], Words], float]] = [
            (self._transitive_clause, 0.38),
            (self._intransitive_clause, 0.2),
            (self._adjective_clause, 0.12),
            (self._location_clause, 0.06),
            (self._existential_clause, 0.06),
        ]
        if allow_embedding:
            kinds.append((self._reported_clause, 0.08))
        make_clause = self._rng.choices([kind for kind, _ in kinds], weights=[weight for _, weight in kinds])[0]
        return make_clause(tense)

    def _transitive_clause(self, tense: Tense) -> Words:
        subject, person = self._subject(tense)
        words = subject + self._verb_group(self._transitive_verbs.draw(self._rng), tense, person)
        words += self._object(tense)
        roll = self._rng.random()
        if roll < 0.35:
            words += self._place_phrase(allow_direction=True)
        elif roll < 0.45:
            words += self._companion_phrase()
        return words + self._maybe(0.2, self._manner_adverb)

    def _intransitive_clause(self, tense: Tense) -> Words:
        subject, person = self._subject(tense)
        words = subject + self._verb_group(self._intransitive_verbs.draw(self._rng), tense, person)
        place = self._maybe(0.5, lambda: self._place_phrase(allow_direction=True))
        return words + place + self._maybe(0.3, self._manner_adverb)

    def _adjective_clause(self, tense: Tense) -> Words:
        subject, person = self._subject(tense)
        intensifier = self._maybe(0.4, lambda: self._phrase(INTENSIFIERS))
        return subject + self._copula(tense, person) + intensifier + self._phrase(ADJECTIVES)

    def _location_clause(self, tense: Tense) -> Words:
        subject, person = self._subject(tense)
        return subject + self._copula(tense, person) + self._place_phrase(allow_direction=False)

    def _existential_clause(self, tense: Tense) -> Words:
        nouns = self._rng.choice([self._things, self._animals, self._people])
        noun_phrase, person = self._noun_phrase(nouns, tense, allow_relative=False, indefinite=True)
        return [EXPLETIVE_THERE] + self._copula(tense, person) + noun_phrase + self._place_phrase(allow_direction=False)

    def _reported_clause(self, tense: Tense) -> Words:
        subject, person = self._subject(tense)
        words = subject + self._verb_group(self._saying_verbs.draw(self._rng), tense, person)
        return words + self._maybe(0.5, lambda: [COMPLEMENTIZER]) + self._clause(tense, allow_embedding=False)

    def _subject(self, tense: Tense) -> Tuple[Words, Person]:
        roll = self._rng.random()
        if roll < 0.3:
            pronoun = self._phrase(SUBJECT_PRONOUNS)
            return pronoun, _pronoun_person(pronoun[0])
        if roll < 0.45:
            return self._phrase(FIRST_NAMES), Person.THIRD_SINGULAR
        nouns = self._people if roll < 0.8 else self._animals
        return self._noun_phrase(nouns, tense, allow_relative=True)

    def _object(self, tense: Tense) -> Words:
        roll = self._rng.random()
        if roll < 0.1:
            return self._phrase(OBJECT_PRONOUNS)
        if roll < 0.2:
            return self._phrase(FIRST_NAMES)
        nouns = self._things if roll < 0.75 else self._people if roll < 0.9 else self._animals
        return self._noun_phrase(nouns, tense, allow_relative=True)[0]

    def _noun_phrase(
        self, nouns: ZipfSampler[Noun], tense: Tense, allow_relative: bool, indefinite: bool = False
    ) -> Tuple[Words, Person]:
        noun = nouns.draw(self._rng)
        plural = self._rng.random() < PLURAL_PROBABILITY
        adjective = self._maybe(0.35, lambda: self._phrase(ADJECTIVES))
        words = self._determiner(plural, indefinite) + adjective + [noun.plural if plural else noun.singular]
        person = Person.OTHER if plural else Person.THIRD_SINGULAR
        if allow_relative and self._rng.random() < 0.08:
            words += self._relative_clause(about_things=nouns is self._things, tense=tense, person=person)
        return words, person

    def _determiner(self, plural: bool, indefinite: bool) -> Words:
        """``THE``, ``MY``, ``A FEW``, ``SEVEN``...; with ``indefinite`` only those that fit after ``THERE IS``."""
        if indefinite:
            return self._phrase(INDEFINITE_PLURAL_DETERMINERS if plural else INDEFINITE_SINGULAR_DETERMINERS)
        roll = self._rng.random()
        if roll < 0.25:
            return self._phrase(POSSESSIVES)
        if plural and roll < 0.45:
            return self._phrase(NUMBERS)
        determiner = self._phrase(PLURAL_DETERMINERS if plural else SINGULAR_DETERMINERS)
        if determiner == ["THE"] and self._rng.random() < 0.05:
            determiner += self._phrase(ORDINALS)
        return determiner

    def _relative_clause(self, about_things: bool, tense: Tense, person: Person) -> Words:
        """``THAT`` + subject + verb after things, ``WHO`` + verb phrase agreeing with ``person`` otherwise."""
        if about_things:
            subject, subject_person = self._subject_without_relative(tense)
            verb = self._transitive_verbs.draw(self._rng)
            return [RELATIVE_PRONOUN_FOR_THINGS] + subject + self._verb_group(verb, tense, subject_person)
        verb = self._intransitive_verbs.draw(self._rng)
        place = self._maybe(0.5, lambda: self._place_phrase(allow_direction=True))
        return [RELATIVE_PRONOUN_FOR_PEOPLE] + self._verb_group(verb, tense, person) + place

    def _subject_without_relative(self, tense: Tense) -> Tuple[Words, Person]:
        if self._rng.random() < 0.5:
            pronoun = self._phrase(SUBJECT_PRONOUNS)
            return pronoun, _pronoun_person(pronoun[0])
        return self._noun_phrase(self._people, tense, allow_relative=False)

    def _verb_group(self, verb: Verb, tense: Tense, person: Person) -> Words:
        roll = self._rng.random()
        if tense is Tense.FUTURE or roll < 0.15:
            return self._phrase(MODALS[tense]) + [verb.base]
        if tense is Tense.PRESENT and roll < 0.25:
            return [PRESENT_NEGATIONS[person], verb.base]
        frequency = self._phrase(FREQUENCY_ADVERBS) if roll > 0.88 else []
        if tense is Tense.PAST:
            return frequency + [verb.past]
        return frequency + [verb.third_person if person is Person.THIRD_SINGULAR else verb.base]

    def _copula(self, tense: Tense, person: Person) -> Words:
        return self._phrase(COPULAS[tense, person])

    def _place_phrase(self, allow_direction: bool) -> Words:
        """``IN THE GARDEN``, ``NEAR LONDON``, or with ``allow_direction`` also ``TO THE MARKET``."""
        direction = allow_direction and self._rng.random() < 0.3
        if self._rng.random() < 0.2:
            prepositions = DIRECTION_NAME_PREPOSITIONS if direction else LOCATION_NAME_PREPOSITIONS
            return self._phrase(prepositions) + self._phrase(PLACE_NAMES)
        place, _ = self._noun_phrase(self._places, Tense.PRESENT, allow_relative=False)
        return self._phrase(DIRECTION_PREPOSITIONS if direction else LOCATION_PREPOSITIONS) + place

    def _companion_phrase(self) -> Words:
        if self._rng.random() < 0.4:
            companion = self._phrase(FIRST_NAMES)
        else:
            companion, _ = self._noun_phrase(self._people, Tense.PRESENT, allow_relative=False)
        return self._phrase(COMPANION_PREPOSITIONS) + companion

    def _manner_adverb(self) -> Words:
        return self._phrase(MANNER_ADVERBS)

    def _time_expression(self, tense: Tense) -> Words:
        """E.g. ``LAST {weekday}`` -> ``LAST FRIDAY``: slots in braces are filled from `TIME_SLOT_FILLERS`."""
        template = self._phrase(TIME_EXPRESSIONS[tense])
        return [self._phrase(TIME_SLOT_FILLERS[word[1:-1]])[0] if word.startswith("{") else word for word in template]

    def _maybe(self, probability: float, make_words: Callable[[], Words]) -> Words:
        return make_words() if self._rng.random() < probability else []

    def _phrase(self, phrases: Sequence[str]) -> Words:
        """The words of one Zipf-drawn entry of ``phrases`` (one of `PHRASE_LISTS`), e.g. ``["A", "FEW"]``."""
        return self._phrase_samplers[id(phrases)].draw(self._rng).split()

    def _sampler(self, items: Sequence[T]) -> ZipfSampler[T]:
        return ZipfSampler(items, self._zipf_exponent)


def generate_splits(
    seed: int, counts: Dict[str, int], min_words: int, max_words: int, zipf_exponent: float = 1.0
) -> Dict[str, List[str]]:
    """Disjoint lists of distinct sentences, one per split, all from the same distribution.

    Each split draws from its own generator, seeded by ``seed`` and the split's name, so its sentences do not
    depend on the other splits' sizes; splits are filled in the order of ``counts`` and skip any sentence an
    earlier split (or the split itself) already holds.

    Args:
        seed: base seed; the same arguments always give the same splits.
        counts: number of sentences per split name, e.g. ``{"train": 5000, "test": 200}``.
        min_words, max_words: sentence length bounds in words, as in `SentenceGenerator.sentence`.
        zipf_exponent: as in `SentenceGenerator`.

    Example::

        >>> splits = generate_splits(seed=3, counts={"train": 20, "dev": 5}, min_words=4, max_words=30)
        >>> [len(splits[name]) for name in ("train", "dev")]
        [20, 5]
    """
    taken: Set[str] = set()
    splits: Dict[str, List[str]] = {}
    for name, count in counts.items():
        if count < 0:
            raise ValueError(f"counts[{name!r}] must be >= 0, got {count}")
        generator = SentenceGenerator(_split_seed(seed, name), zipf_exponent)
        splits[name] = _new_sentences(generator, count, taken, min_words, max_words, name)
    return splits


def _new_sentences(
    generator: SentenceGenerator, count: int, taken: Set[str], min_words: int, max_words: int, split_name: str
) -> List[str]:
    """``count`` sentences not in ``taken``, which gains them."""
    sentences: List[str] = []
    repeats_in_a_row = 0
    while len(sentences) < count and repeats_in_a_row < MAX_REPEATS_IN_A_ROW:
        text = generator.sentence(min_words, max_words)
        if text in taken:
            repeats_in_a_row += 1
        else:
            repeats_in_a_row = 0
            taken.add(text)
            sentences.append(text)
    if len(sentences) == count:
        return sentences
    raise ValueError(
        f"counts[{split_name!r}]={count}: found only {len(sentences)} new sentences of {min_words} to "
        f"{max_words} words; ask for fewer sentences or allow longer ones"
    )


def _split_seed(seed: int, split_name: str) -> int:
    digest = hashlib.sha256(f"{seed}/{split_name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _pronoun_person(pronoun: str) -> Person:
    if pronoun == "I":
        return Person.FIRST_SINGULAR
    return Person.THIRD_SINGULAR if pronoun in ("HE", "SHE", "IT") else Person.OTHER


def _with_article_agreement(words: Words) -> Words:
    """``A`` becomes ``AN`` before a vowel letter (the word lists avoid words like UNIT and HOUR)."""
    next_words = words[1:] + [""]
    return [
        "AN" if word == "A" and next_word.startswith(VOWEL_LETTERS) else word
        for word, next_word in zip(words, next_words)
    ]

