"""What the ``*_pretrained.py`` scripts share: wave files -> fbank -> chunks, and token ids -> text.

Features get decode.py's tail padding (30 frames of digital silence) and are cut to the whole chunk windows,
``k * decode_chunk_len + 7`` frames, so the whole-utterance masked forward (pretrained.py) and the chunk-by-chunk
streaming forward
(jit_pretrained.py, onnx_pretrained.py) see the same frames and give the same ``k * decode_chunk_len / 4``
encoder frames::

    samples = read_wave(Path("foo.wav"))
    features = pad_for_chunks(compute_fbank(samples), decode_chunk_len=32)   # (32 k + 7, 80)
    encoder_out = torch.cat([encode(chunk) for chunk in feature_chunks(features, 32)], dim=1)
"""

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import soundfile
import torch
from torch import Tensor

from icefall_lite.data.features import make_fbank
from icefall_lite.decoding.features import LOG_EPS, TAIL_PADDING_FRAMES, AudioError, append_tail_padding
from icefall_lite.model.subsampling import SUBSAMPLING_CONTEXT

SAMPLE_RATE = 16000
FRAME_SHIFT_SECONDS = 0.01
WORD_BOUNDARY = "\u2581"


def read_wave(path: Path, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """The samples of a mono audio file at ``sample_rate``.

    Returns:
      (S,) float32 samples in [-1, 1].
    Raises:
      AudioError naming the file if it cannot be read, is empty, has another sample rate or several channels.
    """
    try:
        samples, file_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioError(f"cannot read audio file {path}: {error}") from error
    if file_rate != sample_rate:
        raise AudioError(
            f"{path} has sample rate {file_rate} Hz but the model expects {sample_rate} Hz "
            f"(resample it, e.g. sox {path} -r {sample_rate} out.wav)"
        )
    if samples.shape[1] != 1:
        raise AudioError(
            f"{path} has {samples.shape[1]} channels but the model expects mono audio (e.g. sox {path} -c 1 out.wav)"
        )
    if samples.shape[0] == 0:
        raise AudioError(f"{path} holds no samples")
    return torch.from_numpy(samples[:, 0])


def compute_fbank(samples: Tensor, sample_rate: int = SAMPLE_RATE) -> Tensor:
    """samples: (S,) float in [-1, 1] -> (T, 80) float log-mel fbank (training's extractor), T = round(S / 160)."""
    return torch.from_numpy(make_fbank().extract(samples.numpy(), sample_rate))


def pad_for_chunks(features: Tensor, decode_chunk_len: int) -> Tensor:
    """features: (T, C) -> (k * decode_chunk_len + 7, C): decode.py's tail padding of TAIL_PADDING_FRAMES
    frames of digital silence, then the whole chunk windows only (``whole_chunk_frames``), as every decoder reads it."""
    padded, lens = append_tail_padding(features.unsqueeze(0), torch.tensor([features.size(0)]), decode_chunk_len)
    return padded[0, : int(lens[0])]


def pad_batch(features: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
    """Utterances (T_i, C) -> (N, max T_i, C) float padded with log(1e-10) and (N,) int64 lengths T_i."""
    x = torch.nn.utils.rnn.pad_sequence(list(features), batch_first=True, padding_value=LOG_EPS)
    return x, torch.tensor([f.size(0) for f in features], dtype=torch.int64)


def feature_chunks(features: Tensor, decode_chunk_len: int, pad_length: int = SUBSAMPLING_CONTEXT) -> List[Tensor]:
    """features: (T, C) (e.g. from ``pad_for_chunks``) -> chunks (1, decode_chunk_len + pad_length, C) starting
    every ``decode_chunk_len`` frames; trailing frames that do not fill a chunk are dropped (as sherpa-onnx does)."""
    windows = features.unfold(0, decode_chunk_len + pad_length, decode_chunk_len)
    return [window.t().unsqueeze(0) for window in windows]


def read_tokens(path: Path) -> Dict[int, str]:
    """``tokens.txt`` ("symbol id" per line) -> {id: symbol}; ValueError naming the file and line if malformed."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"token table {path} does not exist")
    table: Dict[int, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise ValueError(f"{path}:{number}: expected 'symbol id', got {line!r}")
        table[int(fields[1])] = fields[0]
    return table


def tokens_to_text(token_ids: Sequence[int], table: Dict[int, str]) -> str:
    """Join BPE pieces into words: "\u2581" starts a word."""
    return "".join(table[token] for token in token_ids).replace(WORD_BOUNDARY, " ").strip()


def vocab_size(table: Dict[int, str]) -> int:
    """The number of output classes a model for this token table has (largest id + 1)."""
    return max(table) + 1


def symbol_id(table: Dict[int, str], symbol: str) -> Optional[int]:
    """The id of ``symbol`` in the table, or None if it has none."""
    return next((token for token, name in table.items() if name == symbol), None)


def wave_features(paths: Sequence[Path], decode_chunk_len: int) -> List[Tensor]:
    """Each file's fbank, padded by ``pad_for_chunks``: (k_i * decode_chunk_len + 7, 80) float each, k_i >= 1;
    AudioError naming the first file that cannot be used (unreadable, or too short to fill one chunk)."""
    return [_wave_chunks(path, decode_chunk_len) for path in paths]


def _wave_chunks(path: Path, decode_chunk_len: int) -> Tensor:
    features = pad_for_chunks(compute_fbank(read_wave(path)), decode_chunk_len)
    if features.size(0) == 0:
        shortest = (decode_chunk_len + SUBSAMPLING_CONTEXT - TAIL_PADDING_FRAMES) * FRAME_SHIFT_SECONDS
        raise AudioError(f"{path} is too short: a chunk of {decode_chunk_len} frames needs at least {shortest:.2f} s of audio")
    return features
