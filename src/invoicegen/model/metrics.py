"""Tagging metrics shared by training and evaluation (seqeval, strict IOB2)."""

from __future__ import annotations

from collections.abc import Sequence

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2


def table_bio(tags: Sequence[str]) -> list[str]:
    """Table roles as IOB2 spans: each line-item row is one ``ROW`` span, each header run a ``HEADER``."""
    out = []
    for i, t in enumerate(tags):
        if t == "ROW_B":
            out.append("B-ROW")
        elif t == "ROW_I":
            out.append("I-ROW")
        elif t == "HEADER":
            out.append("I-HEADER" if i and tags[i - 1] == "HEADER" else "B-HEADER")
        else:
            out.append("O")
    return out


def cell_bio(tags: Sequence[str]) -> list[str]:
    """Cell roles as IOB2 spans of type ``CELL``."""
    return [{"CELL_B": "B-CELL", "CELL_I": "I-CELL"}.get(t, "O") for t in tags]


def span_prf(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Micro precision/recall/F1 over exact spans (seqeval strict IOB2)."""
    kw = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    return {"precision": float(precision_score(gold, pred, **kw)),
            "recall": float(recall_score(gold, pred, **kw)),
            "f1": float(f1_score(gold, pred, **kw))}


def head_scores(gold: dict[str, list[list[str]]], pred: dict[str, list[list[str]]]) -> dict[str, dict[str, float]]:
    """Span P/R/F1 for each head: entities, table rows (``ROW`` spans only) and cells."""
    rows_gold = [[t if t.endswith("ROW") else "O" for t in table_bio(s)] for s in gold["table"]]
    rows_pred = [[t if t.endswith("ROW") else "O" for t in table_bio(s)] for s in pred["table"]]
    return {
        "ner": span_prf(gold["ner"], pred["ner"]),
        "table_row": span_prf(rows_gold, rows_pred),
        "cell": span_prf([cell_bio(s) for s in gold["cell"]], [cell_bio(s) for s in pred["cell"]]),
    }
