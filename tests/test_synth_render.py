"""Invoice factory rendering: every labelled box holds its word in the PDF, labels are well formed,
printed values read back to the record, long tables continue correctly on the next pages."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoicegen.schema import ENTITIES, NER_LABELS
from invoicegen.synth.dataset import sample_document
from invoicegen.synth.layouts import (
    DOCUMENT_LAYOUTS,
    LAYOUTS,
    RECEIPT_LAYOUTS,
    TILL_LAYOUTS,
    layouts_for_kind,
)
from invoicegen.synth.locales import KINDS, LOCALES, kind_allows
from invoicegen.synth.records import parse_amount, parse_date, parse_percent
from invoicegen.synth.render import labelled_pages, verify_words
from synth_helpers import instances

LOCALE_LIST = list(LOCALES)


def _all_layout_samples():
    """One document per layout, kinds and locales rotating among those the layout and the kind are
    drawn in (every kind, every locale, every layout), and a Malaysian receipt on every till layout."""
    out = []
    for i, layout in enumerate(sorted(LAYOUTS)):
        kinds = [k for k in KINDS if layout in layouts_for_kind(k)]
        kind = kinds[i % len(kinds)]
        locales = [loc for loc in LOCALE_LIST if kind_allows(kind, loc)]
        out.append(sample_document(11, i, kind=kind, locale=locales[i % len(locales)], layout=layout))
    for j, layout in enumerate(TILL_LAYOUTS):
        out.append(sample_document(11, 1000 + j, kind="receipt", locale="en_MY", layout=layout))
    return out


@pytest.fixture(scope="module")
def samples():
    return _all_layout_samples()


def test_layout_inventory():
    assert len(LAYOUTS) >= 30
    assert len(DOCUMENT_LAYOUTS) >= 30 and len(RECEIPT_LAYOUTS) >= 3


def test_every_labelled_box_holds_its_word(samples):
    """The text pypdfium2 finds inside each labelled box is that word: zero mismatches."""
    seen_kinds, seen_locales = set(), set()
    for rec, _fmt, rendered, _rng in samples:
        problems = verify_words(rendered.pdf, rendered.pages)
        assert problems == [], (rendered.layout, rec.kind, rec.locale, problems[:5])
        assert not any(wb.approx for p in rendered.pages for wb in p.words), rendered.layout
        seen_kinds.add(rec.kind)
        seen_locales.add(rec.locale)
    assert seen_kinds == set(KINDS) and seen_locales == set(LOCALES)


def test_labels_are_well_formed_and_cover_every_entity(samples):
    entities = set()
    for rec, _fmt, rendered, _rng in samples:
        pages = labelled_pages(rendered.pages)
        rows_seen: dict[int, int] = {}
        for p in pages:
            n = len(p.words)
            assert n and all(len(x) == n for x in (p.bboxes, p.ner, p.table, p.cell, p.row, p.column))
            prev = "O"
            for k, tag in enumerate(p.ner):
                assert tag in NER_LABELS
                if tag.startswith("I-"):  # IOB2: an I- continues the same entity
                    assert prev[2:] == tag[2:], (rendered.layout, k, prev, tag)
                if tag != "O":
                    entities.add(tag[2:])
                prev = tag
            for k, t in enumerate(p.table):
                if t in ("ROW_B", "ROW_I"):
                    assert p.row[k] >= 0 and p.cell[k] != "O" and p.column[k]
                    rows_seen[p.row[k]] = rows_seen.get(p.row[k], 0) + (t == "ROW_B")
                else:
                    assert p.row[k] == -1
                if t == "HEADER":
                    assert p.cell[k] in ("CELL_B", "CELL_I") and p.column[k]
                if p.ner[k].startswith(("B-ITEM_", "I-ITEM_")):
                    assert t in ("ROW_B", "ROW_I"), (rendered.layout, p.words[k], p.ner[k])
        assert sorted(rows_seen) == list(range(len(rec.items))), rendered.layout
        assert set(rows_seen.values()) == {1}, rendered.layout  # one ROW_B per line item
    assert entities == set(ENTITIES), set(ENTITIES) - entities


def test_printed_dates_and_amounts_parse_back(samples):
    """What the page prints (read from the labelled words) is the record's value, in every locale."""
    checked = set()
    for rec, fmt, rendered, _rng in samples:
        pages = labelled_pages(rendered.pages)
        for text in instances(pages, "INVOICE_DATE"):
            assert parse_date(text.replace(rec.time or "\0", "").strip(), fmt.date_pattern, rec.locale) == rec.date
            checked.add((rec.locale, "date"))
        for text in instances(pages, "DUE_DATE"):
            assert parse_date(text, fmt.date_pattern, rec.locale) == rec.due_date
        for text in instances(pages, "TOTAL_AMOUNT"):
            assert parse_amount(text, rec.locale) == rec.total, (text, rec.total)
            checked.add((rec.locale, "amount"))
        for text in instances(pages, "SUBTOTAL"):
            assert parse_amount(text, rec.locale) == rec.subtotal
        tax_amounts = {t.amount for t in rec.tax_lines} | {rec.tax_amount}
        for text in instances(pages, "TAX_AMOUNT"):
            assert parse_amount(text, rec.locale) in tax_amounts
        for text in instances(pages, "TAX_RATE"):
            assert parse_percent(text.strip("():"), rec.locale) in {t.rate for t in rec.tax_lines}
        amounts = [parse_amount(t, rec.locale) for t in instances(pages, "ITEM_AMOUNT")]
        assert amounts == [it.amount for it in rec.items], rendered.layout
    assert {loc for loc, _ in checked} == set(LOCALES)


def test_multi_page_tables_continue():
    rec, fmt, rendered, _ = sample_document(5, 0, kind="invoice", locale="de_DE", layout="classic-zebra",
                                            n_items=70)
    assert verify_words(rendered.pdf, rendered.pages) == []
    pages = rendered.pages
    assert len(pages) >= 2 and len(rendered.chunks) >= 2
    amounts = [it.amount for it in rec.items]
    running = Decimal(0)
    last_row = -1
    for k, rows in enumerate(rendered.chunks):
        page = pages[k]
        page_rows = sorted({wb.row for wb in page.words if wb.trole == "row"})
        assert page_rows == rows and page_rows[0] == last_row + 1  # row indices continue
        last_row = page_rows[-1]
        assert any(wb.trole == "head" for wb in page.words)  # header repeated on every page
        carry = [wb for wb in page.words if wb.trole == "carry"]
        if k > 0:  # brought forward: the running subtotal of the previous pages, above the rows
            first_row_y = min(wb.bbox[1] for wb in page.words if wb.trole == "row")
            top = [wb for wb in carry if wb.bbox[1] < first_row_y]
            assert parse_amount(top[-1].text, rec.locale) == running
        running += sum((amounts[i] for i in rows), Decimal(0))
        if k < len(rendered.chunks) - 1:  # carried forward at the bottom of the page
            last_row_y = max(wb.bbox[1] for wb in page.words if wb.trole == "row")
            bottom = [wb for wb in carry if wb.bbox[1] > last_row_y]
            assert parse_amount(bottom[-1].text, rec.locale) == running
    assert last_row == len(rec.items) - 1
    lp = labelled_pages(pages)
    assert lp[1].table.count("ROW_B") == len(rendered.chunks[1])
    assert min(r for r in lp[1].row if r >= 0) == rendered.chunks[1][0]


def test_receipts_are_one_narrow_page():
    for i, layout in enumerate(RECEIPT_LAYOUTS + TILL_LAYOUTS):
        _rec, _fmt, rendered, _ = sample_document(3, i, kind="receipt", layout=layout, n_items=12)
        assert len(rendered.pages) == 1
        assert rendered.pages[0].width < 250  # 58-80 mm
