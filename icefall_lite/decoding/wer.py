"""Word error rates and icefall's result files: ``recogs-*``, ``errs-*``, ``wer-summary-*``.

| file | content |
|---|---|
| ``recogs-{set}-{suffix}.txt`` | sorted by cut id, per utterance ``{id}:\\tref=['A', 'B']`` and ``{id}:\\thyp=[...]`` |
| ``errs-{set}-{suffix}.txt`` | ``%WER = 3.15``, an ``Errors: ...`` line, then PER-UTT DETAILS, SUBSTITUTIONS, DELETIONS, INSERTIONS and PER-WORD STATS sections |
| ``wer-summary-{set}-{suffix}.txt`` | ``settings\\tWER`` then ``{key}\\t{wer}`` per setting, best first |

Alignments are kaldialign's Levenshtein alignments; ``WER = 100 * (ins + del + sub) / reference words``.

Usage::

    results = [("cut-1", "HELLO WORLD".split(), "HELLO WORD".split())]
    wer = save_results(res_dir, "test-clean", "greedy_search", suffix, results)    # 50.0
    assert read_recogs(res_dir / f"recogs-test-clean-{suffix}.txt") == results
"""

from __future__ import annotations

import ast
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, TextIO, Tuple

import kaldialign

Result = Tuple[str, List[str], List[str]]
"""(cut id, reference words, hypothesis words)."""
GAP = "*"
_ERRORS_LINE = re.compile(
    r"Errors: (\d+) insertions, (\d+) deletions, (\d+) substitutions, over (\d+) reference words \((\d+) correct\)"
)


@dataclass
class ErrorStats:
    """Error counts over a set of utterances; ``words[w]`` = [correct, substituted in ref, substituted in hyp,
    inserted, deleted] for word w."""

    insertions: int = 0
    deletions: int = 0
    substitutions: int = 0
    num_ref_words: int = 0
    num_correct: int = 0
    substituted_pairs: Counter = field(default_factory=Counter)
    deleted_words: Counter = field(default_factory=Counter)
    inserted_words: Counter = field(default_factory=Counter)
    words: Dict[str, List[int]] = field(default_factory=dict)

    @property
    def num_errors(self) -> int:
        return self.insertions + self.deletions + self.substitutions

    @property
    def wer(self) -> float:
        """Percent, rounded to 2 decimals as in the files (0 for no reference words)."""
        return round(100.0 * self.num_errors / self.num_ref_words, 2) if self.num_ref_words else 0.0

    def _word(self, word: str) -> List[int]:
        return self.words.setdefault(word, [0, 0, 0, 0, 0])

    def add(self, ref: Sequence[str], hyp: Sequence[str]) -> None:
        """Count the errors of one utterance."""
        self.num_ref_words += len(ref)
        for ref_word, hyp_word in kaldialign.align(ref, hyp, GAP):
            if ref_word == GAP:
                self.insertions += 1
                self.inserted_words[hyp_word] += 1
                self._word(hyp_word)[3] += 1
            elif hyp_word == GAP:
                self.deletions += 1
                self.deleted_words[ref_word] += 1
                self._word(ref_word)[4] += 1
            elif ref_word != hyp_word:
                self.substitutions += 1
                self.substituted_pairs[(ref_word, hyp_word)] += 1
                self._word(ref_word)[1] += 1
                self._word(hyp_word)[2] += 1
            else:
                self.num_correct += 1
                self._word(ref_word)[0] += 1


def error_stats(results: Sequence[Result]) -> ErrorStats:
    stats = ErrorStats()
    for _, ref, hyp in results:
        stats.add(ref, hyp)
    return stats


def write_recogs(path: Path, results: Sequence[Result]) -> None:
    """The recogs file: results sorted by cut id, a ref and a hyp line each."""
    with open(path, "w") as f:
        for cut_id, ref, hyp in sorted(results):
            f.write(f"{cut_id}:\tref={ref}\n{cut_id}:\thyp={hyp}\n")


def read_recogs(path: Path) -> List[Result]:
    """Parse a recogs file back into (cut id, ref words, hyp words), in file order."""
    lines = Path(path).read_text().splitlines()
    if len(lines) % 2 != 0:
        raise ValueError(f"{path}: expected pairs of ref/hyp lines, got {len(lines)} lines")
    results = []
    for ref_line, hyp_line in zip(lines[::2], lines[1::2]):
        cut_id, ref = _parse_recogs_line(path, ref_line, "ref")
        hyp_cut_id, hyp = _parse_recogs_line(path, hyp_line, "hyp")
        if hyp_cut_id != cut_id:
            raise ValueError(f"{path}: hyp line of {hyp_cut_id!r} follows the ref line of {cut_id!r}")
        results.append((cut_id, ref, hyp))
    return results


def _parse_recogs_line(path: Path, line: str, kind: str) -> Tuple[str, List[str]]:
    cut_id, separator, words = line.partition(f":\t{kind}=")
    if not separator:
        raise ValueError(f"{path}: expected '<cut id>:\\t{kind}=[...]', got {line!r}")
    return cut_id, list(ast.literal_eval(words))


def _combined_alignment(ref: Sequence[str], hyp: Sequence[str]) -> List[Tuple[str, str]]:
    """The alignment with runs of consecutive errors joined into one (ref phrase, hyp phrase) pair; a side
    with no words is ``*``."""
    groups: List[Tuple[List[str], List[str]]] = []
    previous_was_error = False
    for ref_word, hyp_word in kaldialign.align(ref, hyp, GAP):
        is_error = ref_word != hyp_word
        if is_error and previous_was_error:
            groups[-1][0].append(ref_word)
            groups[-1][1].append(hyp_word)
        else:
            groups.append(([ref_word], [hyp_word]))
        previous_was_error = is_error

    def phrase(words: List[str]) -> str:
        return " ".join(w for w in words if w != GAP) or GAP

    return [(phrase(r), phrase(h)) for r, h in groups]


def write_error_stats(f: TextIO, results: Sequence[Result]) -> ErrorStats:
    """Write icefall's errs file for ``results`` to ``f``; returns the counts."""
    stats = error_stats(results)
    wer = 100.0 * stats.num_errors / stats.num_ref_words if stats.num_ref_words else 0.0
    f.write(f"%WER = {wer:.2f}\n")
    f.write(
        f"Errors: {stats.insertions} insertions, {stats.deletions} deletions, {stats.substitutions} substitutions, "
        f"over {stats.num_ref_words} reference words ({stats.num_correct} correct)\n"
    )
    f.write(
        "Search below for sections starting with PER-UTT DETAILS:, SUBSTITUTIONS:, DELETIONS:, INSERTIONS:, "
        "PER-WORD STATS:\n\n"
    )
    f.write("PER-UTT DETAILS: corr or (ref->hyp)  \n")
    for cut_id, ref, hyp in results:
        pairs = _combined_alignment(ref, hyp)
        f.write(f"{cut_id}:\t" + " ".join(r if r == h else f"({r}->{h})" for r, h in pairs) + "\n")
    f.write("\nSUBSTITUTIONS: count ref -> hyp\n")
    for count, (ref_word, hyp_word) in sorted(((c, pair) for pair, c in stats.substituted_pairs.items()), reverse=True):
        f.write(f"{count}   {ref_word} -> {hyp_word}\n")
    f.write("\nDELETIONS: count ref\n")
    for count, word in sorted(((c, w) for w, c in stats.deleted_words.items()), reverse=True):
        f.write(f"{count}   {word}\n")
    f.write("\nINSERTIONS: count hyp\n")
    for count, word in sorted(((c, w) for w, c in stats.inserted_words.items()), reverse=True):
        f.write(f"{count}   {word}\n")
    f.write("\nPER-WORD STATS: word  corr tot_errs count_in_ref count_in_hyp\n")
    for _, word, (corr, ref_sub, hyp_sub, ins, dels) in sorted(
        ((sum(counts[1:]), w, counts) for w, counts in stats.words.items()), reverse=True
    ):
        f.write(f"{word}   {corr} {ref_sub + hyp_sub + ins + dels} {corr + ref_sub + dels} {corr + hyp_sub + ins}\n")
    return stats


def read_error_stats(path: Path) -> ErrorStats:
    """The totals of an errs file (its first two lines); raises ValueError if they do not parse or disagree."""
    lines = Path(path).read_text().splitlines()
    if len(lines) < 2 or not lines[0].startswith("%WER = "):
        raise ValueError(f"{path}: not an errs file (expected '%WER = ...' on the first line)")
    match = _ERRORS_LINE.fullmatch(lines[1])
    if match is None:
        raise ValueError(f"{path}: second line {lines[1]!r} is not an 'Errors: ...' line")
    ins, dels, subs, num_ref, correct = (int(g) for g in match.groups())
    stats = ErrorStats(insertions=ins, deletions=dels, substitutions=subs, num_ref_words=num_ref, num_correct=correct)
    if abs(stats.wer - float(lines[0][len("%WER = "):])) > 0.005:
        raise ValueError(f"{path}: '{lines[0]}' disagrees with the counts ({stats.wer})")
    return stats


def write_wer_summary(path: Path, wers: Dict[str, float]) -> None:
    """``settings\\tWER`` then one ``key\\twer`` line per setting, lowest WER first."""
    with open(path, "w") as f:
        f.write("settings\tWER\n")
        for key, wer in sorted(wers.items(), key=lambda item: item[1]):
            f.write(f"{key}\t{wer}\n")


def read_wer_summary(path: Path) -> Dict[str, float]:
    lines = Path(path).read_text().splitlines()
    if not lines or lines[0] != "settings\tWER":
        raise ValueError(f"{path}: expected the header 'settings\\tWER'")
    return {key: float(wer) for key, wer in (line.split("\t") for line in lines[1:])}


def save_results(res_dir: Path, test_set_name: str, key: str, suffix: str, results: Sequence[Result]) -> float:
    """Write the three result files of one test set into ``res_dir``; returns the WER (percent)."""
    res_dir.mkdir(parents=True, exist_ok=True)
    results = sorted(results)
    recogs = res_dir / f"recogs-{test_set_name}-{suffix}.txt"
    write_recogs(recogs, results)
    logging.info(f"The transcripts are stored in {recogs}")
    errs = res_dir / f"errs-{test_set_name}-{suffix}.txt"
    with open(errs, "w") as f:
        stats = write_error_stats(f, results)
    logging.info(
        f"[{test_set_name}-{key}] %WER {stats.wer:.2f}% [{stats.num_errors} / {stats.num_ref_words}, "
        f"{stats.insertions} ins, {stats.deletions} del, {stats.substitutions} sub ]"
    )
    logging.info(f"Wrote detailed error stats to {errs}")
    write_wer_summary(res_dir / f"wer-summary-{test_set_name}-{suffix}.txt", {key: stats.wer})
    return stats.wer
