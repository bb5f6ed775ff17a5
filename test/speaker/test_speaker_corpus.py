"""The synthesized VoxCeleb-format corpus (icefall_lite/data/speaker_corpus.py) and its manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from lhotse import load_manifest

from icefall_lite.data.speaker_corpus import (
    MAX_SECONDS, MIN_SECONDS, SpeakerCorpusSize, plan_speaker_corpus, render_utterance,
)
from icefall_lite.data.speaker_manifests import SpeakerDataError, cuts_path, read_speakers, read_trials

TINY = SpeakerCorpusSize(num_train_speakers=4, train_utterances=6, num_test_speakers=3, test_utterances=4)


def test_plan_is_deterministic_and_seed_dependent() -> None:
    assert plan_speaker_corpus(TINY, seed=3) == plan_speaker_corpus(TINY, seed=3)
    assert plan_speaker_corpus(TINY, seed=3).utterances != plan_speaker_corpus(TINY, seed=4).utterances


def test_speakers_are_distinct_and_each_keeps_one_voice_and_channel() -> None:
    plan = plan_speaker_corpus(TINY, seed=0)
    assert [s.split for s in plan.speakers] == ["dev"] * 4 + ["test"] * 3
    assert len({(s.voice, s.channel) for s in plan.speakers}) == 7
    by_id = {s.speaker_id: s for s in plan.speakers}
    for utterance in plan.utterances:
        assert utterance.speaker == by_id[utterance.speaker.speaker_id]
    assert len({u.text for u in plan.utterances}) == len(plan.utterances)  # varied text
    assert len({u.utterance_id for u in plan.utterances}) == 4 * 6 + 3 * 4


def test_trials_are_well_formed() -> None:
    plan = plan_speaker_corpus(TINY, seed=0)
    split_of = {u.relative_path: u.speaker for u in plan.utterances}
    labels = set()
    pairs = set()
    for label, a, b in plan.trials:
        assert a != b
        assert split_of[a].split == split_of[b].split == "test"  # only unseen speakers
        assert label == int(split_of[a].speaker_id == split_of[b].speaker_id)
        pairs.add(frozenset((a, b)))
        labels.add(label)
    assert labels == {0, 1}
    assert len(pairs) == len(plan.trials)


def test_rendering_is_deterministic_with_bounded_duration() -> None:
    utterance = plan_speaker_corpus(TINY, seed=0).utterances[0]
    first, second = render_utterance(utterance, seed=0), render_utterance(utterance, seed=0)
    np.testing.assert_array_equal(first, second)
    assert MIN_SECONDS <= first.shape[0] / 16000 <= MAX_SECONDS


def test_prepared_corpus_matches_the_plan(speaker_dir: Path) -> None:
    corpus = speaker_dir / "download" / "VoxCeleb1"
    plan = plan_speaker_corpus(TINY, seed=0)
    for utterance in plan.utterances:
        info = soundfile.info(corpus / "wav" / utterance.relative_path)
        assert info.samplerate == 16000 and MIN_SECONDS <= info.duration <= MAX_SECONDS
    written = [line.split() for line in (corpus / "voxceleb1_test_v2.txt").read_text().splitlines()]
    assert written == [[str(label), a, b] for label, a, b in plan.trials]
    # held-out subsets: 1 valid + 1 iden utterance per training speaker, all speakers in train, none in test
    fbank = speaker_dir / "data" / "fbank"
    subsets = {name: load_manifest(cuts_path(fbank, name)) for name in ("train", "valid", "iden", "test")}
    speakers = read_speakers(fbank / "voxceleb_speakers.txt")
    assert speakers == sorted(s.speaker_id for s in plan.speakers if s.split == "dev")
    for name in ("valid", "iden"):
        assert sorted(c.supervisions[0].speaker for c in subsets[name]) == speakers
    assert len(subsets["train"]) == 4 * (6 - 2)
    assert not {c.supervisions[0].speaker for c in subsets["test"]} & set(speakers)
    ids = [c.id for subset in subsets.values() for c in subset]
    assert len(ids) == len(set(ids)) == 4 * 6 + 3 * 4
    assert all(c.features.num_features == 80 for c in subsets["test"])
    trials = read_trials(speaker_dir / "data" / "manifests" / "voxceleb_trials.txt", (c.id for c in subsets["test"]))
    assert len(trials) == len(plan.trials)


def test_trial_naming_an_unknown_utterance_is_an_error(tmp_path: Path) -> None:
    trials = tmp_path / "trials.txt"
    trials.write_text("1 id1/s/00001.wav id1/s/00002.wav\n0 id1/s/00001.wav id9/s/00007.wav\n")
    with pytest.raises(SpeakerDataError, match=r"trials.txt:2: .*'id9-s-00007'"):
        read_trials(trials, ["id1-s-00001", "id1-s-00002"])
    trials.write_text("yes id1/s/00001.wav\n")
    with pytest.raises(SpeakerDataError, match="expected '1|0 UTT1 UTT2'"):
        read_trials(trials, ["id1-s-00001"])
