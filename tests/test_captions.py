"""Header values the model left untagged, read beside their printed captions (extract/captions.py),
on hand-made pages and end to end on a real till receipt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from invoicegen.extract.captions import (
    CAPTION_CONFIDENCE,
    caption_values,
    fill_from_captions,
    legal_name,
    page_lines,
    sums_from_captions,
)
from invoicegen.extract.decode import PagePrediction, union_box
from invoicegen.extract.normalize import DocumentContext
from invoicegen.extract.pipeline import ExtractOptions, Extractor
from invoicegen.schema import FieldValue


def _page(*lines: str) -> PagePrediction:
    """One line of words per string, 14 pt apart; words 8 pt per character plus a space ("|": a
    column's gap)."""
    words, boxes = [], []
    for k, line in enumerate(lines):
        x = 20.0
        for w in line.split():
            if w == "|":
                x += 60
                continue
            words.append(w)
            boxes.append((x, 40.0 + 14 * k, x + 8 * len(w), 50.0 + 14 * k))
            x += 8 * len(w) + 6
    empty = np.zeros((len(words), 1))
    return PagePrediction(0, words, boxes, empty, empty, empty)


def _fill(page: PagePrediction, fields: dict[str, FieldValue] | None = None,
          ctx: DocumentContext | None = None) -> tuple[dict[str, FieldValue], list[str]]:
    ctx = ctx or DocumentContext.from_words(page.words)
    return fill_from_captions(fields or {}, caption_values([page], ctx))


RECEIPT = _page("UNIHAKKA INTERNATIONAL SDN BHD", "05 Mar 2018 18:24", "Invoice No: CS00031663",
                "Item Qty Amount", "NASI LEMAK 1 9.00", "Total Qty 1", "TOTAL RM 9.00", "CASH RM 10.00",
                "CHANGE RM 1.00")


def test_an_untagged_till_receipt_gets_its_date_number_and_total() -> None:
    fields, notes = _fill(RECEIPT)
    assert {k: v.value for k, v in fields.items()} == {
        "invoice_date": "2018-03-05", "invoice_number": "CS00031663", "total_amount": "9.00"}
    assert all(v.confidence == CAPTION_CONFIDENCE for v in fields.values())
    assert fields["total_amount"].text == "9.00" and fields["total_amount"].page == 0
    assert any("first date of the page" in n for n in notes)
    assert any("'TOTAL RM'" in n and "tagged none" in n for n in notes)


def test_a_total_read_on_the_cash_line_gives_way_to_the_total_caption() -> None:
    cash = FieldValue(value="10.00", text="10.00", confidence=0.9, page=0, bbox=(88, 138, 128, 148))
    fields, notes = _fill(RECEIPT, {"total_amount": cash})
    assert fields["total_amount"].value == "9.00"
    assert notes[-1:] == ["total_amount read beside its caption 'TOTAL RM': '9.00' (the model's '10.00' is not the "
                     "amount of a total caption)"]


def test_an_amount_under_a_row_of_column_captions_is_read_in_its_column() -> None:
    """A US broadcast order's totals: "Gross Amount | Agency Comm. | Net Amount" over their values.
    The gross amount is the one under its caption, not the rightmost of the line (the net amount),
    and in a table of periods the one of its "Totals" row."""
    words = ["Gross", "Amount", "Agency", "Comm.", "Net", "Amount", "$250.00", "($37.50)", "$212.50"]
    boxes = [(100.0, 40.0, 140.0, 50.0), (146.0, 40.0, 194.0, 50.0), (260.0, 40.0, 308.0, 50.0),
             (314.0, 40.0, 354.0, 50.0), (420.0, 40.0, 444.0, 50.0), (450.0, 40.0, 498.0, 50.0),
             (120.0, 54.0, 176.0, 64.0), (270.0, 54.0, 334.0, 64.0), (430.0, 54.0, 486.0, 64.0)]
    empty = np.zeros((len(words), 1))
    page = PagePrediction(0, words, boxes, empty, empty, empty)
    net = FieldValue(value="212.50", text="$212.50", confidence=0.9, page=0, bbox=boxes[-1])
    fields, notes = _fill(page, {"total_amount": net})
    assert fields["total_amount"].value == "250.00" and fields["total_amount"].bbox == boxes[6]
    assert notes == ["total_amount read beside its caption 'Gross Amount': '$250.00' (the model's '$212.50' is not "
                     "the amount of a total caption)"]
    gross = FieldValue(value="250.00", text="$250.00", confidence=0.9, page=0, bbox=boxes[6])
    assert _fill(page, {"total_amount": gross})[0]["total_amount"] is gross

    # two periods and their "Totals" row: the column's sum, not its first period, is the total
    words += ["$175.00", "($26.25)", "$148.75", "Totals", "$425.00", "($63.75)", "$361.25"]
    boxes += [(120.0, 68.0, 176.0, 78.0), (270.0, 68.0, 334.0, 78.0), (430.0, 68.0, 486.0, 78.0),
              (20.0, 82.0, 60.0, 92.0), (120.0, 82.0, 176.0, 92.0), (270.0, 82.0, 334.0, 92.0),
              (430.0, 82.0, 486.0, 92.0)]
    empty = np.zeros((len(words), 1))
    fields, _ = _fill(PagePrediction(0, words, boxes, empty, empty, empty), {"total_amount": gross})
    assert fields["total_amount"].value == "425.00"


def test_the_models_values_stay_when_they_read() -> None:
    model = {"total_amount": FieldValue(value="9.00", text="9.00", confidence=0.8, page=0, bbox=(88, 124, 120, 134)),
             "invoice_date": FieldValue(value="2018-03-06", text="06/03/2018", confidence=0.8, page=0,
                                        bbox=(20, 54, 104, 64))}
    fields, notes = _fill(RECEIPT, model)
    assert fields["total_amount"] is model["total_amount"] and fields["invoice_date"] is model["invoice_date"]
    assert [n.split(" read")[0] for n in notes] == ["invoice_number"]


def test_totals_keep_their_digit_groups_and_skip_item_counts_and_subtotals() -> None:
    page = _page("Sub Total 14 900,00", "Total Qty 3", "Total Incl. GST RM 15 794,00", "Total Excl. GST 14 900,00")
    ctx = DocumentContext(number_convention=DocumentContext.from_words(["1.234,56"]).number_convention)
    fields, _ = _fill(page, ctx=ctx)
    assert fields["total_amount"].value == "15794.00" and fields["total_amount"].text == "15 794,00"


def test_a_total_whose_amount_went_to_the_next_line() -> None:
    fields, _ = _fill(_page("Total Incl. GST@6% RM", "37.10", "CASH RM 50.00"))
    assert fields["total_amount"].value == "37.10"
    fields, _ = _fill(_page("Grand Total", "CASH RM 50.00"))
    assert "total_amount" not in fields  # the next line is the cash's own


def test_a_date_below_its_caption_and_an_orders_number_as_po_number() -> None:
    fields, _ = _fill(_page("PURCHASE ORDER", "PO Number | Order Date", "PO261673 | 2020-03-29",
                            "Delivery Date 2020-04-15"))
    assert fields["po_number"].value == "PO261673" and "invoice_number" not in fields
    assert fields["invoice_date"].value == "2020-03-29"
    assert "due_date" not in fields  # an order's delivery date is not a due date


def test_a_caption_word_after_another_caption_is_part_of_it() -> None:
    lines = page_lines(_page("Phone Number 555-1234"))
    assert [sorted(c.keys) for c in lines[0].captions] == [["phone"]]
    fields, _ = _fill(_page("Phone Number 555-1234"))
    assert "invoice_number" not in fields


def test_no_loose_date_after_another_dates_caption() -> None:
    fields, _ = _fill(_page("Due Date 2024-02-15"))
    assert "invoice_date" not in fields and fields["due_date"].value == "2024-02-15"


def _seller(page: PagePrediction, fields: dict[str, FieldValue]) -> tuple[str | None, list[str]]:
    found, notes = legal_name(fields, [page], DocumentContext.from_words(page.words))
    return (found["supplier_name"].value if "supplier_name" in found else None), notes


def _tagged(page: PagePrediction, words: str, confidence: float = 0.9) -> FieldValue:
    """The model's value: ``words``, where they are printed on ``page``."""
    first = page.words.index(words.split()[0])
    box = union_box(page.boxes[first:first + len(words.split())])
    return FieldValue(value=words, text=words, confidence=confidence, page=0, bbox=box)


def test_a_receipts_seller_is_its_top_line_with_a_legal_form_not_a_banner_at_its_foot() -> None:
    receipt = _page("UNIHAKKA INTERNATIONAL SDN BHD (867388-U)", "12, Jalan Tampoi 7/4", "81200 Johor Bahru",
                    "TAX INVOICE", "NASI LEMAK 1 9.00", "TOTAL RM 9.00", "Like and Follow Us")
    banner = _tagged(receipt, "Like and Follow Us")
    seller, notes = _seller(receipt, {"supplier_name": banner})
    assert seller == "UNIHAKKA INTERNATIONAL SDN BHD"
    assert notes == ["supplier_name read as the top line with a legal form: 'UNIHAKKA INTERNATIONAL SDN BHD' (the "
                     "model's 'Like and Follow Us' has no legal form, and there is no buyer)"]
    assert _seller(receipt, {})[0] == "UNIHAKKA INTERNATIONAL SDN BHD"  # the model tagged none
    # an invoice names a buyer too: its top lines may be anyone's
    buyer = FieldValue(value="ACME", text="ACME", confidence=0.9, page=0, bbox=(20, 40, 60, 50))
    assert _seller(receipt, {"supplier_name": banner, "buyer_name": buyer}) == ("Like and Follow Us", [])

    wrapped = _page("NANDO'S CHICKENLAND MALAYSIA", "SDN BHD", "Lot 1, Jalan Besar", "Thank you")
    assert _seller(wrapped, {"supplier_name": _tagged(wrapped, "Thank you")})[0] == \
        "NANDO'S CHICKENLAND MALAYSIA SDN BHD"


def test_a_seller_printed_at_the_top_stays_without_a_legal_form() -> None:
    """A broadcast order's station ("KRKD-TV") heads the page; the agency below it is no seller."""
    order = _page("KRKD-TV", "Petersen Media Buying, LLC", "1200 Main St", "Order 4711")
    station = _tagged(order, "KRKD-TV")
    assert _seller(order, {"supplier_name": station}) == ("KRKD-TV", [])


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor.load()


@pytest.mark.parametrize("name", ["030", "022"])
def test_real_till_receipts_read_end_to_end(realdata: Path, extractor: Extractor, name: str) -> None:
    """SROIE receipts where the model tags no date (030: "05 Mar 2018") or no total (022)."""
    import json

    gold = {g["doc"]: g for g in map(json.loads, (realdata / "gold_dev.jsonl").read_text().splitlines())}
    doc = f"sroie_zzzdavid_subset/img/{name}.jpg"
    result = extractor.extract(realdata / doc, options=ExtractOptions(embedded=False))
    assert result.fields["invoice_date"].value == gold[doc]["fields"]["invoice_date"]
    assert result.fields["total_amount"].value == gold[doc]["fields"]["total_amount"]


def test_a_real_receipts_seller_is_not_its_banner(realdata: Path, extractor: Extractor) -> None:
    """SROIE 033: the model tags the "Like and Follow" banner at the receipt's foot as the seller."""
    import json

    doc = "sroie_zzzdavid_subset/img/033.jpg"
    gold = {g["doc"]: g for g in map(json.loads, (realdata / "gold_dev.jsonl").read_text().splitlines())}[doc]
    result = extractor.extract(realdata / doc, options=ExtractOptions(embedded=False))
    assert result.fields["supplier_name"].value == gold["fields"]["supplier_name"]


def test_amounts_and_a_broadcast_estimate_beside_their_captions() -> None:
    page = _page("Sous-total HT: 2328,86 €", "Remise 10%: 232,89 €", "Amount Due 2096,00", "Estimate # 4711/B")
    fields, _ = _fill(page, ctx=DocumentContext.from_words(["1.234,56"] + page.words))
    assert {k: fields[k].value for k in ("discount", "amount_due", "po_number")} == {
        "discount": "232.89", "amount_due": "2096.00", "po_number": "4711/B"}


FORM = _page("Beispiel-Rechnungen für ZUGFeRD 2.2", "Verkäufer", "Nummer: 549910", "Name: Lieferant GmbH",
             "Anschrift: Lieferantenstraße 20", "Käufer/Leistungsempfänger", "Nummer: GE2020211",
             "Name: Kunden AG Mitte", "Anschrift: Kundenstraße 15")


def test_a_forms_labelled_party_names_replace_what_the_model_tagged() -> None:
    """The XRechnung viewer's layout: the model took the banner for the seller and found no buyer."""
    banner = FieldValue(value="Beispiel-Rechnungen", text="Beispiel-Rechnungen", confidence=0.7, page=0,
                        bbox=(20, 40, 172, 50))
    fields, notes = _fill(FORM, {"supplier_name": banner})
    assert fields["supplier_name"].value == "Lieferant GmbH"
    assert fields["buyer_name"].value == "Kunden AG Mitte"
    assert fields["supplier_name"].confidence == CAPTION_CONFIDENCE
    assert [n for n in notes if "name" in n.split()[0]] == ["supplier_name read under its section heading 'Verkäufer / Name:': 'Lieferant GmbH' (the "
                     "model's 'Beispiel-Rechnungen' is not the labelled name)",
                                                            "buyer_name read under its section heading "
                                                            "'Käufer/Leistungsempfänger / Name:': 'Kunden AG Mitte' "
                                                            "(the model tagged none)"]
    same = {"supplier_name": FieldValue(value="Lieferant GmbH", text="Lieferant GmbH", confidence=0.9, page=0,
                                        bbox=(66, 82, 180, 92))}
    kept, _ = _fill(FORM, same)
    assert kept["supplier_name"] is same["supplier_name"]


def test_a_name_printed_over_its_label_and_headings_that_name_no_single_party() -> None:
    page = _page("Verkäufer", "Nummer: 549910", "MVM Musterhafter", "Name: Versicherungsverein Musterstadt a.G.",
                 "Anschrift: Musterstr. 12", "To", "Name: Somebody Else", "Käufer", "Nummer: 1", "Kundennummer: 2",
                 "Referenz: 3", "Bestellung: 4", "Name: Too Far Below")
    value_x = page.boxes[page.words.index("Versicherungsverein")][0]
    for i in (page.words.index("MVM"), page.words.index("Musterhafter")):  # in the value's column
        x0, y0, x1, y1 = page.boxes[i]
        page.boxes[i] = (x0 + value_x - 20, y0, x1 + value_x - 20, y1)
    fields, _ = _fill(page)
    assert fields["supplier_name"].value == "MVM Musterhafter Versicherungsverein Musterstadt a.G."
    assert "buyer_name" not in fields  # "To" heads a bill-to and a vendor block; the Käufer's name is 5 lines down


def test_a_real_xrechnung_rendering_gets_its_party_names(realdata: Path, extractor: Extractor) -> None:
    import json

    doc = "zugferd_corpus/FX_EN16931_XRechnung_samples/EN16931_Kraftfahrversicherung_Bruttopreise.pdf"
    gold = {g["doc"]: g for g in map(json.loads, (realdata / "gold_dev.jsonl").read_text().splitlines())}[doc]
    result = extractor.extract(realdata / doc, options=ExtractOptions(embedded=False))
    assert result.fields["supplier_name"].value == gold["fields"]["supplier_name"]
    assert result.fields["buyer_name"].value == gold["fields"]["buyer_name"]


def test_a_totals_block_the_model_misread_is_read_beside_its_captions() -> None:
    """The XRechnung viewer's totals block: the model took a surcharge sum (0,00) for the total and
    one tax line of two (19,25) for the tax. "Bruttosumme" and "Steuerbetrag" are captions the
    factory does not print (READ_ONLY_LABELS)."""
    page = _page("Umsatzsteuer 275,00 7 19,25", "Umsatzsteuer 198,00 19 37,62", "Positionssumme 473,00",
                 "Gesamtbetrag der Zuschläge 0,00", "Rechnungssumme ohne USt. 473,00", "Steuerbetrag 56,87",
                 "Bruttosumme 529,87", "Zahlbetrag 529,87")

    def model(value: str, text: str) -> FieldValue:
        return FieldValue(value=value, text=text, confidence=0.8, page=0, bbox=(20, 40, 60, 50))

    fields = {"subtotal": model("473.00", "473,00"), "tax_amount": model("19.25", "19,25"),
              "total_amount": model("0.00", "0,00")}
    ctx = DocumentContext.from_words(page.words)
    found = caption_values([page], ctx, {"total_amount", "tax_amount", "subtotal"})
    fields, notes = fill_from_captions(fields, found)
    assert fields["total_amount"].value == "529.87" and fields["tax_amount"].value == "19.25"
    fields, sums = sums_from_captions(fields, found)
    assert fields["tax_amount"].value == "56.87" and fields["subtotal"].value == "473.00"
    assert sums == ["tax_amount read beside its caption 'Steuerbetrag': '56,87' (the model's '19,25' does not add "
                    "up to the total, this does)"]
    assert sums_from_captions(fields, found) == (fields, [])  # adding up: nothing to change


def test_the_date_printed_with_the_documents_number_replaces_another_date() -> None:
    """A title "Nr. 471102 vom 05.03.2018": the model took the delivery date below it."""
    page = _page("Handelsrechnung (380) Nr. 471102 vom 05.03.2018", "Liefer- und Leistungsdatum: 01.03.2018",
                 "Bestellung Nr. 4 | 3 Stück")
    delivery = FieldValue(value="2018-03-01", text="01.03.2018", confidence=0.8, page=0, bbox=(200, 54, 280, 64))
    fields, notes = _fill(page, {"invoice_date": delivery})
    assert fields["invoice_date"].value == "2018-03-05"
    assert notes[:1] == ["invoice_date read beside its caption 'Nr. 471102 vom': '05.03.2018' (the model's "
                         "'01.03.2018' is not the date printed with the document's number)"]
    same = {"invoice_date": FieldValue(value="2018-03-05", text="05.03.2018", confidence=0.8, page=0,
                                       bbox=(300, 40, 380, 50))}
    assert _fill(page, same)[0]["invoice_date"] is same["invoice_date"]
