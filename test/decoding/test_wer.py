"""WER counts and icefall's recogs / errs / wer-summary files."""

from __future__ import annotations

from pathlib import Path

import pytest

from icefall_lite.decoding.wer import (
    error_stats,
    read_error_stats,
    read_recogs,
    read_wer_summary,
    save_results,
    write_wer_summary,
)

RESULTS = [
    ("utt-2", "A B C D".split(), "A X C D E".split()),  # 1 substitution, 1 insertion
    ("utt-1", "THE CAT SAT".split(), "CAT SAT".split()),  # 1 deletion
    ("utt-3", "ONE TWO THREE".split(), "UN DEUX THREE".split()),  # 2 substitutions in a row
    ("utt:4", "'QUOTED' WORDS".split(), "'QUOTED' WORDS".split()),
]


def test_error_counts() -> None:
    stats = error_stats(RESULTS)
    assert (stats.insertions, stats.deletions, stats.substitutions) == (1, 1, 3)
    assert stats.num_ref_words == 12 and stats.num_correct == 8
    assert stats.wer == pytest.approx(100 * 5 / 12, abs=0.005)
    assert stats.words["C"] == [1, 0, 0, 0, 0] and stats.words["X"] == [0, 0, 1, 0, 0]


def test_save_results_writes_icefall_files_that_parse_back(tmp_path: Path) -> None:
    wer = save_results(tmp_path, "test-clean", "greedy_search", "epoch-3-avg-1", RESULTS)
    assert wer == 41.67

    recogs = tmp_path / "recogs-test-clean-epoch-3-avg-1.txt"
    assert read_recogs(recogs) == sorted(RESULTS)
    assert recogs.read_text().splitlines()[:2] == ["utt-1:\tref=['THE', 'CAT', 'SAT']", "utt-1:\thyp=['CAT', 'SAT']"]

    errs = tmp_path / "errs-test-clean-epoch-3-avg-1.txt"
    lines = errs.read_text().splitlines()
    assert lines[0] == "%WER = 41.67"
    assert lines[1] == "Errors: 1 insertions, 1 deletions, 3 substitutions, over 12 reference words (8 correct)"
    assert "utt-1:\t(THE->*) CAT SAT" in lines
    assert "utt-2:\tA (B->X) C D (*->E)" in lines
    assert "utt-3:\t(ONE TWO->UN DEUX) THREE" in lines
    for section in ("PER-UTT DETAILS: corr or (ref->hyp)  ", "SUBSTITUTIONS: count ref -> hyp", "DELETIONS: count ref",
                    "INSERTIONS: count hyp", "PER-WORD STATS: word  corr tot_errs count_in_ref count_in_hyp"):
        assert section in lines
    assert "1   B -> X" in lines and "1   THE" in lines and "1   E" in lines
    assert "C   1 0 1 1" in lines and "B   0 1 1 0" in lines
    parsed = read_error_stats(errs)
    assert (parsed.insertions, parsed.deletions, parsed.substitutions, parsed.num_ref_words) == (1, 1, 3, 12)

    summary = tmp_path / "wer-summary-test-clean-epoch-3-avg-1.txt"
    assert summary.read_text() == "settings\tWER\ngreedy_search\t41.67\n"
    assert read_wer_summary(summary) == {"greedy_search": 41.67}


def test_wer_summary_is_sorted_best_first(tmp_path: Path) -> None:
    write_wer_summary(tmp_path / "s.txt", {"beam_size_4": 3.5, "greedy_search": 3.25})
    assert (tmp_path / "s.txt").read_text().splitlines() == ["settings\tWER", "greedy_search\t3.25", "beam_size_4\t3.5"]


def test_perfect_and_empty_hypotheses(tmp_path: Path) -> None:
    assert save_results(tmp_path, "a", "k", "s", [("u", ["A", "B"], ["A", "B"])]) == 0.0
    assert save_results(tmp_path, "b", "k", "s", [("u", ["A", "B"], [])]) == 100.0


def test_corrupt_errs_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "errs.txt"
    bad.write_text("%WER = 10.00\nErrors: 0 insertions, 0 deletions, 0 substitutions, over 3 reference words (3 correct)\n")
    with pytest.raises(ValueError, match="disagrees"):
        read_error_stats(bad)
