"""The results table reads every decoding run's wer-summary files and the real-time factors of its log."""

from __future__ import annotations

from pathlib import Path

from icefall_lite.decoding.results import collect_results, format_table, read_rtfs
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
            f"2026-11-22 INFO [decode.py] batch 0, cuts processed until now is 1 (1.0 cuts/s, real-time factor 9.9)",
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
