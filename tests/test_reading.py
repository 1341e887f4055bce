"""Reading order: lines top down, words left to right, tilted scans straightened."""

from __future__ import annotations

import random

import pytest

from invoicegen.reading import estimate_skew, reading_order
from invoicegen.synth.dataset import GenConfig, generate


def test_reading_order_is_lines_top_down_then_left_right() -> None:
    boxes = [(10, 30, 20, 40), (60, 11, 70, 21), (10, 10, 20, 20), (60, 31, 70, 41)]  # c b a d
    order = list(range(4))
    random.Random(0).shuffle(order)
    shuffled = [boxes[i] for i in order]
    assert [order[i] for i in reading_order(shuffled)] == [2, 1, 0, 3]


def test_skew_is_estimated_and_undone_for_tilted_scans() -> None:
    # two columns of lines on a page tilted by 2 degrees (right side lower): over the width the
    # drift (14 pt) is a whole line pitch
    slope = 0.035
    names, boxes = [], []
    for line in range(6):
        for col, x in enumerate((20, 60, 100, 300, 340, 380)):
            y = 100 + 14 * line + slope * x
            names.append(f"L{line}W{col}")
            boxes.append((x, y, x + 30, y + 10))
    assert estimate_skew(boxes) == pytest.approx(slope, abs=0.003)
    assert [names[i] for i in reading_order(boxes)] == [f"L{line}W{col}" for line in range(6) for col in range(6)]
    assert [names[i] for i in reading_order(boxes, skew=0.0)] != [names[i] for i in reading_order(boxes)]


def test_untilted_page_has_no_skew() -> None:
    boxes = [(x, 100 + 14 * line, x + 30, 110 + 14 * line) for line in range(5) for x in (20, 60, 100, 140)]
    assert estimate_skew(boxes) == 0.0 and reading_order(boxes) == list(range(len(boxes)))


def test_table_rows_of_tilted_synthetic_scans_stay_together(tmp_path) -> None:
    """Every gold table row of scanned / photographed factory pages (tilted up to 6 degrees) is one
    run of words in reading order, so the model can tag it as one span."""
    from invoicegen.model.data import iter_documents

    generate(12, GenConfig(out=tmp_path, seed=5, augment=1.0), workers=1, progress=False)
    rows = together = 0
    for doc in iter_documents(tmp_path):
        assert doc.augmented
        for page in doc.pages:
            position = {src: k for k, src in enumerate(reading_order(page.bboxes))}
            for row in _gold_rows(page.table):
                places = sorted(position[i] for i in row)
                rows += 1
                together += places[-1] - places[0] + 1 == len(places)
    assert rows > 30 and together / rows >= 0.97, (together, rows)


def _gold_rows(table: list[str]) -> list[list[int]]:
    """Word indices of each table row (the page's own word order: ROW_B, then its ROW_I words)."""
    rows: list[list[int]] = []
    for i, tag in enumerate(table):
        if tag == "ROW_B":
            rows.append([i])
        elif tag == "ROW_I" and rows:
            rows[-1].append(i)
    return rows
