"""Validation checks on normalised results, and repair from runner-up candidates."""

from __future__ import annotations

import pytest

from invoicegen.extract.normalize import normalize_field
from invoicegen.extract.validate import (
    amount_due_consistent,
    dominant_tax_rate,
    due_after_invoice_date,
    fill_missing_totals,
    iban_checksum,
    line_item_arithmetic,
    line_items_sum_to_subtotal,
    repair,
    repair_item_quantity,
    round_cash_total,
    run_checks,
    sum_tax_lines,
    tax_rate_matches,
    totals_add_up,
    validate,
)
from invoicegen.schema import FieldValue, LineItem, ValidationCheck

GOOD_IBAN = "DE89370400440532013000"
BAD_IBAN = "DE89370400440532013001"


def fv(value: str | None, text: str | None = None, confidence: float = 0.9) -> FieldValue:
    return FieldValue(value=value, text=text or (value or ""), confidence=confidence, page=0,
                      bbox=(0.0, 0.0, 1.0, 1.0))


def fields(**values: str) -> dict[str, FieldValue]:
    return {k: fv(v) for k, v in values.items()}


def items(*rows: tuple[str | None, str | None, str | None]) -> list[LineItem]:
    return [LineItem(description=f"item {i}", quantity=q, unit_price=p, amount=a)
            for i, (q, p, a) in enumerate(rows)]


INVOICE = dict(subtotal="1000.00", tax_rate="19", tax_amount="190.00", total_amount="1190.00",
               amount_due="1190.00", invoice_date="2024-01-15", due_date="2024-02-14",
               supplier_iban=GOOD_IBAN)
ITEMS = items(("2", "250.00", "500.00"), ("4", "125.00", "500.00"))


def _check(result: ValidationCheck | None) -> ValidationCheck:
    assert result is not None
    return result


# --------------------------------------------------------------------------------------------
# each check: passing, failing, skipped without inputs
# --------------------------------------------------------------------------------------------


def test_a_consistent_invoice_passes_everything() -> None:
    checks = run_checks(fields(**INVOICE), ITEMS)
    assert [c.check for c in checks] == [
        "line_item_arithmetic", "line_items_sum_to_subtotal", "totals_add_up", "tax_rate_matches",
        "due_after_invoice_date", "iban_checksum", "amount_due_consistent"]
    assert all(c.passed for c in checks), checks
    assert validate is run_checks


def test_nothing_to_check_reports_nothing() -> None:
    assert run_checks({}, []) == []
    assert run_checks(fields(invoice_number="INV-1", supplier_name="Acme"), []) == []


def test_line_item_arithmetic() -> None:
    ok = _check(line_item_arithmetic(ITEMS))
    assert ok.passed and "2 items" in ok.detail
    bad = _check(line_item_arithmetic(items(("2", "250.00", "500.00"), ("3", "10.00", "35.00"))))
    assert not bad.passed
    assert "item 2" in bad.detail and "30.00" in bad.detail and "35.00" in bad.detail
    # rounding of the unit price to cents: 3 × 33.33 printed as 100.00
    assert _check(line_item_arithmetic(items(("3", "33.33", "100.00")))).passed
    # fractional quantities
    assert _check(line_item_arithmetic(items(("1.5", "12.00", "18.00")))).passed
    # items without quantity or price are not checked
    assert line_item_arithmetic(items((None, None, "500.00"), ("2", None, "10.00"))) is None
    assert line_item_arithmetic([]) is None


def test_line_item_arithmetic_considers_discounts_tax_and_credits() -> None:
    discounted = [LineItem(description="Widget (-10 % Rabatt)", quantity="2", unit_price="50.00",
                           amount="90.00")]
    assert _check(line_item_arithmetic(discounted)).passed
    gross = [LineItem(quantity="2", unit_price="50.00", tax_rate="19", amount="119.00")]
    assert _check(line_item_arithmetic(gross)).passed
    credit = items(("1", "25.00", "-25.00"))
    assert _check(line_item_arithmetic(credit)).passed
    discount_line = items(("1", "-25.00", "-25.00"))
    assert _check(line_item_arithmetic(discount_line)).passed


def test_line_items_as_plain_dicts() -> None:
    rows = [{"quantity": "2", "unit_price": "5.00", "amount": "10.00"}]
    assert _check(line_item_arithmetic(rows)).passed
    assert _check(line_items_sum_to_subtotal({"subtotal": "10.00"}, rows)).passed
    assert _check(line_items_sum_to_subtotal({"subtotal": {"value": "10.00"}}, rows)).passed


def test_line_items_sum_to_subtotal() -> None:
    assert _check(line_items_sum_to_subtotal(fields(**INVOICE), ITEMS)).passed
    bad = _check(line_items_sum_to_subtotal(fields(subtotal="1100.00"), ITEMS))
    assert not bad.passed and "1000.00" in bad.detail and "1100.00" in bad.detail
    # negative discount lines count
    with_credit = items(("1", "100.00", "100.00"), (None, None, "-20.00"))
    assert _check(line_items_sum_to_subtotal(fields(subtotal="80.00"), with_credit)).passed
    # gross line amounts adding up to the total
    gross = _check(line_items_sum_to_subtotal(
        fields(subtotal="1000.00", tax_amount="190.00", total_amount="1190.00"),
        items(("1", "595.00", "595.00"), ("1", "595.00", "595.00"))))
    assert gross.passed and "gross" in gross.detail
    assert line_items_sum_to_subtotal({}, ITEMS) is None
    assert line_items_sum_to_subtotal(fields(subtotal="1.00"), items(("1", "1.00", None))) is None


def test_totals_add_up() -> None:
    assert _check(totals_add_up(fields(**INVOICE))).passed
    full = fields(subtotal="1000.00", discount="-50.00", shipping="25.00", tax_amount="185.25",
                  total_amount="1160.25")
    assert _check(totals_add_up(full)).passed
    bad = _check(totals_add_up(fields(subtotal="1000.00", tax_amount="190.00", total_amount="1500.00")))
    assert not bad.passed and "1190.00" in bad.detail and "1500.00" in bad.detail and "310.00" in bad.detail
    # one cent of rounding is fine
    assert _check(totals_add_up(fields(subtotal="10.00", tax_amount="1.90", total_amount="11.91"))).passed
    # tax included in the subtotal (receipts)
    assert _check(totals_add_up(fields(subtotal="11.90", tax_amount="1.90", total_amount="11.90"))).passed
    # no tax on the page and subtotal = total
    assert _check(totals_add_up(fields(subtotal="100.00", total_amount="100.00"))).passed


def test_totals_add_up_skips_without_inputs() -> None:
    assert totals_add_up(fields(total_amount="100.00")) is None
    assert totals_add_up(fields(subtotal="100.00")) is None
    # a mismatch without a tax amount may only be a tax that was not extracted
    assert totals_add_up(fields(subtotal="100.00", total_amount="119.00")) is None


def test_tax_rate_matches() -> None:
    assert _check(tax_rate_matches(fields(**INVOICE))).passed
    bad = _check(tax_rate_matches(fields(subtotal="1000.00", tax_rate="7", tax_amount="190.00")))
    assert not bad.passed and "70.00" in bad.detail and "190.00" in bad.detail
    # rate printed rounded (8.875 % shown as 8.88 %)
    assert _check(tax_rate_matches(fields(subtotal="1000.00", tax_rate="8.88", tax_amount="88.75"))).passed
    # shipping taxed or not
    assert _check(tax_rate_matches(fields(subtotal="100.00", shipping="10.00", tax_rate="10",
                                          tax_amount="11.00"))).passed
    assert _check(tax_rate_matches(fields(subtotal="100.00", shipping="10.00", tax_rate="10",
                                          tax_amount="10.00"))).passed
    # no subtotal: net = total − tax; VAT included in a gross total
    assert _check(tax_rate_matches(fields(total_amount="119.00", tax_rate="19", tax_amount="19.00"))).passed
    assert tax_rate_matches(fields(tax_rate="19", tax_amount="19.00")) is None
    assert tax_rate_matches(fields(subtotal="100.00", tax_amount="19.00")) is None


def test_tax_rate_with_mixed_item_rates() -> None:
    rows = [LineItem(amount="100.00", tax_rate="19"), LineItem(amount="200.00", tax_rate="7")]
    ok = _check(tax_rate_matches(fields(subtotal="300.00", tax_amount="33.00"), rows))
    assert ok.passed and "7 %" in ok.detail and "19 %" in ok.detail
    assert not _check(tax_rate_matches(fields(subtotal="300.00", tax_amount="57.00"), rows)).passed


def test_due_after_invoice_date() -> None:
    ok = _check(due_after_invoice_date(fields(**INVOICE)))
    assert ok.passed and "30 days" in ok.detail
    assert _check(due_after_invoice_date(fields(invoice_date="2024-01-15", due_date="2024-01-15"))).passed
    bad = _check(due_after_invoice_date(fields(invoice_date="2024-02-14", due_date="2024-01-15")))
    assert not bad.passed and "30 days before" in bad.detail
    assert due_after_invoice_date(fields(invoice_date="2024-01-15")) is None
    assert due_after_invoice_date({"invoice_date": fv(None, "15/01/2024"), "due_date": fv("2024-02-14")}) is None


def test_iban_checksum() -> None:
    assert _check(iban_checksum(fields(supplier_iban=GOOD_IBAN))).passed
    bad = _check(iban_checksum(fields(supplier_iban=BAD_IBAN)))
    assert not bad.passed and "invalid" in bad.detail
    # a value the normaliser could not read: the printed text is checked
    assert not _check(iban_checksum({"supplier_iban": fv(None, "DE89 3704 0044 0532 0130 0X")})).passed
    assert iban_checksum({}) is None


def test_amount_due_consistent() -> None:
    assert _check(amount_due_consistent(fields(**INVOICE))).passed
    partial = _check(amount_due_consistent(fields(total_amount="1190.00", amount_due="190.00")))
    assert partial.passed and "1000.00" in partial.detail
    assert not _check(amount_due_consistent(fields(total_amount="1190.00", amount_due="1500.00"))).passed
    assert amount_due_consistent(fields(total_amount="1190.00")) is None


def test_unreadable_values_are_missing_inputs() -> None:
    assert totals_add_up({"subtotal": fv(None, "n/a"), "total_amount": fv("10.00"),
                          "tax_amount": fv("1.00")}) is None
    assert totals_add_up(fields(subtotal="abc", total_amount="10.00", tax_amount="1.00")) is None


# --------------------------------------------------------------------------------------------
# repair
# --------------------------------------------------------------------------------------------


def test_a_missing_total_is_filled_in_from_the_printed_amount_the_arithmetic_names() -> None:
    printed = [fv("500.00"), fv("500.00"), fv("1000.00", "1.000,00"), fv("190.00"), fv("1190.00", "1.190,00")]
    printed[-1] = printed[-1].model_copy(update={"bbox": (400.0, 700.0, 460.0, 712.0)})
    known = fields(subtotal="1000.00", tax_amount="190.00")
    filled, notes = fill_missing_totals(known, ITEMS, printed)
    assert filled["total_amount"].value == "1190.00" and filled["total_amount"].bbox == (400.0, 700.0, 460.0, 712.0)
    assert notes[0].check == "repair" and "total_amount filled in" in notes[0].detail
    # the subtotal from the items, then the tax from subtotal and total
    filled, notes = fill_missing_totals(fields(total_amount="1190.00"), ITEMS, printed)
    assert (filled["subtotal"].value, filled["tax_amount"].value) == ("1000.00", "190.00") and len(notes) == 2
    # nothing is made up: a value the page does not print stays missing
    filled, notes = fill_missing_totals(known, ITEMS, printed[:4])
    assert "total_amount" not in filled and not notes


def _line(value: str, y: float) -> FieldValue:
    return fv(value).model_copy(update={"bbox": (400.0, y, 460.0, y + 10)})


def test_per_rate_tax_lines_add_up_to_the_tax_amount() -> None:
    # "IVA 22 %: 82,17 € / IVA 10 %: 425,63 €" and no tax total: the document's tax is both lines
    known = {**fields(subtotal="5137.66", tax_rate="22"), "tax_amount": _line("82.17", 700)}
    others = {"tax_amount": [_line("425.63", 712)], "tax_rate": [fv("10")]}
    summed, notes = sum_tax_lines(known, others)
    assert summed["tax_amount"].value == "507.80" and summed["tax_amount"].bbox == (400.0, 700.0, 460.0, 722.0)
    assert notes[0].check == "repair" and "sum of the 2 tax lines" in notes[0].detail
    # a printed tax total among the lines is taken as it is
    lines = {"tax_amount": [_line("12.29", 712), _line("1.65", 724), _line("159.97", 736)]}
    summed, notes = sum_tax_lines({"tax_amount": _line("146.03", 700)}, lines)
    assert summed["tax_amount"].value == "159.97" and not notes
    # one rate (the same tax printed twice) or more amounts than rates: left alone
    twice = {"tax_amount": _line("82.17", 700), "tax_rate": fv("22")}
    assert sum_tax_lines(twice, {"tax_amount": [_line("82.17", 760)]})[0] == twice
    assert sum_tax_lines(known, {"tax_amount": [_line("425.63", 712), _line("9.00", 724)],
                                 "tax_rate": [fv("10")]})[0] == known


def _rate(value: str, y: float) -> FieldValue:
    return fv(value).model_copy(update={"bbox": (300.0, y, 340.0, y + 10)})


def test_the_tax_rate_is_the_rate_of_the_largest_base() -> None:
    # "zzgl. 19 % USt. 6 609,17 € / zzgl. 7 % USt. 1 603,47 €": the model read the 7 % line's rate
    known = {"tax_rate": _rate("7", 712), "tax_amount": _line("1603.47", 712)}
    others = {"tax_rate": [_rate("19", 700)], "tax_amount": [_line("6609.17", 700)]}
    fixed, alternatives, notes = dominant_tax_rate(known, others)
    assert fixed["tax_rate"].value == "19" and fixed["tax_amount"] is known["tax_amount"]
    assert [f.value for f in alternatives["tax_rate"]] == ["7"]  # the tax lines can still be summed
    assert notes[0].check == "repair" and "19 % has the largest base" in notes[0].detail
    # 21 % of 218.98 against 4 % of 7 855.80: the base decides, not the tax
    known = {"tax_rate": _rate("21", 700), "tax_amount": _line("45.99", 700)}
    others = {"tax_rate": [_rate("4", 712)], "tax_amount": [_line("314.23", 712)]}
    assert dominant_tax_rate(known, others)[0]["tax_rate"].value == "4"
    # one rate, or rates without their own tax amount: left alone
    assert dominant_tax_rate(known, {})[0] == known
    assert dominant_tax_rate(known, {"tax_rate": [_rate("4", 760)]})[0] == known


def test_a_cash_total_is_the_rounded_amount_the_till_prints() -> None:
    # "Total incl. GST 33.92 / Rounding -0.02 / TOTAL 33.90": the model read 33.92
    printed = [fv("33.92"), fv("0.02"), _line("33.90", 740), fv("50.00"), fv("16.10")]
    rounded, notes = round_cash_total(fields(total_amount="33.92"), "MYR", printed)
    assert rounded["total_amount"].value == "33.90" and rounded["total_amount"].bbox == (400.0, 740.0, 460.0, 750.0)
    assert "rounded to 0.05 MYR" in notes[0].detail
    # no cash rounding in euros, and nothing is made up when the rounded amount is not printed
    assert round_cash_total(fields(total_amount="33.92"), "EUR", printed)[1] == []
    assert round_cash_total(fields(total_amount="33.92"), "MYR", printed[:2])[1] == []


def test_repair_replaces_the_one_value_that_breaks_an_equation() -> None:
    broken = fields(**{**INVOICE, "total_amount": "1500.00"})
    new_total = fv("1190.00", "1.190,00 €", 0.4)
    repaired, notes = repair(broken, {"total_amount": [new_total], "tax_amount": [fv("500.00")]}, ITEMS)
    assert repaired["total_amount"] is new_total  # the candidate's own text, box and confidence
    assert broken["total_amount"].value == "1500.00"  # input left alone
    assert len(notes) == 1 and notes[0].check == "repair" and notes[0].passed
    assert "total_amount 1500.00 -> 1190.00" in notes[0].detail
    assert "subtotal − discount + shipping + tax" in notes[0].detail
    assert all(c.passed for c in run_checks(repaired, ITEMS))


def test_repair_refuses_when_ambiguous() -> None:
    # without a tax rate, a different tax or a different total would both satisfy the totals
    broken = fields(subtotal="1000.00", tax_amount="190.00", total_amount="1500.00")
    cands = {"total_amount": [fv("1190.00")], "tax_amount": [fv("500.00")]}
    repaired, notes = repair(broken, cands)
    assert repaired["total_amount"].value == "1500.00" and repaired["tax_amount"].value == "190.00"
    assert len(notes) == 1 and not notes[0].passed and "ambiguous" in notes[0].detail
    assert "total_amount 1500.00 -> 1190.00" in notes[0].detail
    assert "tax_amount 190.00 -> 500.00" in notes[0].detail


def test_repair_prefers_the_candidate_supported_by_more_equations() -> None:
    # subtotal misread: 1100.00 breaks both the totals and the item sum; the candidate fixes both,
    # while a total candidate would only fix the totals
    broken = fields(**{**INVOICE, "subtotal": "1100.00", "tax_rate": "0", "tax_amount": "190.00"})
    broken.pop("tax_rate")
    cands = {"subtotal": [fv("1000.00")], "total_amount": [fv("1290.00")]}
    repaired, notes = repair(broken, cands, ITEMS)
    assert repaired["subtotal"].value == "1000.00"
    assert notes[0].passed and "subtotal 1100.00 -> 1000.00" in notes[0].detail


def test_repair_never_breaks_an_equation_that_held() -> None:
    # tax 500 would make the totals add up but break rate × base = tax, which held
    broken = fields(subtotal="1000.00", tax_rate="19", tax_amount="190.00", total_amount="1500.00")
    repaired, notes = repair(broken, {"tax_amount": [fv("1310.00"), fv("500.00")]})
    assert repaired["tax_amount"].value == "190.00"
    assert notes == []


def test_repair_fixes_iban_from_candidate() -> None:
    broken = fields(supplier_iban=BAD_IBAN)
    repaired, notes = repair(broken, {"supplier_iban": [fv("DE00370400440532013000"), fv(GOOD_IBAN)]})
    assert repaired["supplier_iban"].value == GOOD_IBAN
    assert notes[0].passed and "IBAN checksum" in notes[0].detail


def test_repair_without_candidates_or_failures_changes_nothing() -> None:
    good = fields(**INVOICE)
    repaired, notes = repair(good, {"total_amount": [fv("99.00")]}, ITEMS)
    assert repaired == good and notes == []
    broken = fields(**{**INVOICE, "total_amount": "1500.00"})
    repaired, notes = repair(broken, {}, ITEMS)
    assert repaired["total_amount"].value == "1500.00" and notes == []
    # a candidate equal to the current value, or one that fixes nothing, is ignored
    repaired, notes = repair(broken, {"total_amount": [fv("1500.00"), fv("1234.00"), fv(None)]}, ITEMS)
    assert repaired["total_amount"].value == "1500.00" and notes == []


def test_repair_does_not_fill_missing_fields() -> None:
    partial = fields(subtotal="1000.00", tax_amount="190.00")
    repaired, notes = repair(partial, {"total_amount": [fv("1190.00")]})
    assert "total_amount" not in repaired and notes == []


@pytest.mark.parametrize("candidate_key", ["subtotal", "tax_amount"])
def test_repair_other_terms(candidate_key: str) -> None:
    values = {"subtotal": "1000.00", "tax_amount": "190.00", "total_amount": "1190.00"}
    broken_value = {"subtotal": "1600.00", "tax_amount": "590.00"}[candidate_key]
    broken = fields(**{**values, candidate_key: broken_value})
    repaired, notes = repair(broken, {candidate_key: [fv(values[candidate_key])]})
    assert repaired[candidate_key].value == values[candidate_key]
    assert notes[0].passed and f"{candidate_key} {broken_value} -> {values[candidate_key]}" in notes[0].detail


def test_repair_accepts_plain_values() -> None:
    repaired, notes = repair({"subtotal": "100.00", "tax_amount": "19.00", "total_amount": "190.00"},
                             {"total_amount": [fv("119.00")]})
    assert repaired["total_amount"].value == "119.00"
    assert repaired["subtotal"].value == "100.00" and isinstance(repaired["subtotal"], FieldValue)
    assert notes[0].passed


def test_repair_refuses_between_two_valid_ibans() -> None:
    broken = fields(supplier_iban=BAD_IBAN)
    repaired, notes = repair(broken, {"supplier_iban": [fv("DE12500105170648489890"), fv(GOOD_IBAN)]})
    assert repaired["supplier_iban"].value == BAD_IBAN
    assert not notes[0].passed and "ambiguous" in notes[0].detail


def _read_qty(text: str) -> str | None:
    return normalize_field("ITEM_QUANTITY", text)


def test_item_quantity_is_taken_from_its_row_when_exactly_one_number_fits() -> None:
    # "55 kg | Harina de trigo | 1,59 | 87,45": the model tagged no quantity
    item = LineItem(description="Harina de trigo", unit_price="1.59", amount="87.45")
    fixed, note = repair_item_quantity(2, item, ["55 kg", "Harina de trigo", "1.59", "87.45"], _read_qty)
    assert fixed.quantity == "55" and note is not None and note.passed and "item 3" in note.detail
    # a wrong quantity is replaced too; a right one is left alone
    fixed, _ = repair_item_quantity(0, item.model_copy(update={"quantity": "5"}), ["55", "1.59", "87.45"], _read_qty)
    assert fixed.quantity == "55"
    ok = item.model_copy(update={"quantity": "55"})
    assert repair_item_quantity(0, ok, ["55", "1.59", "87.45"], _read_qty) == (ok, None)


def test_item_quantity_is_not_guessed_without_a_unique_fit() -> None:
    item = LineItem(description="Widget", unit_price="2.00", amount="8.00")
    assert repair_item_quantity(0, item, ["Widget", "2.00", "8.00"], _read_qty) == (item, None)  # nothing fits
    two = LineItem(description="Box", unit_price="1.00", amount="4.00")
    assert repair_item_quantity(0, two, ["4", "4.0", "1.00", "4.00"], _read_qty)[0].quantity == "4"  # same number
    no_price = LineItem(description="Box", amount="4.00")
    assert repair_item_quantity(0, no_price, ["4", "4.00"], _read_qty) == (no_price, None)
