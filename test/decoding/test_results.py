"""The results table reads every decoding run's wer-summary files and the real-time factors of its log."""

from __future__ import annotations

from pathlib import Path

import pytest

from icefall_lite.decoding.results import (
    collect_results,
    decode_log_path,
    decode_log_suffix,
    format_table,
    read_rtfs,
    streaming_settings_key,
)
from icefall_lite.decoding.wer import save_results

TEST_SETS = ["test-clean", "test-other"]
SUFFIX = "epoch-2-avg-1-streaming-chunk-size-32"


def _write_run(res_dir: Path, key: str, rtfs: dict) -> None:
    results = {
        "test-clean": [("a", "A B C D".split(), "A B C D".split())],
        "test-other": [("b", "A B C D".split(), "A X C".split())],
    }
    log_lines = []
    for name in TEST_SETS:
        save_results(res_dir, name, key, SUFFIX, results[name])
        log_lines += [
            "2026-11-22 INFO [decode.py] batch 0, cuts processed until now is 1 (1.0 cuts/s, real-time factor 9.9)",
            f"2026-11-22 INFO [decode.py] batch 1, cuts processed until now is 2 (1.0 cuts/s, real-time factor {rtfs[name]})",
            f"2026-11-22 INFO [wer.py] [{name}-{key}] %WER 1.00% [1 / 4, 0 ins, 0 del, 1 sub ]",
        ]
    (res_dir / f"log-decode-{SUFFIX}-2026-11-21-10-00-00").write_text("stale run\n")
    (res_dir / f"log-decode-{SUFFIX}-2026-11-22-10-00-00").write_text("\n".join(log_lines) + "\n")


def test_rows_hold_each_runs_wers_and_final_real_time_factors(tmp_path: Path) -> None:
    _write_run(tmp_path / "greedy_search", "greedy_search", {"test-clean": 0.02, "test-other": 0.04})
    _write_run(tmp_path / "streaming" / "greedy_search", "greedy_search", {"test-clean": 0.1, "test-other": 0.3})
    rows = collect_results(
        tmp_path, [("simulated", "greedy_search"), ("real", "streaming/greedy_search"), ("none", "absent")], TEST_SETS
    )
    assert [(row.label, row.key, row.suffix) for row in rows] == [
        ("simulated", "greedy_search", SUFFIX), ("real", "greedy_search", SUFFIX)
    ]
    assert rows[0].wers == {"test-clean": 0.0, "test-other": 50.0}
    assert rows[1].rtfs == {"test-clean": 0.1, "test-other": 0.3}
    table = format_table(rows, TEST_SETS).splitlines()
    assert table[0] == "| decoding | method | test-clean WER % | test-other WER % | RTF |"
    assert table[2] == "| simulated | greedy_search | 0.00 | 50.00 | 0.0300 |"
    assert table[3] == "| real | greedy_search | 0.00 | 50.00 | 0.2000 |"


def test_a_log_without_real_time_factors_gives_none(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("[test-clean-greedy_search] %WER 1.00%\n")
    assert read_rtfs(log, TEST_SETS) == {}


def test_a_suffix_reads_its_own_log_not_that_of_a_longer_suffix(tmp_path: Path) -> None:
    """"...-chunk-size-32" and "...-chunk-size-32-use-averaged-model" runs side by side: each row gets the
    real-time factors of its own log (a glob on the shorter suffix also matches the longer one's logs)."""
    _write_run(tmp_path, "greedy_search", {"test-clean": 0.02, "test-other": 0.04})
    longer = SUFFIX + "-use-averaged-model"
    for name in TEST_SETS:
        save_results(tmp_path, name, "greedy_search", longer, [("a", ["A"], ["A"])])
    (tmp_path / f"log-decode-{longer}-2026-11-23-10-00-00").write_text(
        "real-time factor 0.5\n[test-clean-greedy_search] %WER 0.00%\n[test-other-greedy_search] %WER 0.00%\n"
    )
    rows = {row.suffix: row for row in collect_results(tmp_path, [("run", ".")], TEST_SETS)}
    assert rows[SUFFIX].rtfs == {"test-clean": 0.02, "test-other": 0.04}
    assert rows[longer].rtfs == {"test-clean": 0.5, "test-other": 0.5}


def test_decode_log_names_give_back_their_suffix(tmp_path: Path) -> None:
    log = decode_log_path(tmp_path, SUFFIX)
    assert log.parent == tmp_path and decode_log_suffix(log) == SUFFIX


def test_streaming_settings_keys_are_icefalls() -> None:
    assert streaming_settings_key("greedy_search", 4) == "greedy_search"
    assert streaming_settings_key("modified_beam_search", 8) == "num_active_paths_8"
    with pytest.raises(ValueError, match="'beam_search'"):
        streaming_settings_key("beam_search", 4)
