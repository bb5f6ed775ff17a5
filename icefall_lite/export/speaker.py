"""The speaker model's embedding extractor, in PyTorch, TorchScript and ONNX, each checked against PyTorch.

The extractor takes raw fbank, as ``export.inputs.compute_fbank`` gives it, and does the recipe's per-utterance
mean normalization itself (over the valid frames), so a deployment needs only fbank and this file:

| file | inputs | outputs |
|---|---|---|
| ``embedding_extractor.pt`` (TorchScript) / ``embedding_extractor.onnx`` | ``features`` (N, T, 80) float, ``feature_lens`` (N,) int64 | ``embeddings`` (N, E) float |

Usage::

    extractor = EmbeddingExtractor(model)
    script_extractor(extractor).save("exp/embedding_extractor.pt")
    export_extractor_onnx(extractor, Path("exp/embedding_extractor.onnx"))
    check_exported(extractor, [jit_path, onnx_path])      # ExportMismatch if any differs from PyTorch
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Union

import numpy as np
import onnxruntime
import torch
from torch import Tensor, nn

from icefall_lite.export.onnx_export import export_module
from icefall_lite.export.torchscript import quiet_tracing
from icefall_lite.model.speaker import MIN_EMBEDDING_FRAMES, SpeakerModel, SpeakerModelConfig
from icefall_lite.model.zipformer import padding_mask

TOLERANCE = 1e-4


class ExportMismatch(RuntimeError):
    """An exported extractor's embeddings differ from PyTorch's."""


class EmbeddingExtractor(nn.Module):
    """Raw fbank -> speaker embeddings: masked per-utterance mean normalization, then ``SpeakerModel.embed``."""

    def __init__(self, model: SpeakerModel) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, features: Tensor, feature_lens: Tensor) -> Tensor:
        """features: (N, T, 80) float fbank (padding: any value), feature_lens: (N,) int64 valid frames, each >=
        MIN_EMBEDDING_FRAMES -> (N, E) float embeddings."""
        valid = (~padding_mask(feature_lens, features.size(1))).to(features.dtype).unsqueeze(-1)
        mean = (features * valid).sum(dim=1, keepdim=True) / feature_lens.to(features.dtype).view(-1, 1, 1)
        return self.model.embed((features - mean) * valid, feature_lens)


def load_pretrained(path: Path) -> SpeakerModel:
    """The model of an export.py ``pretrained.pt`` ({"model": state_dict, "config": SpeakerModelConfig dict})."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"--checkpoint {path} not found: write it with ./conformer_am_softmax/export.py")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = SpeakerModel(SpeakerModelConfig.from_dict(saved["config"]))
    model.load_state_dict(saved["model"])
    return model.eval()


def script_extractor(extractor: EmbeddingExtractor) -> torch.jit.ScriptModule:
    """The extractor traced to TorchScript (the dynamic lengths are tensors, so one trace serves every shape)."""
    features, lens = example_inputs()
    with torch.no_grad(), quiet_tracing():
        return torch.jit.trace(extractor.eval(), (features, lens), check_trace=False)


def example_inputs(lengths: Sequence[int] = (230, 170, 90)) -> tuple:
    """A padded batch of random fbank: ((N, max(lengths), 80) float, (N,) int64)."""
    generator = torch.Generator().manual_seed(0)
    lens = torch.tensor(lengths, dtype=torch.int64)
    features = torch.randn(len(lengths), int(lens.max()), 80, generator=generator) * 2.0 - 8.0
    return features, lens


def export_extractor_onnx(extractor: EmbeddingExtractor, path: Path) -> None:
    """Write the ONNX extractor (N and T dynamic)."""
    features, lens = example_inputs()
    axes = {"features": {0: "N", 1: "T"}, "feature_lens": {0: "N"}, "embeddings": {0: "N"}}
    export_module(extractor, (features, lens), path, ["features", "feature_lens"], ["embeddings"], axes)


def run_exported(path: Path, features: Tensor, feature_lens: Tensor) -> Tensor:
    """Embeddings (N, E) from an exported file (.onnx with onnxruntime, else TorchScript)."""
    if Path(path).suffix == ".onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inputs: Dict[str, np.ndarray] = {"features": features.numpy(), "feature_lens": feature_lens.numpy()}
        return torch.from_numpy(session.run(["embeddings"], inputs)[0])
    with torch.no_grad():
        return torch.jit.load(str(path))(features, feature_lens)


def check_exported(extractor: EmbeddingExtractor, paths: List[Union[str, Path]], tolerance: float = TOLERANCE) -> float:
    """Largest difference between PyTorch's embeddings and each file's, on a padded batch of other lengths than
    the export's example; ExportMismatch naming the file when it is above `tolerance`."""
    features, lens = example_inputs((310, MIN_EMBEDDING_FRAMES, 120, 200))
    with torch.no_grad():
        expected = extractor.eval()(features, lens)
    worst = 0.0
    for path in paths:
        difference = float((run_exported(Path(path), features, lens) - expected).abs().max())
        if not difference <= tolerance:
            raise ExportMismatch(f"{path}: embeddings differ from PyTorch's by {difference:.3g} (> {tolerance:g})")
        worst = max(worst, difference)
    return worst
