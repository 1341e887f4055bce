"""End to end with the shipped model: files in, validated invoice data out."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from invoicegen.cli import app
from invoicegen.extract.pipeline import Extractor, default_model_path
from invoicegen.schema import ExtractionResult

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "invoicegen" / "samples"
SAMPLE_PDF = SAMPLES / "sample_invoice.pdf"
SAMPLE_SCAN = SAMPLES / "sample_invoice_scan.png"



@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor.load()


def _value(result: ExtractionResult, key: str) -> str | None:
    f = result.fields.get(key)
    return f.value if f else None


def test_shipped_model_reads_the_bundled_sample_invoice(extractor: Extractor) -> None:
    r = extractor.extract(SAMPLE_PDF)
    assert r.document.source == "pdf-text"
    assert _value(r, "invoice_number") == "INV-2024-0117"
    assert _value(r, "invoice_date") == "2024-03-15"
    assert _value(r, "due_date") == "2024-04-14"
    assert _value(r, "currency") == "EUR"
    total = _value(r, "total_amount")
    subtotal = _value(r, "subtotal")
    assert total is not None and subtotal is not None and Decimal(total) > Decimal(subtotal)
    assert len(r.line_items) >= 3
    assert all(it.amount is not None for it in r.line_items)
    # every value points at the page: a box inside the page and a confidence in [0, 1]
    for f in r.fields.values():
        assert 0 <= f.confidence <= 1
        assert 0 <= f.bbox[0] < f.bbox[2] <= 595.3 and 0 <= f.bbox[1] < f.bbox[3] <= 842
    checks = {c.check: c.passed for c in r.validation}
    assert checks.get("line_items_sum_to_subtotal") is True
    assert r.model.name and r.timings_ms["total"] > 0


def test_scanned_sample_goes_through_ocr_and_gives_the_same_key_fields(extractor: Extractor) -> None:
    r = extractor.extract(SAMPLE_SCAN)
    assert r.document.source.startswith("ocr:")
    digital = extractor.extract(SAMPLE_PDF)
    for key in ("invoice_date", "total_amount"):
        assert _value(r, key) == _value(digital, key), key
    # the scan's OCR may confuse a character or two (0/O, 1/i), but it is the same field
    import difflib

    number = _value(r, "invoice_number") or ""
    assert difflib.SequenceMatcher(None, number, "INV-2024-0117").ratio() >= 0.85, number


def test_extract_accepts_bytes_and_reports_hash(extractor: Extractor) -> None:
    data = SAMPLE_PDF.read_bytes()
    r = extractor.extract(data, filename="upload.pdf")
    assert r.document.filename == "upload.pdf"
    import hashlib

    assert r.document.sha256 == hashlib.sha256(data).hexdigest()


def test_cli_extract_writes_json_csv_and_overlays(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["extract", str(SAMPLE_PDF), "--out", str(tmp_path / "json"),
                              "--overlay", str(tmp_path / "overlay")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "json" / "sample_invoice.json").read_text())
    assert data["fields"]["invoice_number"]["value"] == "INV-2024-0117"
    assert (tmp_path / "overlay" / "sample_invoice.page1.png").stat().st_size > 10_000
    res = runner.invoke(app, ["extract", str(SAMPLE_PDF), "--format", "csv"])
    assert res.exit_code == 0
    header, row = res.stdout.strip().splitlines()[:2]
    assert "invoice_number" in header.split(",") and "INV-2024-0117" in row


def test_cli_extract_reports_bad_files_and_keeps_the_good_ones(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\n garbage")
    res = CliRunner().invoke(app, ["extract", str(bad), str(SAMPLE_PDF), "--format", "jsonl"])
    assert res.exit_code == 2
    assert "broken.pdf" in res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [x["document"]["filename"] for x in lines] == ["sample_invoice.pdf"]


def test_default_model_is_shipped_with_its_card() -> None:
    path = default_model_path()
    assert (path / "model.safetensors").stat().st_size < 25 * 1024 * 1024
    card = (path / "README.md").read_text()
    assert "invoicegen train" in card and "F1" in card


HEADLINE_FIELDS = ("invoice_number", "invoice_date", "total_amount", "subtotal", "tax_amount", "currency",
                   "supplier_name", "buyer_name")


def test_held_out_layouts_fields_and_line_items_match_the_ground_truth(extractor: Extractor) -> None:
    """Documents rendered with layouts the model never saw in training."""
    from invoicegen.synth.dataset import sample_document, split_layouts

    test_layouts = sorted(lid for lid, split in split_layouts().items() if split == "test")
    compared = correct = items_gold = items_found = 0
    for i, layout in enumerate(test_layouts[:6]):
        rec, _, rendered, _ = sample_document(991, i, layout=layout, kind="invoice" if "pos" not in layout
                                              else "receipt")
        truth = rec.to_json()
        r = extractor.extract(rendered.pdf, filename=f"{layout}.pdf")
        for key in HEADLINE_FIELDS:
            if truth.get(key) and key in _printed_keys(rendered):
                compared += 1
                got = _value(r, key)
                correct += _same(key, got, truth[key])
        gold_amounts = [it["amount"] for it in truth["line_items"]]
        items_gold += len(gold_amounts)
        got_amounts = [it.amount for it in r.line_items]
        items_found += sum(min(gold_amounts.count(a), got_amounts.count(a)) for a in set(gold_amounts))
    assert compared >= 20
    # measured 36/43 = 0.84 with the shipped model (issue [extract] bar: 0.95): a regression guard, not the goal
    assert correct / compared >= 0.75, f"{correct}/{compared} fields right"
    assert items_found / items_gold >= 0.85, f"{items_found}/{items_gold} line items found"  # measured 52/52


def _printed_keys(rendered) -> set[str]:  # type: ignore[no-untyped-def]
    return {w.entity.lower() for p in rendered.pages for w in p.words if getattr(w, "entity", None)}


def _same(key: str, got: str | None, want: str) -> bool:
    if got is None:
        return False
    if key in ("supplier_name", "buyer_name"):
        return " ".join(got.lower().split()) == " ".join(str(want).lower().split())
    return got == str(want)


def test_table_rows_without_numbers_stay_in_the_table_but_are_not_line_items(realdata: Path,
                                                                              extractor: Extractor) -> None:
    """A real car-rental e-invoice rendering: the model's table takes in "Ort: Frankfurt a. M. km:"
    lines between the items. They stay rows of `tables`, but a line item needs an amount, a
    quantity or a unit price; every billed amount is still an item."""
    from collections import Counter

    from invoicegen.extract.pipeline import ExtractOptions

    doc = "zugferd_corpus/FX_EN16931_XRechnung_samples/EN16931_Miete.pdf"
    gold = {g["doc"]: g for g in map(json.loads, (realdata / "gold_dev.jsonl").read_text().splitlines())}[doc]
    result = extractor.extract(realdata / doc, options=ExtractOptions(embedded=False))
    assert result.line_items
    assert all(it.amount or it.quantity or it.unit_price for it in result.line_items)
    assert any("Ort:" in cell for t in result.tables for row in t.rows for cell in row)
    amounts = Counter(it.amount for it in result.line_items)
    assert not Counter(it["amount"] for it in gold["line_items"]) - amounts
