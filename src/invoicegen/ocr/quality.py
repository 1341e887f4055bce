"""OCR quality against ground-truth text lines with boxes (SROIE task-1 style).

One definition shared by the tests and ``benchmarks/bench_read.py``, so both measure the same:

* Each OCR word goes to the ground-truth (GT) line whose box, widened by half its height on every
  side, contains the word's centre (the smallest such box when several do). The words of a GT line,
  sorted left to right, are its *prediction*.
* A GT line is **found** when its prediction equals the GT text, or is at least ``MATCH_RATIO``
  similar (difflib ratio), after whitespace normalisation and case folding. Case is folded because
  SROIE transcribes everything in upper case, also text printed in lower case.
* **Line recall** = found GT lines / GT lines.
* **CER** = sum of Levenshtein distances between each GT line and its prediction / sum of GT line
  lengths (same normalisation; spaces count). A missed line costs its full length. Text the OCR
  finds outside every GT box (logos, noise) is not counted: SROIE leaves some printed text
  unannotated, and charging for it would punish the better reader.
* GT lines reading ``***`` are SROIE's placeholder for text it did not transcribe (Chinese lines
  on Malaysian receipts): they take part in the assignment, so their words do not spill into
  neighbouring lines, but are not scored.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

Box = tuple[float, float, float, float]

MATCH_RATIO = 0.9
IGNORED_GT = frozenset({"***"})


def normalize(text: str) -> str:
    """Collapse whitespace and fold case (see the module docstring for why)."""
    return " ".join(text.split()).casefold()


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), O(len(a) * len(b)) with two rows."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class LineScore:
    """One GT line: its text, the OCR text found in its box, whether it counts as found, edits."""

    gt: str
    pred: str
    found: bool
    edits: int
    ignored: bool = False


def score_lines(gt_lines: Sequence[tuple[str, Box]], words: Iterable[tuple[str, Box]]) -> list[LineScore]:
    """Score OCR ``words`` against ``gt_lines``; all boxes in the same pixel space."""
    widened = []
    for _, (x0, y0, x1, y1) in gt_lines:
        pad = 0.5 * (y1 - y0)
        widened.append((x0 - pad, y0 - pad, x1 + pad, y1 + pad))
    assigned: list[list[tuple[float, str]]] = [[] for _ in gt_lines]
    for text, (x0, y0, x1, y1) in words:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        best, best_area = -1, 0.0
        for k, (a0, b0, a1, b1) in enumerate(widened):
            if a0 <= cx <= a1 and b0 <= cy <= b1:
                area = (a1 - a0) * (b1 - b0)
                if best < 0 or area < best_area:
                    best, best_area = k, area
        if best >= 0:
            assigned[best].append((x0, text))
    scores = []
    for (gt_text, _), found_words in zip(gt_lines, assigned, strict=True):
        gt = normalize(gt_text)
        pred = normalize(" ".join(t for _, t in sorted(found_words)))
        ok = bool(pred) and (pred == gt or difflib.SequenceMatcher(None, gt, pred).ratio() >= MATCH_RATIO)
        scores.append(LineScore(gt, pred, ok, levenshtein(gt, pred), ignored=gt in IGNORED_GT))
    return scores


def summarize(scores: Sequence[LineScore]) -> tuple[float, float]:
    """``(line recall, CER)`` over the scored lines (empty and ignored GT lines are skipped)."""
    kept = [s for s in scores if s.gt and not s.ignored]
    if not kept:
        return 0.0, 0.0
    recall = sum(s.found for s in kept) / len(kept)
    cer = sum(s.edits for s in kept) / sum(len(s.gt) for s in kept)
    return recall, cer


def read_sroie_lines(path: Path) -> list[tuple[str, Box]]:
    """GT lines of a SROIE ``box/NNN.csv``: ``x1,y1,...,x4,y4,text`` (text may hold commas)."""
    lines = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = raw.split(",", 8)
        if len(parts) < 9:
            continue
        try:
            coords = [float(v) for v in parts[:8]]
        except ValueError:
            continue
        xs, ys = coords[0::2], coords[1::2]
        if parts[8].strip():
            lines.append((parts[8], (min(xs), min(ys), max(xs), max(ys))))
    return lines
