"""Word-level model outputs -> entities, header fields, line items and tables.

Input is one ``PagePrediction`` per page: the page's words in model (reading) order with the three
heads' probabilities. Everything here is geometry and bookkeeping; normalising values is
``normalize.py``'s job and checking them is ``validate.py``'s."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from invoicegen.extract.lexicon import LONGEST_CAPTION, caption_index, token
from invoicegen.extract.normalize import VAT_LENGTHS
from invoicegen.model.bio import (
    beside,
    constrained_viterbi,
    fill_islands,
    group_entities,
    snap_row_starts,
    whole_name_lines,
)
from invoicegen.schema import (
    AMOUNT_ENTITIES,
    CELL_LABELS,
    HEADER_ENTITIES,
    LINE_ITEM_COLUMNS,
    NER_LABEL2ID,
    NER_LABELS,
    TABLE_LABELS,
    BBox,
)


@dataclass
class PagePrediction:
    """A page's words in model order with per-word probabilities for each head."""

    page: int
    words: list[str]
    boxes: list[BBox]
    ner: np.ndarray
    table: np.ndarray
    cell: np.ndarray


@dataclass
class Candidate:
    """One entity instance found on a page."""

    entity: str
    text: str
    confidence: float
    page: int
    bbox: BBox
    words: list[int] = field(default_factory=list)


@dataclass
class RawRow:
    """A table row: its cells (text, x-range) and the entity text found in it per item column."""

    page: int
    bbox: BBox
    confidence: float
    cells: list[tuple[str, float, float]]
    columns: dict[str, str]


@dataclass
class RawTable:
    page: int
    bbox: BBox
    header: list[tuple[str, float, float]]
    rows: list[RawRow]


def union_box(boxes: Sequence[BBox]) -> BBox:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _entity_type_probs(ner: np.ndarray) -> dict[str, np.ndarray]:
    """P(word belongs to entity X) = P(B-X) + P(I-X), for every entity X."""
    out = {}
    for label, idx in NER_LABEL2ID.items():
        if label.startswith("B-"):
            out[label[2:]] = ner[:, idx] + ner[:, NER_LABEL2ID["I-" + label[2:]]]
    return out


_DIGIT_GROUP = re.compile(r"\d{3}(?:[.,]\d{1,2})?[.,]?")
"""The rest of a number printed with a space between digit groups ("12 [638,41]")."""
_NUMBER = re.compile(r"[-(]?\d[\d.,']*\)?-?")
_CURRENCY_MARK = re.compile(r"(?:[A-Z]{3}|[^\w\s]{1,3}|[A-Z]{1,2}\$)")


def amount_continues(text: str, nxt: str) -> bool:
    """Is ``nxt`` the rest of the amount ``text``: the number after a lone currency mark, the next
    digit group, or the currency mark after the number?"""
    if not any(ch.isdigit() for ch in text):
        return bool(_NUMBER.fullmatch(nxt))
    if re.search(r"(?:^|[\s(€$£-])\d{1,3}$", text):
        return bool(_DIGIT_GROUP.fullmatch(nxt))
    return bool(_CURRENCY_MARK.fullmatch(nxt)) and not any(ch.isdigit() for ch in nxt)


def id_continues(text: str, nxt: str) -> bool:
    """Is ``nxt`` the rest of the document number ``text``: after a separator ("XDKE/WZZH/ 723244")
    or after a short letter prefix ("OA 0549/2024")?"""
    if not re.fullmatch(r"[\w/.-]+", nxt) or not any(ch.isdigit() for ch in nxt):
        return False
    return text.endswith(("/", "-")) or bool(re.fullmatch(r"[A-Z]{1,3}", text))


_NAME_STOPS = frozenset({"attn.", "attn", "attention", "c/o", "z.hd.", "z.", "a/a", "att.", "t.a.v."})
"""Words that start a contact person after a party's name ("Acme Ltd Attn. Accounts Payable")."""
_NAME_JOINERS = frozenset({"and", "&", "for", "of", "to", "the", "de", "van", "von", "der", "und", "et", "y", "e"})


def name_continues(text: str, nxt: str) -> bool:
    """Is ``nxt`` the rest of the party name ``text`` on its line ("Committee to Elect Kylie
    [Adams]"): a capitalised word or a joiner, with no digits and no caption colon, after a name
    that does not end in a separator ("ACME GmbH, Main St 5" is a name and its address)?"""
    if (text.endswith((",", ";", ":", "·", "|")) or any(ch.isdigit() for ch in nxt) or nxt.endswith(":")
            or nxt.casefold() in _NAME_STOPS):
        return False
    return nxt[:1].isupper() or nxt.casefold() in _NAME_JOINERS


def name_precedes(prev: str, first: str) -> bool:
    """Is ``prev`` part of the party name that goes on with the word ``first`` on its line? The
    mirror of ``name_continues``: a capitalised word or a joiner that ends in no separator or
    caption colon ("Customer:" is no part of the name)."""
    return name_continues(prev, first) and (prev[:1].isupper() or prev.casefold() in _NAME_JOINERS)


def tax_id_continues(text: str, nxt: str) -> bool:
    """Is ``nxt`` the rest of the VAT number ``text``, printed in groups ("GB 256 3663 [44]",
    "FR84 549 250 [496]"): digits while the number is shorter than its country's?"""
    compact = re.sub(r"[\s.\-]", "", text).upper()
    need = VAT_LENGTHS.get(compact[:2])
    return need is not None and len(compact) - 2 < need and bool(re.fullmatch(r"[0-9A-Z]{1,4}", nxt)) \
        and any(ch.isdigit() for ch in nxt) and len(compact) - 2 + len(nxt) <= need + 3


def phone_continues(text: str, nxt: str) -> bool:
    """Is ``nxt`` the next digit group of the phone number ``text`` ("09-6064 [6611]")?"""
    digits = sum(ch.isdigit() for ch in text)
    return text[-1:].isdigit() and bool(re.fullmatch(r"\d{2,6}", nxt)) and digits + len(nxt) <= 14


_CONTINUES = {**dict.fromkeys(AMOUNT_ENTITIES, amount_continues), "INVOICE_NUMBER": id_continues,
              "PO_NUMBER": id_continues, "SUPPLIER_NAME": name_continues, "BUYER_NAME": name_continues,
              "SUPPLIER_TAX_ID": tax_id_continues, "BUYER_TAX_ID": tax_id_continues,
              "SUPPLIER_PHONE": phone_continues}


def complete_values(tags: Sequence[str], words: Sequence[str], boxes: Sequence[BBox]) -> list[str]:
    """Entity tags (reading order) with amounts and document numbers completed: a value that stops
    inside what is printed takes the next word beside it on the line (tagged ``O``) when that word
    is its rest: "12 [638,41]" (digit groups split by a space), "[US$] 1,250.00", "XDKE/WZZH/
    [723244]"; a lone currency mark also takes the number before it, "[232,89] €". Without it the
    value reads as 12, as nothing, or as half a number."""
    out = list(tags)
    i = 0
    while i < len(out):
        continues = _CONTINUES.get(out[i][2:]) if out[i].startswith("B-") else None
        if continues is None:
            i += 1
            continue
        end = i
        while end + 1 < len(out) and out[end + 1] == f"I-{out[i][2:]}":
            end += 1
        while (end + 1 < len(out) and out[end + 1] == "O" and beside(boxes[end], boxes[end + 1])
               and continues(" ".join(words[i:end + 1]), words[end + 1])):
            end += 1
            out[end] = f"I-{out[i][2:]}"
        if (continues is amount_continues and i > 0 and out[i - 1] == "O" and beside(boxes[i - 1], boxes[i])
                and _NUMBER.fullmatch(words[i - 1]) and not any(ch.isdigit() for ch in words[i:end + 1])):
            out[i - 1], out[i] = out[i], f"I-{out[i][2:]}"  # "232,89 [€]": the number before the mark
        i = end + 1
    return out


def ner_tags(pred: PagePrediction, constrained: bool = False) -> list[str]:
    """Word tags by argmax with one-word holes closed (``fill_islands``), names given their whole
    line (``whole_name_lines``) and amounts and numbers completed (``complete_values``), or by constrained Viterbi
    (valid IOB2 in reading order)."""
    if constrained:
        return [NER_LABELS[i] for i in constrained_viterbi(np.log(pred.ner + 1e-9))]
    tags = whole_name_lines(fill_islands([NER_LABELS[i] for i in pred.ner.argmax(-1)], pred.boxes), pred.boxes)
    return complete_values(tags, pred.words, pred.boxes)


def entity_candidates(pred: PagePrediction, constrained: bool = False) -> list[Candidate]:
    """All entity instances on a page with text (reading order), confidence and box."""
    tags = ner_tags(pred, constrained)
    type_probs = _entity_type_probs(pred.ner)
    cands = []
    for ent in group_entities(tags, pred.boxes):
        conf = float(np.mean(type_probs[ent.type][ent.words]))
        words = _name_start(ent.words, tags, pred) if _CONTINUES.get(ent.type) is name_continues else ent.words
        text = " ".join(pred.words[i] for i in words)
        cands.append(Candidate(ent.type, text, conf, pred.page, union_box([pred.boxes[i] for i in words]), words))
    return cands


def _name_start(words: list[int], tags: Sequence[str], pred: PagePrediction) -> list[int]:
    """A party name with the untagged words before it on its line that start it ("TEO HENG
    [STATIONERY & BOOKS]", "America [First Action Inc]"), up to a caption ("Advertiser Name [Erin
    Perry for Senate]"). After the confidence is taken: the model's own words decide which candidate
    is the name, these only complete it."""
    captions = caption_index()
    start = words[0]
    while (start > 0 and tags[start - 1] == "O" and beside(pred.boxes[start - 1], pred.boxes[start])
           and name_precedes(pred.words[start - 1], pred.words[start])
           and not any(tuple(token(w) for w in pred.words[max(0, start - n):start]) in captions
                       for n in range(1, LONGEST_CAPTION + 1))):
        start -= 1
    return [*range(start, words[0]), *words]


def best_candidates(cands: Sequence[Candidate]) -> dict[str, list[Candidate]]:
    """Header-entity candidates per entity, most confident first (the first one is the field value;
    the others are what validation may fall back to)."""
    out: dict[str, list[Candidate]] = {}
    for c in cands:
        if c.entity in HEADER_ENTITIES:
            out.setdefault(c.entity, []).append(c)
    for lst in out.values():
        lst.sort(key=lambda c: -c.confidence)
    return out


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def _group_cells(indices: Sequence[int], cell_tags: Sequence[str], boxes: Sequence[BBox],
                 words: Sequence[str]) -> list[tuple[str, float, float]]:
    """Cells of one row (or header) from cell roles in reading order. A continuation word joins the
    cell it overlaps most horizontally, so a wrapped description stays one cell even though its
    second line comes after the other cells of the first line."""
    cells: list[list[int]] = []
    for i in indices:
        x0, x1 = boxes[i][0], boxes[i][2]
        if cell_tags[i] == "CELL_B" or not cells:
            cells.append([i])
            continue
        spans = [(min(boxes[j][0] for j in c), max(boxes[j][2] for j in c)) for c in cells]
        best = max(range(len(cells)), key=lambda k: _overlap(x0, x1, *spans[k]))
        if _overlap(x0, x1, *spans[best]) <= 0 and cell_tags[i] != "CELL_I":
            cells.append([i])
        else:
            cells[best].append(i)
    out = []
    for c in cells:
        out.append((" ".join(words[j] for j in c), min(boxes[j][0] for j in c), max(boxes[j][2] for j in c)))
    out.sort(key=lambda t: t[1])
    return out


def table_tags(pred: PagePrediction, ner: Sequence[str] | None = None) -> list[str]:
    """Table roles of a page's words: the table head's argmax, one-word holes in rows closed
    (``fill_islands``), row starts repaired by line geometry and item amounts (``snap_row_starts``)."""
    return snap_row_starts(fill_islands([TABLE_LABELS[i] for i in pred.table.argmax(-1)], pred.boxes), pred.boxes,
                           ner if ner is not None else ner_tags(pred))


_NUMERIC_COLUMNS = {"quantity", "unit_price", "amount", "tax_rate"}


def _column_text(column: str, instances: Sequence[Sequence[str]]) -> str:
    """One text per item column. A numeric column tagged on several pieces of a row ("PP-0080" and
    "24.50" both read as unit price) keeps the last piece that is a number (currency codes and
    symbols allowed), since numbers sit right of codes; otherwise the pieces are joined."""
    texts = [" ".join(words) for words in instances]
    if column in _NUMERIC_COLUMNS and len(texts) > 1:
        numeric = [t for t in texts if re.search(r"\d", t) and not re.search(r"[^\W\d_]", re.sub(r"\b[A-Z]{3}\b", "", t))]
        if numeric:
            return numeric[-1]
    return " ".join(texts)


def page_tables(pred: PagePrediction) -> list[RawTable]:
    """Tables on a page from the table and cell heads; item columns from the ITEM_* entities."""
    ner = ner_tags(pred)
    tags = table_tags(pred, ner)
    cell_tags = [CELL_LABELS[i] for i in pred.cell.argmax(-1)]
    row_conf = pred.table[:, [TABLE_LABELS.index("ROW_B"), TABLE_LABELS.index("ROW_I")]].sum(-1)
    header_words: list[int] = []
    rows: list[list[int]] = []
    for i, tag in enumerate(tags):
        if tag == "HEADER":
            header_words.append(i)
        elif tag == "ROW_B" or (tag == "ROW_I" and not rows):
            rows.append([i])
        elif tag == "ROW_I":
            rows[-1].append(i)
    if not rows:
        return []
    raw_rows = []
    for r in rows:
        columns: dict[str, list[list[str]]] = {}
        prev = ""
        for i in r:
            ent = ner[i][2:]
            if ent in LINE_ITEM_COLUMNS:
                instances = columns.setdefault(LINE_ITEM_COLUMNS[ent], [])
                if not instances or prev != ent:  # "1 234,00" tagged B, B is still one amount
                    instances.append([])
                instances[-1].append(pred.words[i])
            prev = ent
        raw_rows.append(RawRow(pred.page, union_box([pred.boxes[i] for i in r]), float(np.mean(row_conf[r])),
                               _group_cells(r, cell_tags, pred.boxes, pred.words),
                               {k: _column_text(k, v) for k, v in columns.items()}))
    header = _group_cells(header_words, cell_tags, pred.boxes, pred.words) if header_words else []
    all_words = header_words + [i for r in rows for i in r]
    return [RawTable(pred.page, union_box([pred.boxes[i] for i in all_words]), header, raw_rows)]


def align_to_header(row: RawRow, header: Sequence[tuple[str, float, float]]) -> list[str]:
    """A row's cell texts, one per header column (by horizontal overlap); cells in x order without a header."""
    if not header:
        return [c[0] for c in row.cells]
    slots: list[list[str]] = [[] for _ in header]
    for text, x0, x1 in row.cells:
        best = max(range(len(header)), key=lambda k: (_overlap(x0, x1, header[k][1], header[k][2]),
                                                      -abs((x0 + x1) - (header[k][1] + header[k][2]))))
        slots[best].append(text)
    return [" ".join(s) for s in slots]


def join_tables(tables: Sequence[RawTable]) -> list[RawTable]:
    """Join a table that continues on the next page (same header, or none repeated) into one."""
    joined: list[RawTable] = []
    last_page = -2
    for t in tables:
        prev = joined[-1] if joined else None
        if prev is not None and t.page == last_page + 1 and (
                not t.header or [h[0].lower() for h in t.header] == [h[0].lower() for h in prev.header]):
            joined[-1] = RawTable(prev.page, prev.bbox, prev.header or t.header, prev.rows + t.rows)
        else:
            joined.append(t)
        last_page = t.page
    return joined
