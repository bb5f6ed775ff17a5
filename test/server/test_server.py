"""The server's results are those of the offline decoders, whatever the message size, pace and company: sherpa-onnx
back-end against sherpa_onnx_decode.py's ``decode_waves``, checkpoint back-end against streaming_decode.py; and
endpoints split a connection into segments; /health counts."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Dict, List

import aiohttp
import numpy as np
import pytest
from lhotse import load_manifest

from icefall_lite.decoding.wer import read_recogs
from icefall_lite.export.sherpa import decode_waves, make_recognizer
from icefall_lite.server.client import Transcript, stream_samples
from icefall_lite.server.endpoint import EndpointRules

from .conftest import TINY_MODEL_OPTIONS, Corpus, ServerThread, TinyExport, checkpoint_recognizer, running, sherpa_recognizer

RECIPE = Path(__file__).resolve().parents[2] / "egs/librispeech/ASR/pruned_transducer_stateless7_streaming"
NUM_WAVES = 4


def stream_all(url: str, waves: List[np.ndarray], seconds_per_message: float = 0.1, real_time: bool = False) -> List[Transcript]:
    """All waves at once, one connection each."""

    async def run() -> List[Transcript]:
        return list(await asyncio.gather(*(stream_samples(url, w, seconds_per_message, real_time) for w in waves)))

    return asyncio.run(run())


@pytest.fixture(scope="module")
def waves(corpus: Corpus) -> List[np.ndarray]:
    return [corpus.samples(path) for path in corpus.waves[:NUM_WAVES]]


@pytest.fixture(scope="module")
def sherpa_reference(corpus: Corpus, tiny_export: TinyExport, waves: List[np.ndarray]) -> List[str]:
    """sherpa_onnx_decode.py's decoding of the waves (no endpointing, 0.3 s tail)."""
    recognizer = make_recognizer(tiny_export.onnx, corpus.tokens, num_threads=1)
    texts = [result.text.strip() for result in decode_waves(recognizer, waves, num_streams=1)]
    assert all(len(text.split()) >= 2 for text in texts)
    return texts


def assert_one_final_segment(transcript: Transcript, expected: str) -> None:
    assert transcript.close_code == 1000 and not transcript.errors
    finals = [message for _, message in transcript.messages if message["is_final"]]
    assert len(finals) == 1 and finals[0]["segment"] == 0 and transcript.messages[-1][1] is finals[0]
    assert transcript.text == expected


@pytest.mark.parametrize("seconds_per_message", [0.01, 0.1, 1.0])
def test_sherpa_final_text_equals_the_offline_decode_for_any_message_size(
    sherpa_server: ServerThread, waves: List[np.ndarray], sherpa_reference: List[str], seconds_per_message: float
) -> None:
    for transcript, expected in zip(stream_all(sherpa_server.url, waves, seconds_per_message), sherpa_reference):
        assert_one_final_segment(transcript, expected)
        assert len(transcript.messages) > 3  # partial results came along


def test_real_time_pace_gives_the_same_text_with_partial_results_on_the_way(
    sherpa_server: ServerThread, waves: List[np.ndarray], sherpa_reference: List[str]
) -> None:
    shortest = int(np.argmin([len(w) for w in waves]))
    (transcript,) = stream_all(sherpa_server.url, [waves[shortest]], seconds_per_message=0.05, real_time=True)
    assert_one_final_segment(transcript, sherpa_reference[shortest])
    duration = len(waves[shortest]) / 16000
    first_partial = transcript.messages[0][0] - transcript.sent[0][0]
    assert first_partial < 0.7 * duration  # results arrive while the audio is still being sent
    assert transcript.messages[-1][0] - transcript.done_time < 1.0


def test_batching_does_not_change_results_the_same_file_alone_and_among_30(
    sherpa_server: ServerThread, waves: List[np.ndarray], sherpa_reference: List[str]
) -> None:
    before = sherpa_server.health()
    crowd = [waves[i % len(waves)] for i in range(31)]
    transcripts = stream_all(sherpa_server.url, crowd, seconds_per_message=0.2)
    for i, transcript in enumerate(transcripts):
        assert_one_final_segment(transcript, sherpa_reference[i % len(waves)])
    after = sherpa_server.health()
    chunks = after["chunks_decoded"] - before["chunks_decoded"]
    batches = after["batches_decoded"] - before["batches_decoded"]
    assert chunks >= 31 * 5 and chunks / batches > 2  # streams were decoded together
    assert after["connections"] == 0 and after["streams"] == 0


def test_health_counts_a_connection_and_its_stream(sherpa_server: ServerThread, waves: List[np.ndarray]) -> None:
    async def run() -> Dict:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(sherpa_server.url) as ws:
                await ws.send_bytes(waves[0][:16000].tobytes())
                await ws.receive(timeout=10)  # a partial result: the stream exists and decodes
                return sherpa_server.health()

    during = asyncio.run(run())
    assert (during["connections"], during["streams"], during["backend"]) == (1, 1, "sherpa-onnx")
    assert during["chunks_decoded"] > 0
    asyncio.run(asyncio.sleep(0.2))
    after = sherpa_server.health()
    assert (after["connections"], after["streams"]) == (0, 0)


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, RECIPE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def streaming_decode_results(prepared_dir: Path, tiny_export: TinyExport) -> Dict[Path, List[str]]:
    """streaming_decode.py (greedy) on test-clean with the tiny checkpoint: {audio file: words}."""
    manifest = prepared_dir / "data" / "fbank" / "librispeech_cuts_test-clean.jsonl.gz"
    options = ["--epoch", "1", "--avg", "1", "--use-averaged-model", "0", "--exp-dir", str(tiny_export.exp_dir)]
    bpe = ["--bpe-model", str(prepared_dir / "data" / "lang_bpe_80" / "bpe.model"), "--num-threads", "1"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(prepared_dir)  # the manifest's audio paths are relative to it
        load_script("streaming_decode").main(options + bpe + TINY_MODEL_OPTIONS + ["--cuts", str(manifest)])
    (recogs,) = (tiny_export.exp_dir / "streaming" / "greedy_search").glob("recogs-test-clean-*.txt")
    sources = {cut.id: prepared_dir / cut.recording.sources[0].source for cut in load_manifest(manifest)}
    return {sources[cut_id]: hyp for cut_id, _, hyp in read_recogs(recogs)}


def test_checkpoint_final_text_equals_streaming_decode_py(
    corpus: Corpus, tiny_model, streaming_decode_results: Dict[Path, List[str]]
) -> None:
    files = sorted(streaming_decode_results)
    assert len(files) == 8 and sum(len(words) for words in streaming_decode_results.values()) > 30
    for server in running(checkpoint_recognizer(corpus, tiny_model, EndpointRules())):
        for seconds_per_message in (0.02, 0.5):
            transcripts = stream_all(server.url, [corpus.samples(path) for path in files], seconds_per_message)
            for path, transcript in zip(files, transcripts):
                assert_one_final_segment(transcript, " ".join(streaming_decode_results[path]))
        assert server.health()["backend"] == "checkpoint"


@pytest.mark.parametrize("backend", ["sherpa-onnx", "checkpoint"])
def test_endpoints_split_a_connection_into_numbered_segments(
    corpus: Corpus, tiny_export: TinyExport, tiny_model, waves: List[np.ndarray], backend: str
) -> None:
    rules = EndpointRules(rule3_min_utterance_length=0.9)  # rule 3 fires after every 0.96 s (the talkative model never pauses)
    recognizer = sherpa_recognizer(corpus, tiny_export, rules) if backend == "sherpa-onnx" else checkpoint_recognizer(corpus, tiny_model, rules)
    longest = max(waves, key=len)
    for server in running(recognizer):
        (transcript,) = stream_all(server.url, [longest])
    finals = [message for _, message in transcript.messages if message["is_final"]]
    expected_segments = int(len(longest) / 16000 / 0.96)
    assert len(finals) >= expected_segments >= 2
    assert [final["segment"] for final in finals] == list(range(len(finals)))
    assert all(final["text"] for final in finals[:-1])
    segments = [message["segment"] for _, message in transcript.messages]
    assert segments == sorted(segments)
