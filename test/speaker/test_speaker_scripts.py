"""The speaker recipe's scripts end to end on the tiny corpus: train.py (1 process, 2-process DDP, fp16 and
resume) through the shared Trainer, evaluate.py, export.py and pretrained.py, and their errors on bad inputs."""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import numpy as np
import soundfile
import torch

from icefall_lite.decoding.speaker_eval import wave_features
from icefall_lite.export.speaker import EmbeddingExtractor, load_pretrained, run_exported
from icefall_lite.training.checkpoint import read_checkpoint

from .helpers import TINY_MODEL, run_script, train_args

CHECKPOINT = ["--epoch", "2", "--avg", "1"]


def test_train_two_steps_through_the_shared_trainer(speaker_dir: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    result = run_script("train.py", speaker_dir, *train_args(exp_dir, "--num-epochs", "1", "--batch-size", "8"))
    steps = re.findall(r"Epoch 1, batch (\d+), loss\[loss=([\d.]+), error=([\d.]+), over 8 crops\]", result.stderr)
    assert [int(batch) for batch, _, _ in steps] == [1, 2]  # 16 training cuts, 8 per batch
    assert all(np.isfinite(float(loss)) for _, loss, _ in steps)
    assert "4 training speakers" in result.stderr and "epoch ETA" in result.stderr
    checkpoint = read_checkpoint(exp_dir / "epoch-1.pt")
    assert checkpoint["batch_idx_train"] == 2 and "classifier.weight" in checkpoint["model"]
    assert checkpoint["model"]["classifier.weight"].shape == (4, 16)
    assert (exp_dir / "checkpoint-2.pt").is_file() and list((exp_dir / "tensorboard").iterdir())


def test_train_with_two_ddp_processes(speaker_dir: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp-ddp"
    port = str(random.randint(20000, 40000))
    result = run_script(
        "train.py", speaker_dir, *train_args(exp_dir, "--num-epochs", "1", "--world-size", "2", "--master-port", port)
    )
    assert "rank 1 of 2" in (next((exp_dir / "log").glob("log-train-*-1"))).read_text()
    # 16 cuts over 2 ranks of 4-cut batches: 2 steps, each over 8 crops (summed over ranks at the epoch's end)
    assert re.search(r"Epoch 1 done: train loss\[loss=[\d.]+, error=[\d.]+, over 16 crops\]", result.stderr)
    assert read_checkpoint(exp_dir / "epoch-1.pt")["batch_idx_train"] == 2


def test_fp16_training_resumed_at_an_epoch_boundary_equals_training_straight_through(
    speaker_dir: Path, tmp_path: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fp16 = ("--use-fp16", "1", "--save-every-n", "1000")
    run_script("train.py", speaker_dir, *train_args(straight, "--num-epochs", "2", *fp16))
    run_script("train.py", speaker_dir, *train_args(resumed, "--num-epochs", "1", *fp16))
    result = run_script("train.py", speaker_dir, *train_args(resumed, "--num-epochs", "2", "--start-epoch", "2", *fp16))
    assert "grad_scale" in result.stderr
    expected, actual = read_checkpoint(straight / "epoch-2.pt"), read_checkpoint(resumed / "epoch-2.pt")
    assert actual["batch_idx_train"] == expected["batch_idx_train"] == 8
    for name, tensor in expected["model"].items():
        torch.testing.assert_close(actual["model"][name], tensor, msg=name)
    for name, tensor in expected["model_avg"].items():
        torch.testing.assert_close(actual["model_avg"][name], tensor, msg=name)


def test_evaluate_writes_results(speaker_dir: Path, trained_exp: Path) -> None:
    result = run_script("evaluate.py", speaker_dir, *TINY_MODEL, "--exp-dir", str(trained_exp), *CHECKPOINT)
    assert re.search(r"\| epoch-2-avg-1 \| 4 \| [\d.]+% \| [\d.]+% \| \d+ \| [\d.]+% \| [\d.]+ \|", result.stdout)
    results = trained_exp / "evaluation"
    summary = dict(line.split("\t") for line in (results / "summary-epoch-2-avg-1.txt").read_text().splitlines())
    assert set(summary) == {
        "identification_top1_accuracy", "identification_top5_accuracy", "verification_eer", "verification_min_dcf_p0.01",
    }
    assert float(summary["identification_top5_accuracy"]) == 1.0  # 4 training speakers: top-5 holds all
    assert 0.0 <= float(summary["verification_eer"]) <= 1.0
    trials = (speaker_dir / "data" / "manifests" / "voxceleb_trials.txt").read_text().splitlines()
    scores = (results / "scores-epoch-2-avg-1.txt").read_text().splitlines()
    assert len(scores) == len(trials) and all(-1.0 <= float(line.split()[3]) <= 1.0 for line in scores)
    assert len((results / "identification-epoch-2-avg-1.txt").read_text().splitlines()) == 4
    assert (results / "scores-epoch-2-avg-1.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reports_an_unknown_trial_utterance(speaker_dir: Path, trained_exp: Path, tmp_path: Path) -> None:
    trials = tmp_path / "trials.txt"
    trials.write_text("1 id10005/s000000/00001.wav id19999/x/00001.wav\n")
    result = run_script(
        "evaluate.py", speaker_dir, *TINY_MODEL, "--exp-dir", str(trained_exp), *CHECKPOINT, "--trials", str(trials),
        check=False,
    )
    assert result.returncode == 1
    assert "unknown utterance 'id19999-x-00001'" in result.stderr and "Traceback" not in result.stderr


def _enrolment(speaker_dir: Path, tmp_path: Path) -> tuple:
    """Two unseen speakers enrolled from three files each; their fourth files to identify."""
    wav = speaker_dir / "download" / "VoxCeleb1" / "wav"
    enrol_dir, queries = tmp_path / "enrol", []
    for speaker in ("id10005", "id10006"):
        files = sorted(wav.joinpath(speaker).rglob("*.wav"))
        (enrol_dir / speaker).mkdir(parents=True)
        for path in files[1:]:
            shutil.copy(path, enrol_dir / speaker / path.name)
        queries.append(files[0])
    return enrol_dir, queries


def test_export_and_pretrained_round_trip(speaker_dir: Path, trained_exp: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    shutil.copytree(trained_exp, exp_dir, ignore=shutil.ignore_patterns("evaluation", "tensorboard"))
    run_script("export.py", speaker_dir, *TINY_MODEL, "--exp-dir", str(exp_dir), *CHECKPOINT)
    extractor = EmbeddingExtractor(load_pretrained(exp_dir / "pretrained.pt"))
    enrol_dir, queries = _enrolment(speaker_dir, tmp_path)
    features = wave_features(queries[0]).unsqueeze(0)
    lens = torch.tensor([features.size(1)])
    with torch.no_grad():
        expected = extractor(features, lens)
    for name in ("embedding_extractor.pt", "embedding_extractor.onnx"):
        torch.testing.assert_close(run_exported(exp_dir / name, features, lens), expected, atol=1e-4, rtol=1e-4)
    outputs = []
    for model in (["--checkpoint", str(exp_dir / "pretrained.pt")], ["--nn-model-filename", str(exp_dir / "embedding_extractor.pt")]):
        result = run_script("pretrained.py", speaker_dir, *model, "--enrol-dir", str(enrol_dir), *map(str, queries))
        lines = result.stdout.split("\n")[:2]
        assert [line.split()[0] for line in lines] == [str(q) for q in queries]
        assert all(line.split()[1] in ("id10005", "id10006") and -1 <= float(line.split()[2]) <= 1 for line in lines)
        outputs.append([line.split()[:2] for line in lines])
    assert outputs[0] == outputs[1]


def test_pretrained_errors_name_the_bad_input(speaker_dir: Path, trained_exp: Path, tmp_path: Path) -> None:
    exp_dir = tmp_path / "exp"
    shutil.copytree(trained_exp, exp_dir, ignore=shutil.ignore_patterns("evaluation", "tensorboard"))
    run_script("export.py", speaker_dir, *TINY_MODEL, "--exp-dir", str(exp_dir), *CHECKPOINT)
    enrol_dir, queries = _enrolment(speaker_dir, tmp_path)
    model = ["--nn-model-filename", str(exp_dir / "embedding_extractor.pt")]

    def error_of(*args: str) -> str:
        result = run_script("pretrained.py", speaker_dir, *model, *args, check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        return result.stderr

    assert f"--enrol-dir {tmp_path / 'missing'} is not a directory" in error_of("--enrol-dir", str(tmp_path / "missing"), str(queries[0]))
    (enrol_dir / "empty-speaker").mkdir()
    assert f"speaker folder {enrol_dir / 'empty-speaker'} holds no .wav" in error_of("--enrol-dir", str(enrol_dir), str(queries[0]))
    (enrol_dir / "empty-speaker").rmdir()
    short = tmp_path / "short.wav"
    soundfile.write(short, np.zeros(800, dtype=np.float32), 16000)
    assert f"{short} is 0.05 s long: too short to embed" in error_of("--enrol-dir", str(enrol_dir), str(short))
