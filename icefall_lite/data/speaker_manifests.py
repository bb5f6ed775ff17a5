"""Manifests, speaker lists, trial lists and fbank of the VoxCeleb speaker recognition recipe.

Subsets (``data/fbank/voxceleb_cuts_SUBSET.jsonl.gz``):

| subset | what |
|---|---|
| train | utterances of the training ("dev") speakers, minus the held-out ones below |
| valid | ``valid_per_speaker`` held-out utterances of each training speaker (validation loss) |
| iden | ``iden_per_speaker`` held-out utterances of each training speaker (identification accuracy) |
| test | utterances of the speakers never used in training (verification trials) |

``voxceleb_speakers.txt`` lists the training speakers, line i = class i. The trial list
(``data/manifests/voxceleb_trials.txt``) is VoxCeleb's: ``1|0 SPK/SESSION/NNNNN.wav SPK/SESSION/NNNNN.wav``,
naming utterances by lhotse's recording ids ``SPK-SESSION-NNNNN``.

Example::

    >>> prepare_voxceleb_manifests(Path("download/VoxCeleb1"), None, Path("data/manifests"), num_jobs=2)
    >>> compute_voxceleb_fbank(Path("data/manifests"), Path("data/fbank"), num_jobs=2)
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet, load_manifest
from lhotse.qa import validate_recordings_and_supervisions

from icefall_lite.data.features import store_features
from icefall_lite.data.speaker_corpus import META_FILE, TRIALS_FILE
from icefall_lite.data.synthetic_corpus import SYNTHETIC_MARKER

SUBSETS = ("train", "valid", "iden", "test")
TRIALS_MANIFEST = "voxceleb_trials.txt"
SPEAKERS_FILE = "voxceleb_speakers.txt"
LHOTSE_TRIALS_DOWNLOAD = "voxceleb_trials.txt"  # where lhotse's recipe downloads the list (its working directory)


class SpeakerDataError(ValueError):
    """A manifest, speaker list or trial list that does not fit the data (names the file and the entry)."""


@dataclass(frozen=True)
class Trial:
    """One verification trial: two cut ids and whether they are the same speaker."""

    enrol: str
    test: str
    is_target: bool


def cuts_path(fbank_dir: Path, subset: str) -> Path:
    return Path(fbank_dir) / f"voxceleb_cuts_{subset}.jsonl.gz"


def recording_id(relative_path: str) -> str:
    """VoxCeleb's ``SPK/SESSION/NNNNN.wav`` -> lhotse's recording id ``SPK-SESSION-NNNNN``."""
    return relative_path.rsplit(".", 1)[0].replace("/", "-")


def read_trials(path: Path, known_ids: Iterable[str]) -> List[Trial]:
    """The trials of a VoxCeleb trial list; SpeakerDataError naming the line if it is malformed or names an
    utterance not in `known_ids`."""
    known = set(known_ids)
    if not Path(path).is_file():
        raise FileNotFoundError(f"trial list {path} not found: run prepare.sh (stage 1) or check --trials")
    trials = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        fields = line.split()
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise SpeakerDataError(f"{path}:{number}: expected '1|0 UTT1 UTT2', got {line!r}")
        enrol, test = recording_id(fields[1]), recording_id(fields[2])
        for utterance in (enrol, test):
            if utterance not in known:
                raise SpeakerDataError(f"{path}:{number}: trial names unknown utterance {utterance!r} (no such cut)")
        trials.append(Trial(enrol, test, fields[0] == "1"))
    if not trials:
        raise SpeakerDataError(f"trial list {path} has no trials")
    return trials


def read_speakers(path: Path) -> List[str]:
    """The training speakers, in class order."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"speaker list {path} not found: run prepare.sh (stage 2) or check --manifest-dir")
    return Path(path).read_text().split()


def _synthetic_manifests(corpus_dir: Path) -> Dict[str, Dict[str, object]]:
    """lhotse's VoxCeleb1 manifests of a synthesized corpus (its trial list is local, lhotse's recipe would
    download VoxCeleb's)."""
    splits = {}
    for line in (corpus_dir / META_FILE).read_text().splitlines()[1:]:
        speaker, _, gender, _, split = line.split("\t")
        splits[speaker] = (split, gender)
    manifests: Dict[str, Dict[str, object]] = {}
    for split, name in (("dev", "train"), ("test", "test")):
        recordings, supervisions = [], []
        for path in sorted((corpus_dir / "wav").glob("*/*/*.wav")):
            speaker = path.parent.parent.name
            if splits[speaker][0] != split:
                continue
            recording = Recording.from_file(path, recording_id=recording_id(str(path.relative_to(corpus_dir / "wav"))))
            recordings.append(recording)
            supervisions.append(
                SupervisionSegment(
                    id=recording.id, recording_id=recording.id, start=0.0, duration=recording.duration,
                    speaker=speaker, gender=splits[speaker][1], custom={"split": split},
                )
            )
        manifests[name] = {
            "recordings": RecordingSet.from_recordings(recordings),
            "supervisions": SupervisionSet.from_segments(supervisions),
        }
    return manifests


def prepare_voxceleb_manifests(
    voxceleb1_dir: Path, voxceleb2_dir: Optional[Path], manifest_dir: Path, num_jobs: int
) -> None:
    """voxceleb_{recordings,supervisions}_{train,test}.jsonl.gz and voxceleb_trials.txt in `manifest_dir`.

    A synthesized corpus (SYNTHETIC.txt) is read here; real VoxCeleb1 (and VoxCeleb2, added to train) with lhotse's
    recipe, whose trial list (downloaded by lhotse from openslr) becomes voxceleb_trials.txt.
    """
    manifest_dir.mkdir(parents=True, exist_ok=True)
    if (voxceleb1_dir / SYNTHETIC_MARKER).is_file():
        manifests = _synthetic_manifests(voxceleb1_dir)
        for split, parts in manifests.items():
            validate_recordings_and_supervisions(parts["recordings"], parts["supervisions"])
            parts["recordings"].to_file(manifest_dir / f"voxceleb_recordings_{split}.jsonl.gz")
            parts["supervisions"].to_file(manifest_dir / f"voxceleb_supervisions_{split}.jsonl.gz")
        shutil.copyfile(voxceleb1_dir / TRIALS_FILE, manifest_dir / TRIALS_MANIFEST)
        return
    from lhotse.recipes.voxceleb import prepare_voxceleb

    here = Path.cwd()
    os.chdir(manifest_dir)  # lhotse downloads its trial list into the working directory
    try:
        prepare_voxceleb(voxceleb1_dir.resolve(), voxceleb2_dir.resolve() if voxceleb2_dir else None, ".", num_jobs)
    finally:
        os.chdir(here)
    if LHOTSE_TRIALS_DOWNLOAD != TRIALS_MANIFEST:
        os.replace(manifest_dir / LHOTSE_TRIALS_DOWNLOAD, manifest_dir / TRIALS_MANIFEST)


def split_held_out(cuts: CutSet, valid_per_speaker: int, iden_per_speaker: int, seed: int) -> Dict[str, CutSet]:
    """Split training cuts into train / valid / iden: of each speaker's cuts (shuffled with `seed`), the first
    `valid_per_speaker` go to valid, the next `iden_per_speaker` to iden, the rest (at least one) to train."""
    by_speaker: Dict[str, List] = {}
    for cut in sorted(cuts, key=lambda c: c.id):
        by_speaker.setdefault(cut.supervisions[0].speaker, []).append(cut)
    parts: Dict[str, List] = {"train": [], "valid": [], "iden": []}
    held_out = valid_per_speaker + iden_per_speaker
    for speaker, speaker_cuts in sorted(by_speaker.items()):
        if len(speaker_cuts) <= held_out:
            raise SpeakerDataError(
                f"speaker {speaker} has {len(speaker_cuts)} utterances; holding out {valid_per_speaker} + "
                f"{iden_per_speaker} would leave none for training (lower --valid-per-speaker / --iden-per-speaker)"
            )
        random.Random(f"{seed}-{speaker}").shuffle(speaker_cuts)
        parts["valid"] += speaker_cuts[:valid_per_speaker]
        parts["iden"] += speaker_cuts[valid_per_speaker:held_out]
        parts["train"] += speaker_cuts[held_out:]
    return {name: CutSet.from_cuts(part) for name, part in parts.items()}


def compute_voxceleb_fbank(
    manifest_dir: Path, fbank_dir: Path, num_jobs: int, valid_per_speaker: int = 1, iden_per_speaker: int = 3,
    seed: int = 0,
) -> None:
    """The four subsets' cuts with 80-dim fbank (lilcom) and the speaker list, in `fbank_dir`."""
    fbank_dir.mkdir(parents=True, exist_ok=True)
    cuts = {}
    for split in ("train", "test"):
        recordings = load_manifest(manifest_dir / f"voxceleb_recordings_{split}.jsonl.gz")
        supervisions = load_manifest(manifest_dir / f"voxceleb_supervisions_{split}.jsonl.gz")
        # One cut per recording, named like it, so the trial list's utterances are cut ids.
        whole = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
        cuts[split] = CutSet.from_cuts(cut.with_id(cut.recording_id) for cut in whole)
    subsets = {**split_held_out(cuts["train"], valid_per_speaker, iden_per_speaker, seed), "test": cuts["test"]}
    speakers = sorted({cut.supervisions[0].speaker for cut in subsets["train"]})
    (fbank_dir / SPEAKERS_FILE).write_text("".join(f"{speaker}\n" for speaker in speakers))
    for subset, subset_cuts in subsets.items():
        target = cuts_path(fbank_dir, subset)
        if target.exists():
            logging.info(f"{target} exists, skipping {subset}")
            continue
        logging.info(f"Computing fbank for {subset}: {len(subset_cuts)} cuts")
        store_features(subset_cuts, fbank_dir / f"voxceleb_feats_{subset}", target, num_jobs)
