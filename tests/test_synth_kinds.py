"""Locale- and kind-bound documents of the invoice factory: US broadcast ad-buy orders / invoices
(kind ``broadcast_order``, en_US) and Malaysian till receipts (locale ``en_MY``, ringgit, GST, cash
rounding). They render to PDF with exact labels, the labelled total is the right amount, the
arithmetic holds and the project's normaliser reads what they print."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from invoicegen.extract.normalize import DocumentContext, detect_currency, normalize_field
from invoicegen.synth.dataset import GenConfig, generate, sample_document
from invoicegen.synth.layouts import BROADCAST_LAYOUTS, RECEIPT_LAYOUTS, SCHEDULE_COLUMNS, TILL_LAYOUTS
from invoicegen.synth.locales import LOCALES, captions, kind_allows
from invoicegen.synth.records import (
    check_arithmetic,
    choose_kind,
    get_faker,
    make_record,
    parse_amount,
    parse_date,
)
from invoicegen.synth.render import labelled_pages, verify_words
from synth_helpers import instances


@pytest.fixture(scope="module")
def broadcasts():
    return [sample_document(21, i, kind="broadcast_order", locale="en_US", layout=lid)
            for i, lid in enumerate(BROADCAST_LAYOUTS)] + [
        sample_document(22, 0, kind="broadcast_order", locale="en_US", layout=BROADCAST_LAYOUTS[0], n_items=45)]


@pytest.fixture(scope="module")
def my_receipts():
    layouts = RECEIPT_LAYOUTS + TILL_LAYOUTS
    return [sample_document(23, i, kind="receipt", locale="en_MY", layout=layouts[i % len(layouts)])
            for i in range(14)]


def test_kinds_and_locales_are_drawn_only_together():
    assert kind_allows("broadcast_order", "en_US") and not kind_allows("broadcast_order", "de_DE")
    assert kind_allows("receipt", "en_MY") and not kind_allows("invoice", "en_MY")
    rng = random.Random(0)
    assert {choose_kind(rng, locales=["de_DE", "fr_FR"]) for _ in range(300)} >= {"invoice", "receipt"}
    assert "broadcast_order" not in {choose_kind(rng, locales=["de_DE", "en_MY"]) for _ in range(300)}
    assert {choose_kind(rng, locales=["en_MY"]) for _ in range(50)} == {"receipt"}
    with pytest.raises(ValueError):
        make_record(rng, get_faker("de_DE"), "broadcast_order", "de_DE")
    with pytest.raises(ValueError):
        sample_document(1, 0, kind="invoice", layout=BROADCAST_LAYOUTS[0])


def test_broadcast_orders_render_with_exact_labels(broadcasts):
    for rec, fmt, rendered, _ in broadcasts:
        assert verify_words(rendered.pdf, rendered.pages) == [], rendered.layout
        assert check_arithmetic(rec.to_json()) == [], check_arithmetic(rec.to_json())
        b = rec.broadcast
        pages = labelled_pages(rendered.pages)
        # the contract / order / invoice number is the invoice number, the advertiser the buyer
        assert instances(pages, "INVOICE_NUMBER")[:1] == [rec.number]
        assert instances(pages, "BUYER_NAME") == [rec.buyer.name]
        assert instances(pages, "SUPPLIER_NAME")[0] == rec.supplier.name
        assert not instances(pages, "BUYER_ADDRESS")  # the address printed is the agency's
        assert b.agency.name not in instances(pages, "BUYER_NAME")
        assert {parse_date(t, fmt.date_pattern, "en_US") for t in instances(pages, "INVOICE_DATE")} == {rec.date}
        # the gross amount is the total: the sum of the spots' amounts; net = gross - agency commission
        gross = sum((it.amount for it in rec.items), Decimal(0))
        assert [parse_amount(t, "en_US") for t in instances(pages, "TOTAL_AMOUNT")] == [gross] == [rec.total]
        assert rec.commission == (gross * b.commission_pct / 100).quantize(Decimal("0.01"))
        assert [parse_amount(t, "en_US") for t in instances(pages, "AMOUNT_DUE")] == (
            [gross - rec.commission] if b.invoice else [])
        for it in rec.items:
            assert it.amount == it.quantity * it.unit_price
        assert [parse_amount(t, "en_US") for t in instances(pages, "ITEM_AMOUNT")] == [it.amount for it in rec.items]
        assert instances(pages, "ITEM_DESCRIPTION") == [it.description for it in rec.items]
        # one table row per line; schedule columns are cells without an entity
        rows = {r for p in pages for r, t in zip(p.row, p.table, strict=True) if t == "ROW_B"}
        assert rows == set(range(len(rec.items)))
        for p in pages:
            for col, tag, cell in zip(p.column, p.ner, p.cell, strict=True):
                if col in SCHEDULE_COLUMNS:
                    assert tag == "O" and cell != "O"
    assert any(len(r.pages) > 1 for _, _, r, _ in broadcasts)  # long schedules continue on the next page
    assert {r.broadcast.invoice for r, *_ in broadcasts} == {True, False}


def test_malaysian_receipts_label_the_rounded_total_not_cash_or_change(my_receipts):
    seen_rounding = seen_change = 0
    for rec, fmt, rendered, _ in my_receipts:
        assert verify_words(rendered.pdf, rendered.pages) == [], rendered.layout
        js = rec.to_json()
        assert check_arithmetic(js) == [], check_arithmetic(js)
        assert js["currency"] == "MYR" and rec.total % Decimal("0.05") == 0
        assert abs(rec.rounding) <= Decimal("0.02")
        pages = labelled_pages(rendered.pages)
        totals = instances(pages, "TOTAL_AMOUNT")
        assert [parse_amount(t, "en_MY") for t in totals] == [rec.total], (rendered.layout, totals)
        # the total's line lies above the payment and change lines, which carry no entity
        words = [(w, t, b) for p in pages for w, t, b in zip(p.words, p.ner, p.bboxes, strict=True)]
        total_y = next(b[1] for _, t, b in words if t == "B-TOTAL_AMOUNT")
        paid_word, change_word = rec.paid_with.split()[0], captions("en_MY", "change")
        for w, _t, b in words:
            if b[1] > total_y + 1 and (w == paid_word or w.rstrip(":") in {c.split()[0] for c in change_word}):
                line = [tt for _, tt, bb in words if abs(bb[1] - b[1]) < 1]
                assert "B-TOTAL_AMOUNT" not in line and "I-TOTAL_AMOUNT" not in line
        seen_change += rec.tendered is not None and rec.tendered > rec.total
        seen_rounding += rec.rounding != 0
        assert instances(pages, "SUPPLIER_NAME")[0] == rec.supplier.name
        assert all(rec.supplier.reg_no not in t for t in instances(pages, "SUPPLIER_NAME"))
        dates = [t for t in instances(pages, "INVOICE_DATE")]
        assert dates and all(parse_date(t, fmt.date_pattern, "en_MY") == rec.date for t in dates)
        assert 2015 <= rec.date.year <= 2018  # GST years
        if fmt.currency_style == "symbol_before":
            assert all(t.startswith("RM") for t in totals)
    assert seen_rounding and seen_change


def _context_and_checks(rec, rendered):
    pages = labelled_pages(rendered.pages)
    words = [w for p in pages for w in p.words]
    return pages, words, DocumentContext.from_words(words)


def test_printed_values_normalise(broadcasts, my_receipts):
    """MYR/RM receipts and US broadcast orders read back through the project's normaliser, without
    a locale hint: amounts, DD/MM/YYYY or DD-MM-YY dates, M/D/YY dates, currency."""
    for rec, fmt, rendered, _ in broadcasts + my_receipts:
        pages, words, ctx = _context_and_checks(rec, rendered)
        for ent, want in (("TOTAL_AMOUNT", str(rec.total)), ("INVOICE_DATE", rec.date.isoformat()),
                          ("AMOUNT_DUE", str(rec.amount_due)), ("SUBTOTAL", str(rec.subtotal))):
            for text in instances(pages, ent):
                assert normalize_field(ent, text, ctx) == want, (rendered.layout, ent, text, fmt.date_pattern)
        if rec.broadcast:
            assert normalize_field("INVOICE_NUMBER", instances(pages, "INVOICE_NUMBER")[0], ctx) == rec.number
        if fmt.currency_style != "none":
            assert detect_currency(words) == rec.currency
    assert normalize_field("TOTAL_AMOUNT", "RM 1,234.50") == "1234.50"
    assert normalize_field("INVOICE_DATE", "05-02-18", DocumentContext.from_words(["RM12.00", "05-02-18"])) \
        == "2018-02-05"


def test_generate_command_draws_the_new_kinds(tmp_path):
    from invoicegen.cli import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["generate", "--n", "8", "--out", str(out), "--seed", "1", "--kinds",
                                      "broadcast_order,receipt", "--locales", "en_US,en_MY", "--verify",
                                      "--mix", "0.5", "--preview", "2"])
    assert result.exit_code == 0, result.output
    assert "mismatches 0" in result.output.replace("\n", " ")
    docs = [json.loads(x) for x in (out / "documents.jsonl").read_text().splitlines()]
    assert {d["kind"] for d in docs} == {"broadcast_order", "receipt"}
    assert all(d["locale"] == "en_US" for d in docs if d["kind"] == "broadcast_order")
    assert list((out / "preview").glob("*.png"))
    bad = CliRunner().invoke(app, ["generate", "--n", "1", "--out", str(out), "--kinds", "broadcast_order",
                                   "--locales", "de_DE"])
    assert bad.exit_code == 2 and "broadcast_order" in bad.output


def test_composed_layouts_of_the_new_kinds_stay_in_their_family(tmp_path):
    stats = generate(4, GenConfig(out=tmp_path / "mix", seed=5, kinds=["broadcast_order"], locales=list(LOCALES),
                                  mix=1.0, verify=True), workers=1, progress=False)
    assert stats["mismatches"] == 0 and stats["kind"] == {"broadcast_order": 4} and stats["locale"] == {"en_US": 4}
    docs = [json.loads(x) for x in (tmp_path / "mix" / "documents.jsonl").read_text().splitlines()]
    for d in docs:
        columns = {c for p in d["pages"] for c in p["column"] if c}
        assert columns & set(SCHEDULE_COLUMNS), d["layout"]  # a broadcast schedule, not an invoice table
