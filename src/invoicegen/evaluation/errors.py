"""Error analysis: every error put in one class, with an example a person can look up.

Three levels, each with its own unit of counting:

* ``entity``: word-tag spans as seqeval strict IOB2 scores them. Every gold span that is not
  predicted exactly gets one class, so missed + wrong_type + wrong_boundary = the spans recall
  lost; a predicted span that touches no gold span is spurious.
* ``field``: header fields after decoding and normalisation (what ``extract`` returns).
* ``line_item``: gold items without a match (missed) and predicted items without one (spurious).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from invoicegen.evaluation.factory import DocEval, PageEval, gold_fields
from invoicegen.evaluation.metrics import FieldOutcome, Span, spans, values_equal
from invoicegen.evaluation.realscore import (
    FIELD_KINDS,
    compare_field,
    indel_similarity,
    norm_text,
    prediction_value,
)
from invoicegen.extract.normalize import DocumentContext, normalize_field

MISSED = "missed"
SPURIOUS = "spurious"
WRONG_TYPE = "wrong_type"
WRONG_BOUNDARY = "wrong_boundary"
NORMALISATION = "normalisation"
OCR = "ocr"
CLASSES: tuple[str, ...] = (MISSED, SPURIOUS, WRONG_TYPE, WRONG_BOUNDARY, NORMALISATION, OCR)

DEFINITIONS: dict[str, str] = {
    MISSED: "Gold has it, nothing was predicted for it: no predicted span touches the gold span "
            "(entity); the field was not extracted (field); a gold line item matched no prediction.",
    SPURIOUS: "Predicted where gold has nothing: a predicted span touching no gold span (entity); a field "
              "the document does not have, or a value read from words that belong to no gold entity "
              "(field); a predicted line item matching no gold item.",
    WRONG_TYPE: "The right words, or some of them, under another type: predicted spans overlapping the gold "
                "span all have a different type (entity); the field was read from words of another gold "
                "entity, or (real data) equals another gold field of the document (field).",
    WRONG_BOUNDARY: "The right type on partly the right words: a predicted span of the gold type overlaps the "
                    "gold span but does not coincide with it (entity); the field's words overlap the gold "
                    "field's words without being them, or (real data) share tokens with the gold value (field).",
    NORMALISATION: "Tagging was right, the value is wrong: the field was read from exactly the words of a gold "
                   "instance but its value is not the truth - the normaliser misread the text, or the record "
                   "states it differently from the print (a tax id without its printed country prefix), or "
                   "the decoder picked or kept one of several instances (one tax line of two) (factory); on "
                   "real data, the printed text scores correct while the normalised value does not. A value "
                   "the decoder derived rather than read (currency from symbols) also counts here.",
    OCR: "The words themselves are wrong: the field was read from exactly the gold words but those words, "
         "as the page gives them, do not read as the truth even with the document's known locale "
         "(factory, augmented scan-look documents only); on real data, an OCR'd document whose "
         "prediction is a near-miss of the gold (character similarity >= 0.8).",
}
"""What each class means (also written into the report)."""


@dataclass
class ErrorCase:
    """One error with enough context to find it: document, page, the printed text involved."""

    level: str
    cls: str
    doc: str
    page: int | None
    entity: str
    text: str = ""
    """Predicted text (or the gold text of a missed item)."""
    gold: str = ""
    """Gold text or value."""
    pred_entity: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _overlaps(a: Span, b: Span) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def entity_errors(page: PageEval) -> list[ErrorCase]:
    """Classify the span errors of one page (gold vs predicted ``ner`` tags)."""
    gold, pred = set(spans(page.gold["ner"])), set(spans(page.pred["ner"]))
    exact = gold & pred
    loose = sorted(pred - exact, key=lambda s: s[1])
    explained: set[Span] = set()
    out = []
    for g in sorted(gold - exact, key=lambda s: s[1]):
        touching = [p for p in loose if _overlaps(g, p)]
        explained.update(touching)
        same = [p for p in touching if p[0] == g[0]]
        cls = WRONG_BOUNDARY if same else (WRONG_TYPE if touching else MISSED)
        shown = same or touching
        out.append(ErrorCase("entity", cls, page.doc_id, page.index, g[0],
                             text=" | ".join(" ".join(page.words[p[1]:p[2]]) for p in shown),
                             gold=" ".join(page.words[g[1]:g[2]]),
                             pred_entity=",".join(sorted({p[0] for p in shown}))))
    for p in loose:
        if p not in explained:
            out.append(ErrorCase("entity", SPURIOUS, page.doc_id, page.index, p[0],
                                 text=" ".join(page.words[p[1]:p[2]]), pred_entity=p[0]))
    return out


def field_errors(doc: DocEval, outcomes: Sequence[FieldOutcome]) -> list[ErrorCase]:
    """Classify the wrong fields of one factory document (see ``DEFINITIONS``)."""
    gold = gold_fields(doc)
    out = []
    ctx: DocumentContext | None = None
    for o in outcomes:
        if o.correct:
            continue
        origin = doc.field_words.get(o.key)
        page_no = doc.pages[origin[0]].index if origin else (doc.result.fields[o.key].page
                                                             if o.key in doc.result.fields else None)
        case = ErrorCase("field", MISSED, doc.id, page_no, o.entity, text=o.pred_text,
                         gold=o.gold if o.gold is not None else "", detail=f"pred={o.pred!r} gold={o.gold!r}")
        if not o.predicted:
            out.append(case)
            continue
        if origin is None:  # derived from the page (currency from symbols), not read from words
            case.cls = NORMALISATION if o.gold is not None else SPURIOUS
            out.append(case)
            continue
        k, words = origin
        here = set(words)
        others = [(e, w) for e, w in doc.pages[k].instances if set(w) & here]
        other_types = sorted({e for e, _ in others if e != o.entity})
        if o.gold is None:
            case.cls = WRONG_TYPE if other_types else SPURIOUS
            case.pred_entity = o.entity
            case.entity = ",".join(other_types) or o.entity
            out.append(case)
            continue
        mine = [w for pg, w in gold[o.key][1] if pg == k]
        if any(set(w) == here for w in mine):
            if ctx is None:
                ctx = DocumentContext.from_words([w for p in doc.pages for w in p.words], locale_hint=doc.locale)
            readable = values_equal(o.entity, normalize_field(o.entity, o.pred_text, ctx), o.gold)
            case.cls = OCR if doc.augmented and not readable else NORMALISATION
        elif any(set(w) & here for w in mine):
            case.cls = WRONG_BOUNDARY
        elif other_types:
            case.cls = WRONG_TYPE
            case.pred_entity = o.entity
            case.entity = o.entity
            case.detail += f" (words of {','.join(other_types)})"
        else:
            case.cls = SPURIOUS
        out.append(case)
    return out


def item_errors(doc: str, gold_items: Sequence[Mapping[str, Any]], pred_items: Sequence[Mapping[str, Any]],
                pairs: Iterable[tuple[int, int, float]]) -> list[ErrorCase]:
    """Unmatched gold items (missed) and unmatched predicted items (spurious)."""
    pairs = list(pairs)
    matched_gold = {i for i, _, _ in pairs}
    matched_pred = {j for _, j, _ in pairs}

    def show(item: Mapping[str, Any]) -> str:
        return f"{item.get('description') or ''} = {item.get('amount')}"

    out = [ErrorCase("line_item", MISSED, doc, None, "LINE_ITEM", gold=show(g))
           for i, g in enumerate(gold_items) if i not in matched_gold]
    out += [ErrorCase("line_item", SPURIOUS, doc, None, "LINE_ITEM", text=show(p))
            for j, p in enumerate(pred_items) if j not in matched_pred]
    return out


# --------------------------------------------------------------------------------------------
# real documents (no word-level gold: classes from values and the printed text)
# --------------------------------------------------------------------------------------------


def _shares_token(a: str, b: str) -> bool:
    ta, tb = set(a.split()), set(b.split())
    return bool({t for t in ta & tb if len(t) > 1}) or (bool(a) and bool(b) and (a in b or b in a))


def real_field_error(field: str, gold: Mapping[str, Any], pred: Mapping[str, Any] | None) -> str:
    """Class of a wrong real-data field (``pred`` is the prediction line, which also carries the
    printed ``text`` and the pages' ``source``)."""
    fields = (pred or {}).get("fields") or {}
    value = prediction_value(fields.get(field))
    if value is None or (isinstance(value, str) and not value.strip()):
        return MISSED
    order = gold.get("date_order")
    gold_value = gold["fields"][field]
    printed = ((pred or {}).get("text") or {}).get(field)
    if printed and compare_field(field, gold_value, printed, order)[0]:
        return NORMALISATION
    for other, other_gold in (gold.get("fields") or {}).items():
        if other != field and other in FIELD_KINDS and FIELD_KINDS[other] == FIELD_KINDS[field] \
                and compare_field(other, other_gold, value, order)[0]:
            return WRONG_TYPE
    p = norm_text(printed or value)
    g = norm_text(gold_value)
    if str((pred or {}).get("source", "")).startswith("ocr") and indel_similarity(p, g) >= 0.8:
        return OCR
    if _shares_token(p, g):
        return WRONG_BOUNDARY
    return SPURIOUS


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------


def summarise(errors: Sequence[ErrorCase], examples: int = 8) -> dict[str, Any]:
    """Counts per level and class, and the first few examples of each (level, class)."""
    counts: dict[str, Counter[str]] = {}
    shown: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for e in errors:
        counts.setdefault(e.level, Counter())[e.cls] += 1
        bucket = shown.setdefault(e.level, {}).setdefault(e.cls, [])
        if len(bucket) < examples:
            bucket.append(e.as_dict())
    return {
        "counts": {lvl: {c: counts[lvl][c] for c in CLASSES if counts[lvl][c]} for lvl in counts},
        "total": {lvl: sum(c.values()) for lvl, c in counts.items()},
        "examples": shown,
        "definitions": DEFINITIONS,
    }
