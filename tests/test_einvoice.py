"""Embedded e-invoice XML (ZUGFeRD / Factur-X / XRechnung): read exactly, located on the page, and
never a way in for hostile XML. Real corpus tests skip cleanly when ../shared/realdata is absent."""

from __future__ import annotations

import io
import json
import time
from decimal import Decimal
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from typer.testing import CliRunner

from invoicegen.cli import app
from invoicegen.document import LoadedDocument, load_document
from invoicegen.extract.einvoice import EInvoiceError, extract_embedded, parse_invoice, parse_xml
from invoicegen.extract.normalize import DocumentContext, normalize_field
from invoicegen.extract.pipeline import ExtractOptions, Extractor
from invoicegen.schema import NO_BOX, ExtractionResult, FieldValue, Page

SAMPLE_PDF = Path(__file__).resolve().parents[1] / "src" / "invoicegen" / "samples" / "sample_invoice.pdf"

# The bundled sample invoice's own values, as a Factur-X (CII D16B) XML would state them.
SAMPLE_CII = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocument><ram:ID>INV-2024-0117</ram:ID><ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20240315</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:SpecifiedTradeProduct><ram:SellerAssignedID>CH-2040</ram:SellerAssignedID>
        <ram:Name>Ergonomic office chair, black</ram:Name></ram:SpecifiedTradeProduct>
      <ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>189.00</ram:ChargeAmount>
      </ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>
      <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="H87">2.0000</ram:BilledQuantity>
      </ram:SpecifiedLineTradeDelivery>
      <ram:SpecifiedLineTradeSettlement>
        <ram:ApplicableTradeTax><ram:RateApplicablePercent>19.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>
        <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>378.00</ram:LineTotalAmount>
        </ram:SpecifiedTradeSettlementLineMonetarySummation>
      </ram:SpecifiedLineTradeSettlement>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:IncludedSupplyChainTradeLineItem>
      <ram:SpecifiedTradeProduct><ram:Name>Standing desk frame, electric</ram:Name></ram:SpecifiedTradeProduct>
      <ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>429.00</ram:ChargeAmount>
      </ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>
      <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="H87">1</ram:BilledQuantity>
      </ram:SpecifiedLineTradeDelivery>
      <ram:SpecifiedLineTradeSettlement>
        <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>429.00</ram:LineTotalAmount>
        </ram:SpecifiedTradeSettlementLineMonetarySummation>
      </ram:SpecifiedLineTradeSettlement>
    </ram:IncludedSupplyChainTradeLineItem>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty><ram:Name>Northwind Office Supplies GmbH</ram:Name>
        <ram:PostalTradeAddress><ram:PostcodeCode>20457</ram:PostcodeCode><ram:LineOne>Hafenstrasse 12</ram:LineOne>
          <ram:CityName>Hamburg</ram:CityName><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
        <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">DE811907980</ram:ID></ram:SpecifiedTaxRegistration>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>Acme Analytics Ltd</ram:Name></ram:BuyerTradeParty>
      <ram:BuyerOrderReferencedDocument><ram:IssuerAssignedID>PO-88213</ram:IssuerAssignedID>
      </ram:BuyerOrderReferencedDocument>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementPaymentMeans><ram:PayeePartyCreditorFinancialAccount>
        <ram:IBANID>DE89370400440532013000</ram:IBANID></ram:PayeePartyCreditorFinancialAccount>
      </ram:SpecifiedTradeSettlementPaymentMeans>
      <ram:ApplicableTradeTax><ram:CalculatedAmount>225.19</ram:CalculatedAmount>
        <ram:RateApplicablePercent>19.00</ram:RateApplicablePercent></ram:ApplicableTradeTax>
      <ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime><udt:DateTimeString format="102">20240414</udt:DateTimeString>
      </ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:LineTotalAmount>1185.20</ram:LineTotalAmount>
        <ram:TaxBasisTotalAmount>1185.20</ram:TaxBasisTotalAmount>
        <ram:TaxTotalAmount currencyID="USD">250.00</ram:TaxTotalAmount>
        <ram:TaxTotalAmount currencyID="EUR">225.19</ram:TaxTotalAmount>
        <ram:GrandTotalAmount>1410.39</ram:GrandTotalAmount>
        <ram:DuePayableAmount>1410.39</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<CrossIndustryInvoice><ExchangedDocument><ID>&lol3;</ID></ExchangedDocument></CrossIndustryInvoice>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>
<CrossIndustryInvoice><ExchangedDocument><ID>&ext;</ID></ExchangedDocument></CrossIndustryInvoice>"""


def with_attachment(xml: bytes, name: str = "factur-x.xml", pdf_bytes: bytes | None = None) -> bytes:
    """The bundled sample PDF (or ``pdf_bytes``) with ``xml`` attached, saved by PDFium."""
    pdf = pdfium.PdfDocument(pdf_bytes or SAMPLE_PDF.read_bytes())
    try:
        pdf.new_attachment(name).set_data(xml)
        buf = io.BytesIO()
        pdf.save(buf)
        return buf.getvalue()
    finally:
        pdf.close()


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor.load()


# ------------------------------------------------------------------------------------------------
# parsing: exact values, hostile XML refused
# ------------------------------------------------------------------------------------------------


def test_cii_values_are_normalised_and_the_header_ignores_line_items() -> None:
    inv = parse_invoice(SAMPLE_CII.encode())
    values = {k: v[1] for k, v in inv.fields.items()}
    assert values["invoice_number"] == "INV-2024-0117"
    assert values["invoice_date"] == "2024-03-15" and values["due_date"] == "2024-04-14"
    assert values["currency"] == "EUR" and values["supplier_tax_id"] == "DE811907980"
    assert values["supplier_address"] == "Hafenstrasse 12, 20457 Hamburg"
    # the tax total in the invoice currency, not the one stated in USD
    assert (values["subtotal"], values["tax_amount"], values["total_amount"]) == ("1185.20", "225.19", "1410.39")
    assert values["tax_rate"] == "19"  # the header's rate, not the line items'
    assert inv.items[0] == {"description": ("Ergonomic office chair, black", "Ergonomic office chair, black"),
                            "sku": ("CH-2040", "CH-2040"), "quantity": ("2.0000", "2"), "unit": ("H87", "pcs"),
                            "unit_price": ("189.00", "189.00"), "tax_rate": ("19.00", "19"),
                            "amount": ("378.00", "378.00")}


def test_ubl_invoice_is_read_too() -> None:
    ubl = b"""<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
      xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
      xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
      <cbc:ID>UBL-7</cbc:ID><cbc:IssueDate>2024-05-02</cbc:IssueDate><cbc:DueDate>2024-06-01</cbc:DueDate>
      <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
      <cac:AccountingSupplierParty><cac:Party><cac:PartyName><cbc:Name>Seller AB</cbc:Name></cac:PartyName>
      </cac:Party></cac:AccountingSupplierParty>
      <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">19.00</cbc:TaxAmount></cac:TaxTotal>
      <cac:LegalMonetaryTotal><cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
        <cbc:TaxInclusiveAmount currencyID="EUR">119.00</cbc:TaxInclusiveAmount>
        <cbc:PayableAmount currencyID="EUR">119.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
      <cac:InvoiceLine><cbc:InvoicedQuantity unitCode="HUR">4</cbc:InvoicedQuantity>
        <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
        <cac:Item><cbc:Name>Consulting</cbc:Name></cac:Item>
        <cac:Price><cbc:PriceAmount currencyID="EUR">25.00</cbc:PriceAmount></cac:Price></cac:InvoiceLine>
    </Invoice>"""
    inv = parse_invoice(ubl)
    assert inv.syntax == "ubl"
    assert {k: v[1] for k, v in inv.fields.items()} == {
        "invoice_number": "UBL-7", "invoice_date": "2024-05-02", "due_date": "2024-06-01", "currency": "EUR",
        "supplier_name": "Seller AB", "subtotal": "100.00", "tax_amount": "19.00", "total_amount": "119.00",
        "amount_due": "119.00"}
    assert {k: v[1] for k, v in inv.items[0].items()} == {
        "description": "Consulting", "quantity": "4", "unit": "h", "unit_price": "25.00", "amount": "100.00"}


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_doctype_and_entities_are_refused_before_any_expansion(xml: bytes) -> None:
    t = time.perf_counter()
    with pytest.raises(EInvoiceError, match="DOCTYPE"):
        parse_xml(xml)
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize("xml", [b"<CrossIndustryInvoice><ExchangedDocument>", b"not xml at all",
                                 b"<a>" * 100 + b"</a>" * 100, b"<Order><ID>1</ID></Order>"],
                         ids=["truncated", "garbage", "too-deep", "not-an-invoice"])
def test_unusable_xml_raises_one_error_type(xml: bytes) -> None:
    with pytest.raises(EInvoiceError):
        parse_invoice(xml)


# ------------------------------------------------------------------------------------------------
# the pipeline: embedded XML wins, anything broken falls back to the model
# ------------------------------------------------------------------------------------------------


def _words_in(page: Page, f: FieldValue) -> list[str]:
    x0, y0, x1, y1 = f.bbox
    return [w.text.strip(",;:") for w in page.words
            if w.bbox[0] >= x0 - 0.01 and w.bbox[1] >= y0 - 0.01 and w.bbox[2] <= x1 + 0.01 and w.bbox[3] <= y1 + 0.01]


def test_embedded_xml_wins_and_its_values_sit_on_their_words(extractor: Extractor) -> None:
    data = with_attachment(SAMPLE_CII.encode())
    r = extractor.extract(data, filename="zugferd.pdf")
    assert r.source == "embedded_xml"
    assert r.timings_ms["model"] == 0
    values = {k: f.value for k, f in r.fields.items()}
    assert values["invoice_number"] == "INV-2024-0117" and values["total_amount"] == "1410.39"
    assert values["supplier_iban"] == "DE89370400440532013000"
    assert all(f.confidence == 1.0 for f in r.fields.values())
    with load_document(data) as doc:
        page = doc.pages[0]
    assert r.fields["invoice_number"].text == "INV-2024-0117"
    assert _words_in(page, r.fields["invoice_number"]) == ["INV-2024-0117"]
    assert r.fields["total_amount"].text == "1,410.39" and r.fields["invoice_date"].text == "15.03.2024"
    assert r.fields["supplier_tax_id"].text == "DE 811 907 980"
    assert r.fields["supplier_iban"].text == "DE89 3704 0044 0532 0130 00"
    for key, f in r.fields.items():
        assert f.bbox != NO_BOX, key
        assert " ".join(_words_in(page, f)).find(f.text.split()[0]) >= 0, key
    assert [it.description for it in r.line_items] == ["Ergonomic office chair, black", "Standing desk frame, electric"]
    for it in r.line_items:
        inside = _words_in(page, FieldValue(value=None, text="", confidence=1, page=0, bbox=it.bbox))
        assert it.amount in inside and inside[0] == (it.description or "").split()[0]
    checks = {c.check: c.passed for c in r.validation}  # validation runs on XML values too
    assert checks["totals_add_up"] and checks["line_item_arithmetic"] and checks["amount_due_consistent"]


@pytest.mark.parametrize("xml", [b"<rsm:CrossIndustryInvoice><broken", BILLION_LAUGHS],
                         ids=["malformed", "doctype"])
def test_unusable_xml_falls_back_to_the_model(extractor: Extractor, xml: bytes,
                                              caplog: pytest.LogCaptureFixture) -> None:
    r = extractor.extract(with_attachment(xml), filename="broken.pdf")
    assert r.source == "model"
    assert r.fields["invoice_number"].value == "INV-2024-0117"  # the model read the page
    assert "factur-x.xml" in caplog.text and "not used" in caplog.text


def test_embedded_off_gives_the_model_path(extractor: Extractor, tmp_path: Path) -> None:
    data = with_attachment(SAMPLE_CII.encode())
    r = extractor.extract(data, options=ExtractOptions(embedded=False))
    assert r.source == "model" and r.timings_ms["model"] > 0
    path = tmp_path / "zugferd.pdf"
    path.write_bytes(data)
    for flag, source in (([], "embedded_xml"), (["--no-embedded"], "model")):
        res = CliRunner().invoke(app, ["extract", str(path), "--format", "jsonl", *flag])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout.splitlines()[-1])["source"] == source


def test_pdf_without_xml_and_other_attachments_are_ignored() -> None:
    plain = load_document(SAMPLE_PDF)
    other = load_document(with_attachment(b"<Order/>", name="order.txt"))
    with plain, other:
        assert extract_embedded(plain) is None and extract_embedded(other) is None


def test_documents_read_in_another_process_still_find_their_xml(tmp_path: Path) -> None:
    """The batch runner's loader processes send only the words; the XML is read from the file again."""
    from invoicegen.deployment.batch_io import ReloadBackend

    path = tmp_path / "zugferd.pdf"
    path.write_bytes(with_attachment(SAMPLE_CII.encode()))
    with load_document(path) as loaded:
        document = loaded.document
    with LoadedDocument(document, ReloadBackend(str(path), len(document.pages), ExtractOptions()), 150) as doc:
        found = extract_embedded(doc)
    assert found is not None and found[1]["invoice_number"].bbox != NO_BOX


# ------------------------------------------------------------------------------------------------
# the real ZUGFeRD / Factur-X corpus (read-only, never copied)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(realdata: Path) -> list[tuple[dict, ExtractionResult | None, list[Page]]]:
    gold = [json.loads(line) for line in (realdata / "gold_dev.jsonl").read_text().splitlines()
            if '"zugferd_corpus"' in line]
    if not gold:
        pytest.skip("no zugferd_corpus documents in the gold file")
    out = []
    for g in gold:
        with load_document(realdata / g["doc"], ocr="none") as doc:
            found = extract_embedded(doc)
            pages = doc.pages
        result = None
        if found is not None:
            _, fields, items = found
            result = ExtractionResult.model_validate({"document": {"filename": g["doc"], "sha256": "",
                                                                   "pages": len(pages), "source": "pdf-text"},
                                                      "fields": fields, "line_items": items,
                                                      "model": {"name": "-", "version": "-"}})
        out.append((g, result, pages))
    return out


TYPED = ("invoice_date", "due_date", "subtotal", "tax_amount", "total_amount")


def _same(key: str, gold: str, value: str | None) -> bool:
    if value is None:
        return False
    if key in ("subtotal", "tax_amount", "total_amount"):
        return Decimal(gold) == Decimal(value)
    return gold == value


def test_real_zugferd_fields_equal_the_gold(corpus: list[tuple[dict, ExtractionResult | None, list[Page]]]) -> None:
    assert all(r is not None for _, r, _ in corpus), "every corpus PDF carries a readable XML"
    fields_ok = sum(all(_same(k, v, r.fields[k].value if k in r.fields else None) for k, v in g["fields"].items())
                    for g, r, _ in corpus if r is not None)
    assert fields_ok >= 0.9 * len(corpus), f"{fields_ok}/{len(corpus)} documents with every gold field right"
    items = [(gi, ri) for g, r, _ in corpus if r is not None and g.get("line_items")
             for gi, ri in zip(g["line_items"], r.line_items, strict=False)]
    matched = sum(gi["description"] == ri.description and Decimal(gi["amount"]) == Decimal(ri.amount or "nan")
                  for gi, ri in items)
    assert items and matched >= 0.85 * len(items), f"{matched}/{len(items)} line items"


def test_real_zugferd_boxes_land_on_the_printed_words(
        corpus: list[tuple[dict, ExtractionResult | None, list[Page]]]) -> None:
    located = total = 0
    for g, r, pages in corpus:
        assert r is not None
        for key in g["fields"]:
            f = r.fields.get(key)
            if f is None:
                continue
            total += 1
            if f.bbox == NO_BOX:
                continue
            located += 1
            inside = _words_in(pages[f.page], f)
            assert f.text.split()[0] in inside, (g["doc"], key, f.text, inside)
            if key in TYPED:  # the printed text reads as the value, in the document's conventions
                ctx = DocumentContext.from_words([w.text for p in pages for w in p.words])
                printed = normalize_field(key.upper(), f.text, ctx) or ""
                assert printed.lstrip("-") == (f.value or "").lstrip("-"), (g["doc"], key, f.text, f.value)
    assert located >= 0.95 * total, f"{located}/{total} gold fields located on the page"
