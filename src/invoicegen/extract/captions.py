"""Header values the model left untagged, read beside their printed captions.

On pages far from the factory's (a till receipt's "05 Mar 2018 18:24", a "TOTAL RM 9.00" line) the
model sometimes tags nothing for a field that is printed plainly. Such a value usually stands after
a caption, and the captions are words the factory itself prints (``synth.locales``: every
language's and locale's wording): so the value is read on the caption's line after it, or right
below it. Only fields the model did not give a readable value are filled this way (the pipeline
reports each fill as a ``repair`` check); and a total the model read off no total line (the cash
handed over, "CASH 50.00") gives way to the amount of a caption that can only mean the total,
unless the model's subtotal and tax add up to it.

Forms (the XRechnung viewer's rendering of an e-invoice, many ERP print-outs) print each party as a
section: a heading naming its role ("Verkäufer", "Käufer/Leistungsempfänger", "Bill To") and a
"Name: ..." line below it. Such a labelled name is explicit, so it replaces what the model tagged
(on these pages the model took a banner or an item for the seller).

A document without a buyer (a till receipt) names its seller at the top, and a company's name ends
in its legal form: when the model's seller carries none and is not printed at the top (a "Like and
Follow Us" banner at the foot), the first top line that does is the seller (``legal_name``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from invoicegen.extract.decode import PagePrediction, amount_continues, id_continues, union_box
from invoicegen.extract.lexicon import caption_index, token
from invoicegen.extract.normalize import DATE_JOINERS, DocumentContext, normalize_field
from invoicegen.extract.validate import totals_add_up
from invoicegen.schema import BBox, FieldValue

# caption keys of the factory whose value is a header field; every other caption only ends a value
CAPTION_FIELDS: dict[str, str] = {
    **dict.fromkeys(("date", "date_receipt", "date_purchase_order", "date_broadcast_order",
                     "date_broadcast_invoice"), "invoice_date"),
    "due_date": "due_date",  # an order's delivery date (due_date_purchase_order) is no due date
    **dict.fromkeys(("number", "number_receipt", "number_credit_note", "number_proforma",
                     "number_broadcast_order", "number_broadcast_invoice"), "invoice_number"),
    **dict.fromkeys(("number_purchase_order", "po_ref", "bc_estimate"), "po_number"),
    **dict.fromkeys(("total", "total_incl_tax", "bc_gross"), "total_amount"),
    "subtotal": "subtotal", "discount": "discount", "tax_total": "tax_amount", "amount_due": "amount_due",
}
ENTITY = {"invoice_date": "INVOICE_DATE", "due_date": "DUE_DATE", "invoice_number": "INVOICE_NUMBER",
          "po_number": "PO_NUMBER", "total_amount": "TOTAL_AMOUNT", "subtotal": "SUBTOTAL", "discount": "DISCOUNT",
          "tax_amount": "TAX_AMOUNT", "amount_due": "AMOUNT_DUE"}
PARTIES = {"supplier_name": "SUPPLIER_NAME", "buyer_name": "BUYER_NAME"}
_PARTY_CAPTIONS = {"supplier_name": frozenset({"vendor"}), "buyer_name": frozenset({"bill_to", "buyer_po"})}
"""The factory's party headings (as caption keys) by the field they head."""
_PARTY_WORDS = {"supplier_name": frozenset({"seller", "verkäufer", "vendeur", "vendedor", "venditore", "verkoper"}),
                "buyer_name": frozenset({"buyer", "käufer", "leistungsempfänger", "acheteur", "comprador",
                                         "acquirente", "koper"})}
"""Party headings of forms the factory does not print (the EN 16931 role names)."""
NAME_LABELS = frozenset({"name", "firma", "company", "nom", "nombre", "nome", "naam"})
"""The label of a party's name line in a form ("Name: Lieferant GmbH")."""
_PARTY_LINES = 4
"""How far below its heading a party's name line may be (after its number, a global id)."""
AMOUNTS = frozenset({"total_amount", "subtotal", "discount", "tax_amount", "amount_due"})
"""Fields read as the rightmost amount of the caption's line."""
_SUMS = ("total_amount", "tax_amount", "subtotal")
"""The amounts of ``totals_add_up``: read beside their captions while the model's do not add up."""
_COLUMN_LINES = 8
"""How far below a row of column captions their table's sum row is looked for."""
_SUM_ROWS = frozenset({"total", "totals", "summe", "gesamt", "totaux"})
"""First words of a table's sum row."""

CAPTION_CONFIDENCE = 0.5
"""The confidence of a value read beside its caption: printed, but not recognised by the model."""

_AMOUNT = re.compile(r"[^\d\s]{0,3}-?\d[\d.,' ]*[.,]\d{2}-?")
"""A printed amount with its cents (a caption's "0446" or "20iU" is no total), after at most a currency."""
_GLUED_CAPTION = re.compile(r"^(?:[^\W\d]+\s?)?:\s*")
"""A caption OCR glued to its value ("DATE:15/06/2017"), or the colon after one."""
_DATE_LIKE = re.compile(r"\d{1,4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{2,4}|\d{1,2}\.?\s+\w{3,}\.?,?\s+\d{2,4}|"
                        r"[^\W\d]{3,}\.?\s+\d{1,2},?\s+\d{4}|\d{8}")


@dataclass(frozen=True)
class Caption:
    keys: frozenset[str]
    start: int  # word indices of the caption on its line
    end: int

    @property
    def field(self) -> str | None:
        """The header field after this caption, when its keys name one ("Total" is also a column
        header, "Net Total" also a subtotal: a field is only filled when the model found none)."""
        fields = {CAPTION_FIELDS[k] for k in self.keys if k in CAPTION_FIELDS}
        return fields.pop() if len(fields) == 1 else None

    @property
    def sure(self) -> bool:
        """Does the caption name its field and nothing else (but a column's header)?"""
        return all(k in CAPTION_FIELDS or k.startswith("col_") for k in self.keys)


@dataclass
class Line:
    words: list[str]
    boxes: list[BBox]
    captions: list[Caption]


def page_lines(pred: PagePrediction) -> list[Line]:
    """The page's words (in reading order) cut into lines, each with its captions (longest match
    first, left to right). A caption word right after another caption is not a caption of its own:
    "Phone Number" is one caption the factory never prints, not "Phone" and an invoice "Number";
    unless a column's gap parts them ("PO Number    Order Date" over their values)."""
    lines: list[Line] = []
    for word, box in zip(pred.words, pred.boxes, strict=True):
        last = lines[-1] if lines else None
        centre = (box[1] + box[3]) / 2
        if last is None or box[0] < last.boxes[-1][0] or not last.boxes[-1][1] <= centre <= last.boxes[-1][3]:
            lines.append(Line([], [], []))
        lines[-1].words.append(word)
        lines[-1].boxes.append(box)
    index = caption_index()
    longest = max(len(k) for k in index)
    for line in lines:
        tokens = [token(w) for w in line.words]
        i = 0
        while i < len(tokens):
            for n in range(min(longest, len(tokens) - i), 0, -1):
                keys = index.get(tuple(tokens[i:i + n]))
                if keys:
                    if not (line.captions and line.captions[-1].end == i and _adjacent(line.boxes[i - 1], line.boxes[i])):
                        line.captions.append(Caption(keys, i, i + n))
                    i += n
                    break
            else:
                i += 1
    return lines


def _adjacent(a: BBox, b: BBox) -> bool:
    """Are two words of a line one phrase: closer than their height (not two columns' captions)?"""
    return b[0] - a[2] < max(a[3] - a[1], b[3] - b[1])


def _value_places(lines: Sequence[Line], k: int, cap: Caption, field: str) -> list[list[tuple[str, BBox]]]:
    """Where a caption's value may be printed, in order: the words after it on its line, up to the
    next caption (a total: to the end of the line, "Total Excl.6% GST RM 15.00"); then the words of
    the line below, under the caption (an amount: the whole line, "Total Incl. GST@6% RM / 37.10",
    unless it starts with a caption of its own, "CASH 50.00"; or, under a row of column captions,
    its column only: "Gross Amount  Agency Comm.  Net Amount" over "$250.00  ($37.50)  $212.50",
    and first the column's "Totals" row when one follows within _COLUMN_LINES lines)."""
    line = lines[k]
    stop = len(line.words) if field == "total_amount" else min(
        (c.start for c in line.captions if c.start >= cap.end), default=len(line.words))
    places = [[(w, b) for w, b in zip(line.words[cap.end:stop], line.boxes[cap.end:stop], strict=True) if token(w)]]
    if k + 1 >= len(lines):
        return places
    below = lines[k + 1]
    amount = field in AMOUNTS
    if amount and below.captions and below.captions[0].start == 0:
        return places
    x0, x1 = line.boxes[cap.start][0], line.boxes[cap.end - 1][2]
    column = amount and any(c.start >= cap.end for c in line.captions)
    if not amount:  # a value may start under its caption and run on to the right
        x1 += x1 - x0
    elif not column:
        x0, x1 = -math.inf, math.inf  # the caption ends its line: the whole line below

    def under(ln: Line) -> list[tuple[str, BBox]]:
        return [(w, b) for w, b in zip(ln.words, ln.boxes, strict=True) if b[0] < x1 and b[2] > x0 and token(w)]

    if column:  # a table of amounts: its sum row, if it has one, before its first row
        places += [under(ln) for ln in lines[k + 1:k + 1 + _COLUMN_LINES] if token(ln.words[0]) in _SUM_ROWS][:1]
    places.append(under(below))
    return places


def _read(field: str, words: Sequence[tuple[str, BBox]], ctx: DocumentContext
          ) -> tuple[str, str, BBox] | None:
    """(value, printed text, box) of ``field`` at the start of ``words`` (a total: the rightmost
    amount), or None."""
    entity = ENTITY[field]
    if field in AMOUNTS:
        for i in range(len(words) - 1, -1, -1):
            if not _AMOUNT.fullmatch(words[i][0]):
                continue
            j = i  # with the digit groups before it: "15 776,71"
            while j > 0 and any(ch.isdigit() for ch in words[j - 1][0]) and amount_continues(words[j - 1][0], words[j][0]):
                j -= 1
            return _value(entity, words[j:i + 1], ctx)
        return None
    if field in ("invoice_number", "po_number"):
        n = 1  # with the rest of a number cut after a separator: "XDKE/WZZH/ 723244"
        while n < len(words) and id_continues(" ".join(w for w, _ in words[:n]), words[n][0]):
            n += 1
        text = "".join(w for w, _ in words[:n])
        if not words or not any(ch.isdigit() for ch in text) or len(text.strip(":#")) < 3:
            return None
        return _value(entity, words[:n], ctx)
    return _date_at(words, ctx)


def _value(entity: str, words: Sequence[tuple[str, BBox]], ctx: DocumentContext) -> tuple[str, str, BBox] | None:
    text = " ".join(w for w, _ in words).lstrip(":#")
    value = normalize_field(entity, text, ctx)
    return (value, text, union_box([b for _, b in words])) if value is not None else None


def _date_at(words: Sequence[tuple[str, BBox]], ctx: DocumentContext) -> tuple[str, str, BBox] | None:
    """A whole date (day, month and year) printed in the first 1-3 of ``words``."""
    for n in (1, 2, 3):
        if len(words) < n:
            continue
        text = _GLUED_CAPTION.sub("", " ".join(w for w, _ in words[:n]))
        if not _DATE_LIKE.match(text):
            continue
        value = normalize_field("INVOICE_DATE", text, ctx)
        if value is not None:
            return value, text, union_box([b for _, b in words[:n]])
    return None


@dataclass(frozen=True)
class CaptionValue:
    field: str
    value: FieldValue
    caption: str
    sure: bool = False
    explicit: str = ""
    """Why this value is preferred to the model's (a labelled party name, a dated document number);
    empty: it only fills a field the model left empty (or, a total, one it read off no total line)."""


def wanted_fields(fields: dict[str, FieldValue]) -> set[str]:
    """The fields ``fill_from_captions`` may change: those without a readable value, the total
    unless the subtotal and tax add up to it, and the party names (read only on pages with a name
    label: reading captions costs ~5 ms a page, so only when needed)."""
    wanted = {f for f in ENTITY if fields.get(f) is None or fields[f].value is None} | set(PARTIES)
    if not _confirmed(fields):
        wanted |= set(_SUMS)
    return wanted


def _confirmed(fields: dict[str, FieldValue]) -> bool:
    """Do the model's subtotal and tax add up to its total?"""
    check = totals_add_up(fields)
    return check is not None and check.passed


def caption_values(preds: Sequence[PagePrediction], ctx: DocumentContext,
                   wanted: set[str] | frozenset[str] = frozenset((*ENTITY, *PARTIES))) -> dict[str, list[CaptionValue]]:
    """Values of the ``wanted`` fields read beside captions, per field, in reading order.
    ``invoice_date`` also gets the first whole date of the pages that follows no other date's
    caption (a till receipt prints its date without one)."""
    found: dict[str, list[CaptionValue]] = {}
    loose_date: CaptionValue | None = None
    if not any(token(w) in NAME_LABELS for pred in preds for w in pred.words):
        wanted = set(wanted) - set(PARTIES)  # no form: no page is read only for them
    dated = "invoice_date" in wanted or any(token(w) in DATE_JOINERS for pred in preds for w in pred.words)
    if not wanted and not dated:
        return found
    for pred in preds:
        lines = page_lines(pred)
        if not wanted.isdisjoint(PARTIES):
            for party in _party_names(lines, pred.page, ctx):
                found.setdefault(party.field, []).append(party)
        for k, line in enumerate(lines):
            for cap in line.captions:
                field = cap.field
                caption = " ".join(line.words[cap.start:cap.end])
                if field == "invoice_number" and dated:
                    date = _dated_number(line, cap, caption, pred.page, ctx)
                    found.setdefault("invoice_date", []).extend([date] if date else [])
                if field is None or field not in wanted:
                    continue
                places = _value_places(lines, k, cap, field)
                read = next((r for r in (_read(field, p, ctx) for p in places if p) if r is not None), None)
                if field == "total_amount" and read and not float(read[0]):
                    read = None  # "Gesamtbetrag der Zuschläge 0,00": a sum of nothing, never the total
                if read:
                    value = FieldValue(value=read[0], text=read[1], confidence=CAPTION_CONFIDENCE,
                                       page=pred.page, bbox=read[2])
                    found.setdefault(field, []).append(CaptionValue(field, value, caption, cap.sure))
            if loose_date is None and "invoice_date" in wanted:
                loose_date = _loose_date(line, pred.page, ctx)
    if loose_date is not None:
        found.setdefault("invoice_date", []).append(loose_date)
    return found


def _dated_number(line: Line, cap: Caption, caption: str, page: int, ctx: DocumentContext) -> CaptionValue | None:
    """The date of a title that prints the document's number and date together, "Nr. 471102 vom
    05.03.2018", "Facture n° 12 du 13/11/2017": the number's words, a joiner, then a whole date."""
    rest = list(zip(line.words[cap.end:], line.boxes[cap.end:], strict=True))
    for j, (word, _) in enumerate(rest[:4]):
        if token(word) in DATE_JOINERS:
            if j == 0 or not any(ch.isdigit() for w, _ in rest[:j] for ch in w):
                return None
            read = _date_at(rest[j + 1:], ctx)
            if read is None:
                return None
            value = FieldValue(value=read[0], text=read[1], confidence=CAPTION_CONFIDENCE, page=page, bbox=read[2])
            return CaptionValue("invoice_date", value, f"{caption} {' '.join(w for w, _ in rest[:j + 1])}",
                                sure=True, explicit="the date printed with the document's number")
    return None


def _party_role(line: Line) -> str | None:
    """The party field a section heading line names ("Käufer/Leistungsempfänger": buyer_name), or
    None (not a heading alone on its line, or both roles: "To" heads a bill-to and a vendor block)."""
    roles = set()
    for part in re.split(r"[/&]", " ".join(line.words)):
        tokens = tuple(t for t in (token(w) for w in part.split()) if t)
        if not tokens:
            continue
        keys = caption_index().get(tokens, frozenset())
        role = {f for f, words in _PARTY_WORDS.items() if len(tokens) == 1 and tokens[0] in words}
        role |= {f for f, allowed in _PARTY_CAPTIONS.items() if keys and keys <= allowed}
        if len(role) != 1:
            return None
        roles |= role
    return roles.pop() if len(roles) == 1 else None


def _party_names(lines: Sequence[Line], page: int, ctx: DocumentContext) -> list[CaptionValue]:
    """Names printed as "Name: ..." at most _PARTY_LINES lines below a party's section heading, with
    the lines of a longer name printed above its label in the value's column ("MVM Musterhafter" over
    "Name: Versicherungsverein Musterstadt a.G.")."""
    found: list[CaptionValue] = []
    role, heading, at = None, "", 0
    for k, line in enumerate(lines):
        new_role = _party_role(line)
        if new_role is not None:
            role, heading, at = new_role, " ".join(line.words), k
            continue
        if role is None or k - at > _PARTY_LINES or not _labelled(line) or token(line.words[0]) not in NAME_LABELS:
            continue
        words = [(w, b) for w, b in zip(line.words[1:], line.boxes[1:], strict=True) if w != ":"]
        if words:
            x0, height = words[0][1][0], words[0][1][3] - words[0][1][1]
            for above in lines[k - 1:at:-1]:
                if _labelled(above) or abs(above.boxes[0][0] - x0) > height:
                    break
                words = [*zip(above.words, above.boxes, strict=True), *words]
        read = _value(PARTIES[role], words, ctx) if words else None
        if read:
            value = FieldValue(value=read[0], text=read[1], confidence=CAPTION_CONFIDENCE, page=page, bbox=read[2])
            found.append(CaptionValue(role, value, f"{heading} / {line.words[0]}", sure=True,
                                      explicit="the labelled name"))
        role = None
    return found


_LETTERHEAD_LINES = 8
"""The top lines of a first page where ``legal_name`` looks for the seller (in the top third of its
text, too)."""

LEGAL_FORMS = frozenset({"bhd", "s/b", "ltd", "limited", "gmbh", "mbh", "ag", "kg", "inc", "incorporated", "llc",
                         "llp", "plc", "corp", "corporation", "pty", "pte", "sarl", "sas", "s.a", "s.a.s", "srl",
                         "s.r.l", "spa", "s.p.a", "bv", "b.v", "nv", "n.v", "oy", "ab"})
"""Last words of companies' legal names (as ``lexicon.token`` gives them): Sdn Bhd, Ltd, GmbH, Inc,
S.A., B.V. ... ("Co." and "& Sons" end many a shop's name but also sentences: not here)."""


_LEGAL_WORDS = LEGAL_FORMS | {"sdn", "co", "&", ""}
"""Words of a legal form's line that name no company by themselves ("Sdn Bhd", "Co. Ltd")."""


def _legal_end(words: Sequence[str]) -> int:
    """Words of a name up to and including its last legal form (0: none)."""
    return max((i + 1 for i, w in enumerate(words) if i and token(w) in LEGAL_FORMS), default=0)


def legal_name(fields: dict[str, FieldValue], preds: Sequence[PagePrediction], ctx: DocumentContext
               ) -> tuple[dict[str, FieldValue], list[str]]:
    """A document without a buyer whose seller the model found below the top of the first page and
    gave no legal form (a "Like and Follow Us" banner at a receipt's foot): the first of the page's
    top lines (_LETTERHEAD_LINES) that ends in a legal form, up to it ("UNIHAKKA INTERNATIONAL SDN
    BHD (867388-U)"). Returns the fields and a note when the seller changed."""
    have = fields.get("supplier_name")
    if "buyer_name" in fields or not preds or (have is not None and _legal_end(have.text.split())):
        return fields, []
    lines = page_lines(preds[0])
    if not lines:
        return fields, []
    y0, y1 = lines[0].boxes[0][1], max(b[3] for b in preds[0].boxes)
    top = [ln for ln in lines[:_LETTERHEAD_LINES] if ln.boxes[0][1] < y0 + (y1 - y0) / 3]
    if not top:
        return fields, []
    if have is not None and have.page == preds[0].page and have.bbox[1] <= max(b[3] for ln in top for b in ln.boxes):
        return fields, []  # the model's seller is printed at the top itself (a station's call letters)
    for k, line in enumerate(top):
        end = _legal_end(line.words)
        words = list(zip(line.words[:end], line.boxes[:end], strict=True))
        if end and k and all(token(w) in _LEGAL_WORDS for w in line.words[:end]):  # "NANDO'S ... / SDN BHD"
            words = [*zip(top[k - 1].words, top[k - 1].boxes, strict=True), *words]
        read = _value(PARTIES["supplier_name"], words, ctx) if end else None
        if read:
            value = FieldValue(value=read[0], text=read[1], confidence=CAPTION_CONFIDENCE, page=preds[0].page,
                               bbox=read[2])
            was = f"the model's {have.text!r} has no legal form" if have is not None else "the model tagged none"
            return {**fields, "supplier_name": value}, [f"supplier_name read as the top line with a legal form: "
                                                        f"{read[1]!r} ({was}, and there is no buyer)"]
    return fields, []


def _labelled(line: Line) -> bool:
    """Does a form's line start with a label ("Name:", "Nummer :")?"""
    first = line.words[0]
    return len(first) > 1 and (first.endswith(":") or line.words[1:2] == [":"])


def _loose_date(line: Line, page: int, ctx: DocumentContext) -> CaptionValue | None:
    """The first whole date of a line that has no caption of another date before it."""
    for i in range(len(line.words)):
        before = [c for c in line.captions if c.end <= i]
        if before and before[-1].field not in (None, "invoice_date"):
            continue
        if any(c.start <= i < c.end for c in line.captions):
            continue
        read = _date_at(list(zip(line.words[i:], line.boxes[i:], strict=True)), ctx)
        if read:
            value = FieldValue(value=read[0], text=read[1], confidence=CAPTION_CONFIDENCE, page=page, bbox=read[2])
            return CaptionValue("invoice_date", value, "")
    return None


def fill_from_captions(fields: dict[str, FieldValue], found: dict[str, list[CaptionValue]]
                       ) -> tuple[dict[str, FieldValue], list[str]]:
    """Fields the model gave no readable value, taken from ``found`` (a date or number: the first
    found; a total: the largest, which is the total with tax, not without, nor a column's amount);
    a total that is the amount of no total caption replaced by one of a caption that names only the
    total, unless the model's subtotal and tax add up to it; a value found ``explicit`` (a party
    name labelled under its section heading, the date printed with the document's number) replaces
    the model's. Returns the fields and one note per change."""
    current = dict(fields)
    notes: list[str] = []
    for field in (*ENTITY, *PARTIES):
        have = current.get(field)
        options = found.get(field, [])
        if not options:
            continue
        captioned = {c.value.value for c in options}
        explicit = [c for c in options if c.explicit]
        if explicit:
            pick = explicit[0]
        elif field == "total_amount":
            pick = max(options, key=lambda c: float(c.value.value or 0))
        else:
            pick = options[0]
        if have is not None and have.value is not None:
            if explicit:
                if have.value == pick.value.value:
                    continue
                how = f"the model's {have.text!r} is not {pick.explicit}"
            elif field != "total_amount" or not pick.sure or have.value in captioned or _confirmed(current):
                continue
            else:
                how = f"the model's {have.text!r} is not the amount of a total caption"
        else:
            how = "the model tagged none"
        current[field] = pick.value
        where = (f"under its section heading {pick.caption!r}" if field in PARTIES else
                 f"beside its caption {pick.caption!r}" if pick.caption else "as the first date of the page")
        notes.append(f"{field} read {where}: {pick.value.text!r} ({how})")
    return current, notes


def sums_from_captions(fields: dict[str, FieldValue], found: dict[str, list[CaptionValue]]
                       ) -> tuple[dict[str, FieldValue], list[str]]:
    """While the subtotal and tax do not add up to the total, a captioned tax or subtotal with which
    they do replaces the model's (it read one tax line of two, "19,25" for "Steuerbetrag 56,87").
    For after the tax lines are summed (``validate.sum_tax_lines``), which fixes most such taxes from
    the model's own tags. Returns the fields and a note per change."""
    if _confirmed(fields):
        return fields, []
    for field in ("tax_amount", "subtotal"):
        have = fields.get(field)
        if have is None or have.value is None:  # a missing one was filled, if printed, by fill_from_captions
            continue
        for option in found.get(field, []):
            trial = {**fields, field: option.value}
            if _confirmed(trial):
                return trial, [f"{field} read beside its caption {option.caption!r}: {option.value.text!r} (the "
                               f"model's {have.text!r} does not add up to the total, this does)"]
    return fields, []
