"""Streaming decoding: online fbank, chunking with tail padding, the pool of streams; it must give exactly the
hypotheses of simulated streaming (decode.py's path), whose encoder output the streaming encoder reproduces."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile
import torch
from lhotse import Recording

from icefall_lite.data.features import make_fbank
from icefall_lite.decoding.features import (
    LOG_EPS,
    SILENCE_LOG_ENERGY,
    TAIL_PADDING_FRAMES,
    AudioError,
    OnlineFbank,
    append_tail_padding,
    whole_chunk_frames,
    load_cut_samples,
)
from icefall_lite.decoding.methods import STREAMING_DECODING_METHODS, SearchOptions, make_search
from icefall_lite.decoding.streaming import DecodeStream, StreamingDecoder, decode_streams

from .helpers import talkative_model

SAMPLING_RATE = 16000


def random_audio(num_samples: int, seed: int) -> torch.Tensor:
    return torch.randn(num_samples, generator=torch.Generator().manual_seed(seed)) * 0.1


@pytest.mark.parametrize("num_samples", [0, 150, 399, 400, 401, 1000, 16000 * 2 + 37, 16000 * 3 + 159])
@pytest.mark.parametrize("piece", [37, 5120, None])
def test_online_fbank_equals_whole_utterance_fbank(num_samples: int, piece: int) -> None:
    audio = random_audio(num_samples, seed=num_samples)
    fbank = make_fbank()
    expected = fbank.extract(audio, SAMPLING_RATE) if num_samples > 0 else torch.zeros(0, 80)
    online = OnlineFbank(fbank)
    pieces = [audio] if piece is None else list(audio.split(piece))
    frames = torch.cat([online.accept_waveform(p) for p in pieces] + [online.input_finished()])
    assert frames.shape == expected.shape
    assert torch.allclose(frames, expected, atol=1e-5)


def test_online_fbank_refuses_audio_after_the_end() -> None:
    online = OnlineFbank()
    online.input_finished()
    with pytest.raises(RuntimeError, match="after input_finished"):
        online.accept_waveform(torch.zeros(10))


def test_stream_sees_the_frames_of_decode_py() -> None:
    """Chunks of 16 + 7 frames advancing by 16 cover the whole-utterance fbank plus 30 frames of silence, up to
    the last whole window."""
    audio = random_audio(16000 + 555, seed=1)
    features = make_fbank().extract(audio, SAMPLING_RATE)
    padded, lens = append_tail_padding(features.unsqueeze(0), torch.tensor([features.size(0)]), chunk_len=16)
    available = features.size(0) + TAIL_PADDING_FRAMES
    assert padded.size(1) == available and bool((padded[0, -30:] == SILENCE_LOG_ENERGY).all())
    assert (int(lens) - 7) % 16 == 0 and available - 16 < int(lens) <= available

    stream = DecodeStream("u", chunk_len=16, audio=audio)
    chunks = []
    while True:
        stream.fill()
        if not stream.ready:
            break
        chunks.append(stream.next_chunk())
    assert stream.done and stream.num_frames == available
    assert 16 * len(chunks) + 7 == int(lens)
    for k, chunk in enumerate(chunks):
        assert torch.allclose(chunk, padded[0, 16 * k : 16 * k + 23], atol=1e-5)


def test_tail_padding_is_the_fbank_of_digital_silence_right_after_each_utterance() -> None:
    silence = make_fbank().extract(torch.zeros(8000), SAMPLING_RATE)
    assert torch.allclose(silence, torch.full_like(silence, SILENCE_LOG_ENERGY))
    batch = torch.nn.utils.rnn.pad_sequence([torch.ones(40, 80), torch.ones(10, 80)], batch_first=True, padding_value=LOG_EPS)
    padded, _ = append_tail_padding(batch, torch.tensor([40, 10]), chunk_len=16)
    assert padded.shape == (2, 70, 80)
    assert bool((padded[1, 10:40] == SILENCE_LOG_ENERGY).all()) and bool((padded[1, 40:] == LOG_EPS).all())
    assert bool((padded[0, 40:] == SILENCE_LOG_ENERGY).all()) and bool((padded[:, :10] == 1).all())


@pytest.mark.parametrize("num_frames", [0, 6, 7, 22, 23, 24, 38, 39, 40, 100])
def test_whole_chunk_frames_keeps_the_whole_windows_only(num_frames: int) -> None:
    kept = int(whole_chunk_frames(torch.tensor([num_frames]), chunk_len=16)[0])
    if num_frames < 23:
        assert kept == 0
    else:
        assert (kept - 7) % 16 == 0 and num_frames - 16 < kept <= num_frames


@torch.no_grad()
def simulated_tokens(model, method: str, audios: List[torch.Tensor]) -> List[List[int]]:
    """decode.py's path: whole-utterance fbank, 30 frames of padding, masked encoder, search on the batch."""
    fbank = make_fbank()
    features = [fbank.extract(audio, SAMPLING_RATE) for audio in audios]
    lens = torch.tensor([f.size(0) for f in features])
    batch = torch.nn.utils.rnn.pad_sequence(features, batch_first=True, padding_value=LOG_EPS)
    x, x_lens = append_tail_padding(batch, lens, chunk_len=2 * model.encoder.decode_chunk_size)
    encoder_out, encoder_lens = model.encoder(x, x_lens)
    return make_search(method, model, SearchOptions(beam=8.0, max_contexts=4, max_states=16), unk_id=2).decode(
        encoder_out, encoder_lens
    )


def streamed_tokens(model, method: str, audios: List[torch.Tensor], num_slots: int) -> Dict[str, List[int]]:
    search = make_search(method, model, SearchOptions(beam=8.0, max_contexts=4, max_states=16), unk_id=2)
    decoder = StreamingDecoder(model, search, num_slots)
    chunk_len = 2 * model.encoder.decode_chunk_size
    streams = (DecodeStream(str(i), chunk_len, audio=audio) for i, audio in enumerate(audios))
    return {stream.stream_id: tokens for stream, tokens in decode_streams(decoder, streams)}


@pytest.mark.parametrize("method", STREAMING_DECODING_METHODS)
@pytest.mark.parametrize("num_slots", [2, 8])
def test_streaming_gives_exactly_the_hypotheses_of_simulated_streaming(method: str, num_slots: int) -> None:
    model = talkative_model(vocab_size=10, seed=1, use_ctc=method == "ctc_greedy_search")
    audios = [random_audio(n, seed=n) for n in (16000 * 2 + 300, 4000, 12345, 16000 + 7, 800)]
    expected = simulated_tokens(model, method, audios)
    streamed = streamed_tokens(model, method, audios, num_slots)
    assert [streamed[str(i)] for i in range(len(audios))] == expected
    assert sum(map(len, expected)) > (12 if method == "ctc_greedy_search" else 30)  # CTC merges repeats: fewer


def test_live_stream_waits_for_audio_and_matches_queued_audio() -> None:
    model = talkative_model(vocab_size=10, seed=2)
    audio = random_audio(16000 + 4321, seed=5)
    search = make_search("greedy_search", model, SearchOptions())
    decoder = StreamingDecoder(model, search, num_slots=2)
    live = DecodeStream("live", chunk_len=16)
    decoder.add(live)
    assert decoder.step() == [] and live.offset == 0  # no audio yet: nothing decoded
    finished = []
    for piece in audio.split(1234):
        live.accept_waveform(piece)
        finished += decoder.step()
    live.input_finished()
    while not finished:
        finished += decoder.step()
    assert [(stream.stream_id, tokens) for stream, tokens in finished] == [("live", simulated_tokens(model, "greedy_search", [audio])[0])]
    assert live.duration == pytest.approx(audio.numel() / SAMPLING_RATE)


def _cut_of(path: Path, sampling_rate: int = SAMPLING_RATE, num_samples: int = 16000, channels: int = 1):
    recording = Recording.from_dict(
        {
            "id": path.stem, "sampling_rate": sampling_rate, "num_samples": num_samples,
            "duration": num_samples / sampling_rate, "channel_ids": list(range(channels)),
            "sources": [{"type": "file", "channels": list(range(channels)), "source": str(path)}],
        }
    )
    return recording.to_cut()


def test_corrupt_audio_is_named(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEfmt this is not audio" * 10)
    with pytest.raises(AudioError, match=r"cut corrupt.*corrupt\.wav"):
        load_cut_samples(_cut_of(corrupt), SAMPLING_RATE)


def test_wrong_sample_rate_and_channels_are_named(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.zeros((16000, 2), dtype=np.float32), SAMPLING_RATE)
    with pytest.raises(AudioError, match="stereo.wav.*2 channels"):
        load_cut_samples(_cut_of(stereo, channels=2), SAMPLING_RATE)
    slow = tmp_path / "slow.wav"
    soundfile.write(slow, np.zeros(8000, dtype=np.float32), 8000)
    with pytest.raises(AudioError, match="slow.wav.*sample rate 8000"):
        load_cut_samples(_cut_of(slow, sampling_rate=8000, num_samples=8000), SAMPLING_RATE)
    good = tmp_path / "good.wav"
    soundfile.write(good, np.full(16000, 0.25, dtype=np.float32), SAMPLING_RATE)
    samples = load_cut_samples(_cut_of(good), SAMPLING_RATE)
    assert samples.shape == (16000,) and torch.allclose(samples, torch.full((16000,), 0.25), atol=1e-4)


def test_stream_with_another_chunk_length_is_refused() -> None:
    model = talkative_model()
    decoder = StreamingDecoder(model, make_search("greedy_search", model, SearchOptions()), num_slots=1)
    with pytest.raises(ValueError, match="--decode-chunk-len 16"):
        decoder.add(DecodeStream("u", chunk_len=32))
