"""Collect the WERs and real-time factors of an experiment's decoding runs into one markdown table.

Every decoding script writes ``wer-summary-{set}-{suffix}.txt`` files and a ``log-decode-{suffix}-{date}`` log
whose last "real-time factor X" line before a set's "%WER" line is that set's final real-time factor. A row is
one (result directory, suffix) pair, e.g. ``EXP/streaming/greedy_search`` with ``epoch-3-avg-1-...``.

Usage::

    rows = collect_results(exp_dir, [("real streaming", "streaming/greedy_search")], ["test-clean", "test-other"])
    print(format_table(rows, ["test-clean", "test-other"]))
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

_RTF = re.compile(r"real-time factor ([0-9.]+)")
_LOG_DATE_FORMAT = "%Y-%m-%d-%H-%M-%S"
_DECODE_LOG = re.compile(r"log-decode-(?P<suffix>.+)-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}")


def streaming_settings_key(decoding_method: str, num_active_paths: int) -> str:
    """icefall's settings key (first column of wer-summary files) of streaming_decode.py and sherpa_onnx_decode.py
    for greedy search (``greedy_search``, ``ctc_greedy_search``) and modified beam search (``num_active_paths_N``)."""
    if decoding_method == "modified_beam_search":
        return f"num_active_paths_{num_active_paths}"
    if decoding_method in ("greedy_search", "ctc_greedy_search"):
        return decoding_method
    raise ValueError(f"no streaming settings key for decoding method {decoding_method!r}")


def decode_log_path(res_dir: Path, suffix: str) -> Path:
    """Where a decoding run logs: ``res_dir/log-decode-{suffix}-{date}`` (icefall's name)."""
    return Path(res_dir) / f"log-decode-{suffix}-{datetime.datetime.now().strftime(_LOG_DATE_FORMAT)}"


def decode_log_suffix(log: Path) -> str:
    """The result-file suffix of a ``decode_log_path`` (its name without "log-decode-" and the date)."""
    match = _DECODE_LOG.fullmatch(Path(log).name)
    if match is None:
        raise ValueError(f"{log} is not named log-decode-SUFFIX-YYYY-MM-DD-HH-MM-SS")
    return match.group("suffix")


def decode_logs(res_dir: Path, suffix: str) -> List[Path]:
    """The decoding logs of exactly ``suffix`` in res_dir, oldest first (not those of a longer suffix that
    starts with it, e.g. "...-chunk-size-32-use-averaged-model" for "...-chunk-size-32")."""
    logs = [log for log in Path(res_dir).glob(f"log-decode-{suffix}-*") if _DECODE_LOG.fullmatch(log.name)]
    return sorted(log for log in logs if decode_log_suffix(log) == suffix)


@dataclass
class ResultRow:
    """One decoding run: WER per test set (percent) and the real-time factor per test set."""

    label: str
    key: str
    suffix: str
    wers: Dict[str, float] = field(default_factory=dict)
    rtfs: Dict[str, float] = field(default_factory=dict)

    @property
    def mean_rtf(self) -> Optional[float]:
        return sum(self.rtfs.values()) / len(self.rtfs) if self.rtfs else None


def read_wer_summary(path: Path) -> Tuple[str, float]:
    """The best (first) ``key\\tWER`` line of a wer-summary file."""
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2 or "\t" not in lines[1]:
        raise ValueError(f"{path}: expected a 'settings\\tWER' header and a 'key\\tWER' line")
    key, wer = lines[1].split("\t")
    return key, float(wer)


def read_rtfs(log: Path, test_sets: Sequence[str]) -> Dict[str, float]:
    """Per test set, the last real-time factor a decoding log reports before that set's %WER line."""
    rtfs: Dict[str, float] = {}
    last_rtf: Optional[float] = None
    for line in Path(log).read_text().splitlines():
        match = _RTF.search(line)
        if match:
            last_rtf = float(match.group(1))
        for name in test_sets:
            if f"[{name}-" in line and "%WER" in line and last_rtf is not None:
                rtfs[name] = last_rtf
    return rtfs


def collect_results(exp_dir: Path, result_dirs: Sequence[Tuple[str, str]], test_sets: Sequence[str]) -> List[ResultRow]:
    """One row per (label, directory under exp_dir) and file suffix found there, in the given order; the
    real-time factors come from the newest log of that suffix."""
    rows: List[ResultRow] = []
    for label, relative in result_dirs:
        res_dir = Path(exp_dir) / relative
        suffixes = sorted({p.name.removeprefix(f"wer-summary-{test_sets[0]}-").removesuffix(".txt")
                           for p in res_dir.glob(f"wer-summary-{test_sets[0]}-*.txt")})
        for suffix in suffixes:
            row = ResultRow(label=label, key="", suffix=suffix)
            for name in test_sets:
                summary = res_dir / f"wer-summary-{name}-{suffix}.txt"
                if summary.is_file():
                    row.key, row.wers[name] = read_wer_summary(summary)
            logs = decode_logs(res_dir, suffix)
            if logs:
                row.rtfs = read_rtfs(logs[-1], test_sets)
            rows.append(row)
    return rows


def format_table(rows: Sequence[ResultRow], test_sets: Sequence[str]) -> str:
    """A markdown table: decoding, method, the WER of each test set, the mean real-time factor."""
    header = ["decoding", "method", *[f"{name} WER %" for name in test_sets], "RTF"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        wers = [f"{row.wers[name]:.2f}" if name in row.wers else "-" for name in test_sets]
        rtf = f"{row.mean_rtf:.4f}" if row.mean_rtf is not None else "-"
        lines.append("| " + " | ".join([row.label, row.key, *wers, rtf]) + " |")
    return "\n".join(lines)
