"""Evaluate a speaker model: identification on held-out utterances of the training speakers, verification on the
trial list (cosine scoring), and enrolment of speakers from folders of wav files.

Result files, in ``RESULTS_DIR`` (SUFFIX = ``epoch-E-avg-A`` as in the ASR recipe's decode.py)::

    summary-SUFFIX.txt          the numbers: identification top-1 / top-5 accuracy, EER, minDCF(p_target=0.01)
    identification-SUFFIX.txt   per utterance: cut id, true speaker, top-5 speakers
    scores-SUFFIX.txt           per trial: label, utterance 1, utterance 2, cosine score
    scores-SUFFIX.png           score histograms and the DET curve

Example::

    >>> embeddings = embed_cuts(model, data.eval_dataloaders(data.cuts("test")))
    >>> verification = verify(read_trials(trials_path, embeddings), embeddings)
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from icefall_lite.data.speaker_data import FRAME_SHIFT_SECONDS
from icefall_lite.data.speaker_manifests import Trial
from icefall_lite.decoding.checkpoint_selection import load_model_for_inference
from icefall_lite.decoding.features import AudioError
from icefall_lite.decoding.options import run_script
from icefall_lite.decoding.verification import P_TARGET, cosine_scores, equal_error_rate, min_dcf, plot_scores, top_k_accuracy
from icefall_lite.export.inputs import compute_fbank, read_wave
from icefall_lite.export.speaker import ExportMismatch
from icefall_lite.model.speaker import MIN_EMBEDDING_FRAMES, SpeakerModel
from icefall_lite.model.speaker_options import speaker_config_from_args

WAVE_SUFFIXES = (".wav", ".flac")


@dataclass(frozen=True)
class CutEmbeddings:
    """Embeddings of a set of cuts: ids (N,), embeddings (N, E) float, speaker classes (N,) int64 (-1 unknown)."""

    ids: List[str]
    embeddings: Tensor
    speaker_index: Tensor

    def by_id(self) -> Dict[str, Tensor]:
        return {cut_id: self.embeddings[i] for i, cut_id in enumerate(self.ids)}


@dataclass(frozen=True)
class VerificationResult:
    eer: float
    min_dcf: float
    target_scores: np.ndarray
    nontarget_scores: np.ndarray
    scores: List[Tuple[Trial, float]]


@torch.no_grad()
def embed_cuts(model: SpeakerModel, batches: Sequence[Dict], device: torch.device = torch.device("cpu")) -> CutEmbeddings:
    """Embeddings of every cut of an eval DataLoader (``SpeakerDataModule.eval_dataloaders``), in eval mode."""
    model.eval()
    ids, embeddings, speakers = [], [], []
    for batch in batches:
        supervisions = batch["supervisions"]
        embeddings.append(model.embed(batch["inputs"].to(device), supervisions["num_frames"].to(device)).cpu())
        ids += [cut.id for cut in supervisions["cut"]]
        speakers.append(supervisions["speaker_index"])
    if not ids:
        raise ValueError("no cuts to embed")
    return CutEmbeddings(ids, torch.cat(embeddings), torch.cat(speakers))


@torch.no_grad()
def identify(model: SpeakerModel, embeddings: CutEmbeddings, k: int = 5) -> Tuple[float, float, Tensor]:
    """Top-1 and top-k accuracy of the classifier on the embeddings (all of training speakers), and the (N, k)
    int64 top-k classes."""
    targets = embeddings.speaker_index
    if bool((targets < 0).any()):
        raise ValueError("identification needs cuts of the training speakers (speaker_index >= 0)")
    logits = model.classifier(embeddings.embeddings, torch.full_like(targets, -1))
    top = logits.topk(min(k, logits.size(1)), dim=1).indices
    return top_k_accuracy(logits, targets, 1), top_k_accuracy(logits, targets, k), top


def verify(trials: Sequence[Trial], embeddings: CutEmbeddings, p_target: float = P_TARGET) -> VerificationResult:
    """Cosine-score every trial; EER and minDCF. KeyError-free: read_trials has checked the ids."""
    index = {cut_id: i for i, cut_id in enumerate(embeddings.ids)}
    enrol = embeddings.embeddings[[index[t.enrol] for t in trials]]
    test = embeddings.embeddings[[index[t.test] for t in trials]]
    scores = cosine_scores(enrol, test).numpy().astype(np.float64)
    labels = np.array([t.is_target for t in trials])
    targets, nontargets = scores[labels], scores[~labels]
    return VerificationResult(
        equal_error_rate(targets, nontargets), min_dcf(targets, nontargets, p_target), targets, nontargets,
        list(zip(trials, scores.tolist())),
    )


def write_results(
    results_dir: Path, suffix: str, summary: Dict[str, float], verification: VerificationResult,
    identification_rows: List[str],
) -> Path:
    """Write the result files of the module docstring; returns the summary file."""
    results_dir.mkdir(parents=True, exist_ok=True)
    summary_path = results_dir / f"summary-{suffix}.txt"
    summary_path.write_text("".join(f"{name}\t{value:.4f}\n" for name, value in summary.items()))
    (results_dir / f"identification-{suffix}.txt").write_text("".join(row + "\n" for row in identification_rows))
    (results_dir / f"scores-{suffix}.txt").write_text(
        "".join(f"{int(t.is_target)} {t.enrol} {t.test} {score:.5f}\n" for t, score in verification.scores)
    )
    plot_scores(
        verification.target_scores, verification.nontarget_scores, results_dir / f"scores-{suffix}.png",
        f"{suffix}: EER {100 * verification.eer:.2f}%, minDCF {verification.min_dcf:.3f}",
    )
    return summary_path


def wave_features(path: Path) -> Tensor:
    """(T, 80) float raw fbank of a wav file; AudioError naming the file if it is unreadable or too short."""
    features = compute_fbank(read_wave(path))
    if features.size(0) < MIN_EMBEDDING_FRAMES:
        raise AudioError(
            f"{path} is {features.size(0) * FRAME_SHIFT_SECONDS:.2f} s long: too short to embed (at least "
            f"{MIN_EMBEDDING_FRAMES * FRAME_SHIFT_SECONDS:.2f} s needed)"
        )
    return features


@torch.no_grad()
def embed_waves(extractor: nn.Module, paths: Sequence[Path]) -> Tensor:
    """(len(paths), E) float embeddings of wav files, one at a time (``export.speaker.EmbeddingExtractor``)."""
    rows = []
    for path in paths:
        features = wave_features(Path(path))
        rows.append(extractor(features.unsqueeze(0), torch.tensor([features.size(0)]))[0])
    return torch.stack(rows)


def enrolment_waves(enrol_dir: Path) -> Dict[str, List[Path]]:
    """Speaker name -> wav files, from ``enrol_dir/SPEAKER/*.wav``; FileNotFoundError naming what is missing."""
    if not Path(enrol_dir).is_dir():
        raise FileNotFoundError(f"--enrol-dir {enrol_dir} is not a directory (expected one folder of wavs per speaker)")
    speakers = {}
    for folder in sorted(p for p in Path(enrol_dir).iterdir() if p.is_dir()):
        waves = sorted(p for p in folder.iterdir() if p.suffix.lower() in WAVE_SUFFIXES)
        if not waves:
            raise FileNotFoundError(f"speaker folder {folder} holds no .wav or .flac files")
        speakers[folder.name] = waves
    if not speakers:
        raise FileNotFoundError(f"--enrol-dir {enrol_dir} has no speaker folders (expected {enrol_dir}/SPEAKER/*.wav)")
    return speakers


def enrol(extractor: nn.Module, enrol_dir: Path) -> Tuple[List[str], Tensor]:
    """Speaker names and their (S, E) float enrolment embeddings (the mean of each speaker's unit-length
    embeddings)."""
    names, centroids = [], []
    for name, waves in enrolment_waves(enrol_dir).items():
        embeddings = nn.functional.normalize(embed_waves(extractor, waves), dim=1)
        names.append(name)
        centroids.append(embeddings.mean(dim=0))
        logging.info(f"Enrolled {name} from {len(waves)} files")
    return names, torch.stack(centroids)


def closest_speakers(embeddings: Tensor, centroids: Tensor) -> Tuple[Tensor, Tensor]:
    """embeddings: (N, E), centroids: (S, E) -> the (N,) int64 closest centroid by cosine and its (N,) score."""
    scores = nn.functional.normalize(embeddings, dim=1) @ nn.functional.normalize(centroids, dim=1).T
    best = scores.max(dim=1)
    return best.indices, best.values


def load_speaker_model(args: argparse.Namespace, num_speakers: int) -> SpeakerModel:
    """The model of the options (speaker_options) with the weights the checkpoint options select, in eval mode."""
    model = SpeakerModel(speaker_config_from_args(args, num_speakers))
    return load_model_for_inference(args, model)


def run_speaker_script(main: Callable[[], None]) -> int:
    """``run_script`` that also reports the speaker recipe's input errors in one line; returns the exit code."""
    try:
        return run_script(main)
    except (ValueError, ExportMismatch) as error:  # SpeakerDataError is a ValueError
        logging.error(f"{type(error).__name__}: {error}")
        return 1
