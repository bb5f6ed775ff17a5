"""Running the exported encoder/decoder/joiner ONNX files with onnxruntime, the way sherpa-onnx does:
chunks of T = decode_chunk_len + 7 frames advancing by decode_chunk_len, and greedy search emitting at most one
token per encoder frame (blank and the ``skip_ids`` emit nothing).

Usage::

    model = OnnxTransducer(OnnxPaths(encoder, decoder, joiner), num_threads=1)
    encoder_out = model.encode(pad_for_chunks(features, model.decode_chunk_len))  # (T', joiner_dim)
    token_ids = model.greedy_search(encoder_out, skip_ids={unk_id})
"""

from typing import Dict, List, Set

import numpy as np
import onnxruntime
from torch import Tensor

from icefall_lite.export.inputs import feature_chunks
from icefall_lite.export.onnx_export import OnnxPaths

_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64}


def _session(path: str, num_threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def _metadata_int(session: onnxruntime.InferenceSession, key: str, path: str) -> int:
    metadata: Dict[str, str] = session.get_modelmeta().custom_metadata_map
    if key not in metadata:
        raise ValueError(f"{path} has no metadata key {key!r} (keys: {sorted(metadata)}); export it with export-onnx.py")
    return int(metadata[key])


class OnnxTransducer:
    """The three ONNX files of ``export_onnx`` in onnxruntime sessions, with their metadata."""

    def __init__(self, paths: OnnxPaths, num_threads: int = 1, blank_id: int = 0) -> None:
        for path in paths.as_list():
            if not path.is_file():
                raise FileNotFoundError(f"ONNX file {path} does not exist")
        self.encoder = _session(str(paths.encoder), num_threads)
        self.decoder = _session(str(paths.decoder), num_threads)
        self.joiner = _session(str(paths.joiner), num_threads)
        self.decode_chunk_len = _metadata_int(self.encoder, "decode_chunk_len", str(paths.encoder))
        self.chunk_frames = _metadata_int(self.encoder, "T", str(paths.encoder))
        self.context_size = _metadata_int(self.decoder, "context_size", str(paths.decoder))
        self.blank_id = blank_id

    def init_states(self) -> List[np.ndarray]:
        """Zero encoder states of one stream, shaped and typed as the encoder's state inputs (batch 1)."""
        states = []
        for model_input in self.encoder.get_inputs()[1:]:
            shape = [1 if isinstance(dim, str) else dim for dim in model_input.shape]
            states.append(np.zeros(shape, dtype=_NUMPY_TYPES[model_input.type]))
        return states

    def encode(self, features: Tensor) -> np.ndarray:
        """features: (T, 80) float of one utterance (e.g. ``pad_for_chunks``) -> (T', joiner_dim) float32
        projected encoder frames of its whole chunks, fed one chunk at a time with the cached states."""
        input_names = [model_input.name for model_input in self.encoder.get_inputs()]
        states = self.init_states()
        outputs = []
        for chunk in feature_chunks(features, self.decode_chunk_len, self.chunk_frames - self.decode_chunk_len):
            encoder_out, *states = self.encoder.run(None, dict(zip(input_names, [chunk.numpy()] + states)))
            outputs.append(encoder_out[0])
        return np.concatenate(outputs, axis=0)

    def run_decoder(self, context: List[int]) -> np.ndarray:
        """context: the last ``context_size`` token ids (-1: none) -> (1, joiner_dim) float32."""
        return self.decoder.run(None, {"y": np.array([context], dtype=np.int64)})[0]

    def greedy_search(self, encoder_out: np.ndarray, skip_ids: Set[int]) -> List[int]:
        """encoder_out: (T', joiner_dim) from ``encode`` -> the token ids, at most one per frame (the argmax
        of the joiner, unless it is blank or in ``skip_ids``)."""
        context = [-1] * (self.context_size - 1) + [self.blank_id]
        decoder_out = self.run_decoder(context)
        tokens: List[int] = []
        for frame in encoder_out:
            logits = self.joiner.run(None, {"encoder_out": frame[None], "decoder_out": decoder_out})[0]
            token = int(logits[0].argmax())
            if token == self.blank_id or token in skip_ids:
                continue
            tokens.append(token)
            context = context[1:] + [token]
            decoder_out = self.run_decoder(context)
        return tokens

