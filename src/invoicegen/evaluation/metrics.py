"""Evaluation metrics beyond the training loop's: per-entity span scores with support, the
word-level confusion matrix, field exact match after normalisation, line-item matching.

Span scores are seqeval strict IOB2 (the same spans ``invoicegen.model.metrics`` scores during
training; its micro numbers are reused as they are). Line items are matched with the real-data rule
(``realscore.match_line_items``) so factory and real numbers mean the same thing."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from seqeval.scheme import IOB2, Entities

from invoicegen.evaluation.realscore import match_line_items, norm_id, prf
from invoicegen.model.metrics import head_scores, span_prf
from invoicegen.schema import (
    AMOUNT_ENTITIES,
    COLUMN_ENTITIES,
    DATE_ENTITIES,
    ENTITIES,
    OUTSIDE,
    PERCENT_ENTITIES,
    bio_entity,
)

Span = tuple[str, int, int]
"""(entity type, first word, end word exclusive) in the page's model (reading) order."""

ID_ENTITIES: frozenset[str] = frozenset(
    {"INVOICE_NUMBER", "PO_NUMBER", "SUPPLIER_TAX_ID", "BUYER_TAX_ID", "SUPPLIER_IBAN", "ITEM_SKU"})
NUMBER_ENTITIES: frozenset[str] = AMOUNT_ENTITIES | PERCENT_ENTITIES | {"ITEM_QUANTITY"}


def spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans of one tag sequence exactly as seqeval strict IOB2 counts them (an ``I-X``
    that does not continue a ``B-X``/``I-X`` run belongs to no span)."""
    return [(e.tag, e.start, e.end) for e in Entities([list(tags)], IOB2).entities[0]]


def _round(x: float) -> float:
    return round(float(x), 4)


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Per-entity precision/recall/F1 with support (gold spans) and predicted count, plus the micro
    average (``model.metrics.span_prf``). Entities neither in gold nor predicted are left out."""
    tp: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for g_tags, p_tags in zip(gold, pred, strict=True):
        gs, ps = set(spans(g_tags)), set(spans(p_tags))
        n_gold.update(s[0] for s in gs)
        n_pred.update(s[0] for s in ps)
        tp.update(s[0] for s in gs & ps)
    per_entity = {}
    for ent in [e for e in ENTITIES if n_gold[e] or n_pred[e]]:
        p, r, f = prf(tp[ent], n_gold[ent], n_pred[ent])
        per_entity[ent] = {"precision": _round(p), "recall": _round(r), "f1": _round(f), "support": n_gold[ent],
                           "predicted": n_pred[ent], "correct": tp[ent]}
    micro = {k: _round(v) for k, v in span_prf([list(s) for s in gold], [list(s) for s in pred]).items()}
    micro.update(support=sum(n_gold.values()), predicted=sum(n_pred.values()), correct=sum(tp.values()))
    return {"micro": micro, "per_entity": per_entity}


def structure_scores(gold: Mapping[str, Sequence[Sequence[str]]],
                     pred: Mapping[str, Sequence[Sequence[str]]]) -> dict[str, dict[str, float]]:
    """Span P/R/F1 of the three heads (entities, table rows, cells): ``model.metrics.head_scores``."""
    scores = head_scores({h: [list(s) for s in v] for h, v in gold.items()},
                         {h: [list(s) for s in v] for h, v in pred.items()})
    return {h: {k: _round(v) for k, v in m.items()} for h, m in scores.items()}


# --------------------------------------------------------------------------------------------
# word-level confusion
# --------------------------------------------------------------------------------------------


@dataclass
class Confusion:
    """Word counts by (gold entity type, predicted entity type); ``O`` for words outside entities."""

    labels: list[str]
    counts: list[list[int]]

    def rate(self, i: int, j: int) -> float:
        """Share of gold-``labels[i]`` words predicted as ``labels[j]`` (row-normalised)."""
        total = sum(self.counts[i])
        return self.counts[i][j] / total if total else 0.0

    def top_confused(self, k: int = 10) -> list[dict[str, Any]]:
        """The largest off-diagonal cells: which gold type is most often read as which other."""
        cells = [(self.counts[i][j], i, j) for i in range(len(self.labels)) for j in range(len(self.labels))
                 if i != j and self.counts[i][j]]
        cells.sort(key=lambda c: (-c[0], c[1], c[2]))
        return [{"gold": self.labels[i], "pred": self.labels[j], "words": n, "rate": _round(self.rate(i, j))}
                for n, i, j in cells[:k]]


def word_confusion(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> Confusion:
    """Confusion of entity types per word (B-/I- ignored). Labels: the schema's entities that occur
    in gold or prediction, in schema order, then ``O``."""
    pairs: Counter[tuple[str, str]] = Counter()
    for g, p in zip(gold, pred, strict=True):
        for gt, pt in zip(g, p, strict=True):
            pairs[(bio_entity(gt) or OUTSIDE, bio_entity(pt) or OUTSIDE)] += 1
    seen = {t for pair in pairs for t in pair}
    labels = [e for e in ENTITIES if e in seen] + [OUTSIDE]
    index = {lab: i for i, lab in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for (gt, pt), n in pairs.items():
        counts[index[gt]][index[pt]] += n
    return Confusion(labels, counts)


# --------------------------------------------------------------------------------------------
# fields
# --------------------------------------------------------------------------------------------


def _decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None


def _text_key(value: str) -> str:
    """Case-folded words, punctuation and line breaks as spaces (accents kept)."""
    return " ".join("".join(ch if ch.isalnum() else " " for ch in str(value).casefold()).split())


def values_equal(entity: str, pred: str | None, gold: str | None) -> bool:
    """Exact match of two *normalised* values of ``entity``, up to representation only.

    numbers (amounts, quantities, rates): equal as decimals ("12.5" == "12.50"); dates and currency
    codes: equal strings (case-insensitive); identifiers (numbers, tax ids, IBAN, SKU): equal
    alphanumerics, case-insensitive ("DE 123" == "de123"); everything else (names, addresses,
    terms, phone, e-mail, document type, descriptions): the same words after case folding, with
    punctuation and line breaks as word separators (an address printed "Main St 1, Berlin" is the
    record's "Main St 1\nBerlin"; accents count)."""
    if pred is None or gold is None:
        return pred is None and gold is None
    if entity in NUMBER_ENTITIES:
        a, b = _decimal(pred), _decimal(gold)
        if a is not None and b is not None:
            return a == b
    if entity in DATE_ENTITIES or entity == "CURRENCY":
        return pred.strip().upper() == gold.strip().upper()
    if entity in ID_ENTITIES:
        return norm_id(pred) == norm_id(gold)
    return _text_key(pred) == _text_key(gold)


@dataclass
class FieldOutcome:
    """One header field of one document: gold and predicted value and whether they match."""

    doc: str
    key: str
    entity: str
    gold: str | None
    """Gold value; None for a field the document does not have (a spurious prediction)."""
    pred: str | None
    """Predicted normalised value; None when not predicted or not readable."""
    correct: bool
    predicted: bool = True
    pred_text: str = ""
    gold_text: str = ""


def field_scores(outcomes: Sequence[FieldOutcome]) -> dict[str, Any]:
    """Exact-match accuracy over gold fields, overall and per field key (schema order).

    Also counts predicted fields the document does not have (``spurious``): they do not lower the
    accuracy, which is over gold fields, but show in precision."""
    per: dict[str, list[int]] = {}
    spurious: Counter[str] = Counter()
    for o in outcomes:
        if o.gold is None:
            spurious[o.key] += 1
            continue
        acc = per.setdefault(o.key, [0, 0])
        acc[0] += 1
        acc[1] += o.correct
    order = [e.lower() for e in ENTITIES]
    per_field = {k: {"n": n, "correct": c, "accuracy": _round(c / n) if n else None}
                 for k, (n, c) in sorted(per.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)}
    n = sum(v[0] for v in per.values())
    c = sum(v[1] for v in per.values())
    n_pred = sum(1 for o in outcomes if o.predicted)
    return {"n": n, "correct": c, "accuracy": _round(c / n) if n else None,
            "precision": _round(c / n_pred) if n_pred else None, "predicted": n_pred,
            "spurious": sum(spurious.values()), "per_field": per_field}


# --------------------------------------------------------------------------------------------
# line items
# --------------------------------------------------------------------------------------------


@dataclass
class ItemTally:
    """Line-item counts summed over documents, and per-column agreement of the matched pairs."""

    matched: int = 0
    n_gold: int = 0
    n_pred: int = 0
    docs: int = 0
    columns: dict[str, list[int]] = field(default_factory=dict)

    def add(self, gold_items: Sequence[Mapping[str, Any]], pred_items: Sequence[Mapping[str, Any]]) -> list[
            tuple[int, int, float]]:
        """Match one document's items (amount equal + description similarity, as the real-data
        scorer does); returns the pairs (gold index, predicted index, similarity)."""
        match = match_line_items(list(gold_items), list(pred_items))
        self.matched += match.matched
        self.n_gold += match.n_gold
        self.n_pred += match.n_pred
        self.docs += 1
        for gi, pi, _ in match.pairs:
            g, p = gold_items[gi], pred_items[pi]
            for column, entity in COLUMN_ENTITIES.items():
                if g.get(column) in (None, ""):
                    continue
                acc = self.columns.setdefault(column, [0, 0])
                acc[0] += 1
                acc[1] += values_equal(entity, _str_or_none(p.get(column)), str(g[column]))
        return match.pairs

    def summary(self) -> dict[str, Any]:
        p, r, f = prf(self.matched, self.n_gold, self.n_pred)
        cols = {c: {"n": n, "correct": k, "accuracy": _round(k / n) if n else None}
                for c in COLUMN_ENTITIES if c in self.columns for n, k in [self.columns[c]]}
        return {"docs": self.docs, "gold": self.n_gold, "pred": self.n_pred, "matched": self.matched,
                "precision": _round(p), "recall": _round(r), "f1": _round(f), "columns": cols}


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


_WS = re.compile(r"\s+")


def collapse(text: str) -> str:
    """Whitespace collapsed to single spaces (how printed words compare)."""
    return _WS.sub(" ", text).strip()
