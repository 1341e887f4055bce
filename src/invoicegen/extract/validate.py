"""Arithmetic and consistency checks on a result's normalised values, and repair from candidates.

Why: an invoice is over-determined. Quantity × unit price gives each line amount, the lines add
up to the subtotal, subtotal − discount + shipping + tax gives the total, the rate times the base
gives the tax. A misread digit breaks one of these equations, so the checks tell a user which
values to distrust, and ``repair`` can swap in the decoder's runner-up reading of one field when
that reading, and only that one, makes the broken equation hold.

Every check takes normalised values (``FieldValue.value`` strings such as "1500.00", "19",
"2024-01-15"); fields may be ``schema.FieldValue`` objects, dicts with a "value" key or plain
strings, line items ``schema.LineItem`` objects or dicts. A check whose inputs are missing is not
reported at all (the check function returns None and ``validate`` leaves it out): ``passed`` is a
bool in the schema, and "could not check" must not read as "failed".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from invoicegen.extract.decode import union_box
from invoicegen.extract.normalize import format_amount, format_decimal, iban_is_valid
from invoicegen.schema import FieldValue, LineItem, ValidationCheck

__all__ = [
    "CENT",
    "amount_due_consistent",
    "due_after_invoice_date",
    "fill_missing_totals",
    "iban_checksum",
    "line_item_arithmetic",
    "line_items_sum_to_subtotal",
    "repair",
    "run_checks",
    "tax_rate_matches",
    "totals_add_up",
    "validate",
]

CENT = Decimal("0.01")
"""Absolute tolerance of every equation: printed amounts are rounded to the cent."""

HALF_CENT = Decimal("0.005")
RATE_TOL = Decimal("0.00005")
"""Relative tolerance for a tax rate printed with two decimals (8.875 % shown as 8.88 %)."""

FieldLike = FieldValue | Mapping[str, Any] | str | None
ItemLike = LineItem | Mapping[str, Any]


# --------------------------------------------------------------------------------------------
# reading values
# --------------------------------------------------------------------------------------------


def _raw(fields: Mapping[str, FieldLike], key: str) -> str | None:
    f = fields.get(key)
    if f is None:
        return None
    if isinstance(f, FieldValue):
        return f.value
    if isinstance(f, Mapping):
        v = f.get("value")
        return None if v is None else str(v)
    return str(f)


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _amount(fields: Mapping[str, FieldLike], key: str) -> Decimal | None:
    return _dec(_raw(fields, key))


def _item(item: ItemLike, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def _iso(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _fmt(d: Decimal) -> str:
    return format_amount(d) or str(d)


def _close(a: Decimal, b: Decimal, tol: Decimal = CENT) -> bool:
    return abs(a - b) <= tol


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------

_DISCOUNT_PCT = re.compile(r"(\d+(?:[.,]\d+)?)\s*%")


def _item_ok(item: ItemLike) -> tuple[bool, str] | None:
    """(passed, note) for one item's quantity × unit price = amount; None when inputs are missing.

    Accepted readings: net amount; gross amount with the item's tax rate; a percentage discount
    printed in the description ("-10 %"); a credit line printed negative with positive prices.
    """
    q, p, a = _dec(_item(item, "quantity")), _dec(_item(item, "unit_price")), _dec(_item(item, "amount"))
    if q is None or p is None or a is None:
        return None
    expected = q * p
    tol = CENT + abs(q) * HALF_CENT  # unit price rounded to the cent, times the quantity
    if _close(a, expected, tol):
        return True, ""
    rate = _dec(_item(item, "tax_rate"))
    if rate is not None and _close(a, expected * (1 + rate / 100), tol * (1 + rate / 100) + CENT):
        return True, f"gross with {format_decimal(rate)} %"
    desc = str(_item(item, "description") or "")
    for m in _DISCOUNT_PCT.finditer(desc):
        pct = _dec(m.group(1).replace(",", "."))
        if pct is not None and 0 < pct < 100 and _close(a, expected * (1 - pct / 100), tol):
            return True, f"after {format_decimal(pct)} % discount"
    if a < 0 <= expected and _close(-a, expected, tol):
        return True, "credit line"
    return False, f"{format_decimal(q)} × {_fmt(p)} = {_fmt(expected)} ≠ {_fmt(a)}"


def line_item_arithmetic(line_items: Sequence[ItemLike]) -> ValidationCheck | None:
    """quantity × unit price ≈ amount for every item that has all three (one check for all items)."""
    results = [(i, _item_ok(it)) for i, it in enumerate(line_items)]
    checked = [(i, r) for i, r in results if r is not None]
    if not checked:
        return None
    failures = [f"item {i + 1}: {note}" for i, (ok, note) in checked if not ok]
    if failures:
        detail = f"{len(failures)} of {len(checked)} items off: " + "; ".join(failures)
    else:
        detail = f"{len(checked)} items match quantity × unit price"
    return ValidationCheck(check="line_item_arithmetic", passed=not failures, detail=detail)


def line_items_sum_to_subtotal(
    fields: Mapping[str, FieldLike], line_items: Sequence[ItemLike]
) -> ValidationCheck | None:
    """The line amounts add up to the subtotal (or, for gross-priced lines, to the total while
    subtotal + tax = total). Skipped without a subtotal or without any line amount."""
    subtotal = _amount(fields, "subtotal")
    amounts = [_dec(_item(it, "amount")) for it in line_items]
    present = [a for a in amounts if a is not None]
    if subtotal is None or not present:
        return None
    total_lines = sum(present, Decimal(0))
    tol = CENT * max(1, (len(present) + 1) // 2)
    missing = len(amounts) - len(present)
    note = f" ({missing} items without amount)" if missing else ""
    if _close(total_lines, subtotal, tol):
        return ValidationCheck(
            check="line_items_sum_to_subtotal",
            passed=True,
            detail=f"sum of {len(present)} items {_fmt(total_lines)} = subtotal {_fmt(subtotal)}{note}",
        )
    total, tax = _amount(fields, "total_amount"), _amount(fields, "tax_amount")
    if total is not None and tax is not None and _close(total_lines, total, tol) and _close(
        subtotal + tax, total
    ):
        return ValidationCheck(
            check="line_items_sum_to_subtotal",
            passed=True,
            detail=f"gross line amounts: sum {_fmt(total_lines)} = total {_fmt(total)}{note}",
        )
    return ValidationCheck(
        check="line_items_sum_to_subtotal",
        passed=False,
        detail=f"sum of {len(present)} items {_fmt(total_lines)} ≠ subtotal {_fmt(subtotal)} "
        f"(off by {_fmt(total_lines - subtotal)}){note}",
    )


def totals_add_up(fields: Mapping[str, FieldLike]) -> ValidationCheck | None:
    """subtotal − discount + shipping + tax ≈ total.

    Missing discount/shipping count as zero. A subtotal that already includes the tax (receipts
    showing "incl. VAT") passes too. Without a tax amount a mismatch is not reported, because
    the tax may just not have been extracted.
    """
    sub, total = _amount(fields, "subtotal"), _amount(fields, "total_amount")
    if sub is None or total is None:
        return None
    disc = abs(_amount(fields, "discount") or Decimal(0))
    ship = _amount(fields, "shipping") or Decimal(0)
    tax = _amount(fields, "tax_amount")
    expected = sub - disc + ship + (tax or Decimal(0))
    terms = f"{_fmt(sub)}"
    if disc:
        terms += f" − {_fmt(disc)}"
    if ship:
        terms += f" + {_fmt(ship)}"
    if tax is not None:
        terms += f" + {_fmt(tax)}"
    if _close(expected, total):
        return ValidationCheck(check="totals_add_up", passed=True, detail=f"{terms} = {_fmt(total)}")
    if tax is not None and tax != 0 and _close(sub - disc + ship, total):
        return ValidationCheck(
            check="totals_add_up",
            passed=True,
            detail=f"tax {_fmt(tax)} included: {_fmt(sub)} − {_fmt(disc)} + {_fmt(ship)} = {_fmt(total)}",
        )
    if tax is None:
        return None
    return ValidationCheck(
        check="totals_add_up",
        passed=False,
        detail=f"{terms} = {_fmt(expected)} ≠ total {_fmt(total)} (off by {_fmt(total - expected)})",
    )


def tax_rate_matches(
    fields: Mapping[str, FieldLike], line_items: Sequence[ItemLike] = ()
) -> ValidationCheck | None:
    """rate × base ≈ tax.

    Bases tried: subtotal − discount + shipping, subtotal − discount, subtotal, and total − tax
    when there is no subtotal; tax included in a gross total (total × r / (100 + r)) also passes.
    With several rates on the line items, the tax is compared with Σ amount × item rate instead.
    """
    tax = _amount(fields, "tax_amount")
    if tax is None:
        return None
    rated = [(_dec(_item(it, "amount")), _dec(_item(it, "tax_rate"))) for it in line_items]
    rates = {r for a, r in rated if a is not None and r is not None}
    if len(rates) > 1 and all(r is not None for a, r in rated if a is not None):
        expected = sum((a * r / 100 for a, r in rated if a is not None and r is not None), Decimal(0))
        ok = _close(expected, tax, CENT * len(rates))
        rates_s = ", ".join(f"{format_decimal(r)} %" for r in sorted(rates))
        return ValidationCheck(
            check="tax_rate_matches",
            passed=ok,
            detail=f"items at {rates_s}: Σ amount × rate = {_fmt(expected)} {'=' if ok else '≠'} tax {_fmt(tax)}",
        )
    rate = _dec(_raw(fields, "tax_rate"))
    if rate is None:
        return None
    sub, total = _amount(fields, "subtotal"), _amount(fields, "total_amount")
    disc = abs(_amount(fields, "discount") or Decimal(0))
    ship = _amount(fields, "shipping") or Decimal(0)
    bases: list[tuple[str, Decimal]] = []
    if sub is not None:
        if disc or ship:
            label = "subtotal" + (" − discount" if disc else "") + (" + shipping" if ship else "")
            bases.append((label, sub - disc + ship))
        if disc and ship:
            bases.append(("subtotal − discount", sub - disc))
        bases.append(("subtotal", sub))
    elif total is not None:
        bases.append(("total − tax", total - tax))
    if not bases and total is None:
        return None
    r = format_decimal(rate)
    for name, base in bases:
        expected = base * rate / 100
        if _close(expected, tax, CENT + abs(base) * RATE_TOL):
            return ValidationCheck(
                check="tax_rate_matches", passed=True,
                detail=f"{r} % × {_fmt(base)} ({name}) = {_fmt(expected)} ≈ tax {_fmt(tax)}",
            )
    if total is not None:
        included = total * rate / (100 + rate)
        if _close(included, tax, CENT + abs(total) * RATE_TOL):
            return ValidationCheck(
                check="tax_rate_matches", passed=True,
                detail=f"{r} % included in total {_fmt(total)} = {_fmt(included)} ≈ tax {_fmt(tax)}",
            )
    name, base = bases[0] if bases else ("total", total or Decimal(0))
    return ValidationCheck(
        check="tax_rate_matches",
        passed=False,
        detail=f"{r} % × {_fmt(base)} ({name}) = {_fmt(base * rate / 100)} ≠ tax {_fmt(tax)}",
    )


def due_after_invoice_date(fields: Mapping[str, FieldLike]) -> ValidationCheck | None:
    """The due date is on or after the invoice date (both ISO values needed)."""
    inv, due = _iso(_raw(fields, "invoice_date")), _iso(_raw(fields, "due_date"))
    if inv is None or due is None:
        return None
    days = (due - inv).days
    if days >= 0:
        detail = f"due {due.isoformat()} is {days} days after invoice date {inv.isoformat()}"
    else:
        detail = f"due {due.isoformat()} is {-days} days before invoice date {inv.isoformat()}"
    return ValidationCheck(check="due_after_invoice_date", passed=days >= 0, detail=detail)


def iban_checksum(fields: Mapping[str, FieldLike]) -> ValidationCheck | None:
    """The supplier IBAN has a valid mod-97 checksum and country length."""
    f = fields.get("supplier_iban")
    value = _raw(fields, "supplier_iban")
    if not value and isinstance(f, FieldValue):
        value = f.text
    if not value:
        return None
    ok = iban_is_valid(value)
    detail = f"{value}: checksum {'valid' if ok else 'invalid (or wrong length for its country)'}"
    return ValidationCheck(check="iban_checksum", passed=ok, detail=detail)


def amount_due_consistent(fields: Mapping[str, FieldLike]) -> ValidationCheck | None:
    """Amount due equals the total, or is a part of it (prepayment); more than the total fails."""
    due, total = _amount(fields, "amount_due"), _amount(fields, "total_amount")
    if due is None or total is None:
        return None
    if _close(due, total):
        return ValidationCheck(
            check="amount_due_consistent", passed=True, detail=f"amount due {_fmt(due)} = total"
        )
    if (due >= 0) == (total >= 0) and abs(due) < abs(total):
        return ValidationCheck(
            check="amount_due_consistent", passed=True,
            detail=f"amount due {_fmt(due)} below total {_fmt(total)} (paid {_fmt(total - due)})",
        )
    return ValidationCheck(
        check="amount_due_consistent", passed=False,
        detail=f"amount due {_fmt(due)} exceeds total {_fmt(total)}",
    )


def run_checks(
    fields: Mapping[str, FieldLike], line_items: Sequence[ItemLike] = ()
) -> list[ValidationCheck]:
    """All checks that have their inputs, in a fixed order."""
    checks = [
        line_item_arithmetic(line_items),
        line_items_sum_to_subtotal(fields, line_items),
        totals_add_up(fields),
        tax_rate_matches(fields, line_items),
        due_after_invoice_date(fields),
        iban_checksum(fields),
        amount_due_consistent(fields),
    ]
    return [c for c in checks if c is not None]


validate = run_checks
"""Alias of ``run_checks`` (the name the architecture's data-flow sketch uses)."""


# --------------------------------------------------------------------------------------------
# repair
# --------------------------------------------------------------------------------------------

_EQUATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "totals_add_up": (
        "subtotal − discount + shipping + tax = total",
        ("subtotal", "discount", "shipping", "tax_amount", "total_amount"),
    ),
    "line_items_sum_to_subtotal": ("sum of line items = subtotal", ("subtotal",)),
    "tax_rate_matches": ("tax rate × base = tax", ("tax_rate", "tax_amount", "subtotal")),
    "iban_checksum": ("IBAN checksum", ("supplier_iban",)),
}
"""Equations repair may act on: check name -> (description, fields it may replace).

Dates are left out on purpose: any later date "fixes" a due date, so a candidate date is never
better supported than the printed one.
"""


def _equations(fields: Mapping[str, FieldLike], line_items: Sequence[ItemLike]) -> dict[str, bool]:
    fns: dict[str, Callable[[], ValidationCheck | None]] = {
        "totals_add_up": lambda: totals_add_up(fields),
        "line_items_sum_to_subtotal": lambda: line_items_sum_to_subtotal(fields, line_items),
        "tax_rate_matches": lambda: tax_rate_matches(fields, line_items),
        "iban_checksum": lambda: iban_checksum(fields),
    }
    out: dict[str, bool] = {}
    for name, fn in fns.items():
        c = fn()
        if c is not None:
            out[name] = c.passed
    return out


def _as_field(f: FieldLike) -> FieldValue | None:
    if isinstance(f, FieldValue):
        return f
    if isinstance(f, Mapping):
        return FieldValue.model_validate(dict(f))
    if isinstance(f, str):
        return FieldValue(value=f, text=f, confidence=1.0, page=0, bbox=(0.0, 0.0, 0.0, 0.0))
    return None


def repair(
    fields: Mapping[str, FieldLike],
    candidates: Mapping[str, Sequence[FieldValue]],
    line_items: Sequence[ItemLike] = (),
) -> tuple[dict[str, FieldValue], list[ValidationCheck]]:
    """Replace a misread field by a runner-up candidate when that candidate, and only it, makes a
    broken equation hold; then validate.

    A candidate qualifies when, swapped in for the field's current value, it makes at least one
    failing equation pass and breaks none that passed. The candidate fixing the most equations
    wins; if different replacements tie, nothing is replaced and a ``repair`` check with
    ``passed=False`` names the alternatives. Only fields that have a value are replaced (never
    filled in), one at a time, until no qualifying candidate remains.

    Returns the (possibly) repaired fields and one ``repair`` check per replacement or refusal;
    run ``run_checks`` on the returned fields for the checks themselves.
    """
    current: dict[str, FieldLike] = dict(fields)
    notes: list[ValidationCheck] = []
    for _ in range(len(_EQUATIONS) * 2):
        base = _equations(current, line_items)
        failing = [n for n, ok in base.items() if not ok]
        if not failing:
            break
        keys = {k for n in failing for k in _EQUATIONS[n][1]}
        fixes: list[tuple[int, str, FieldValue, list[str]]] = []
        for key in sorted(keys):
            old = _raw(current, key)
            if old is None:
                continue
            seen = {old}
            for cand in candidates.get(key, ()):
                if cand.value is None or cand.value in seen:
                    continue
                seen.add(cand.value)
                trial = {**current, key: cand}
                result = _equations(trial, line_items)
                if any(ok and not result.get(n, False) for n, ok in base.items()):
                    continue  # it would break an equation that held
                fixed = [n for n in failing if result.get(n)]
                if fixed:
                    fixes.append((len(fixed), key, cand, fixed))
        if not fixes:
            break
        best = max(f[0] for f in fixes)
        top = [f for f in fixes if f[0] == best]
        if len(top) > 1:
            alts = "; ".join(f"{k} {_raw(current, k)} -> {c.value}" for _, k, c, _f in top)
            eqs = ", ".join(sorted({_EQUATIONS[n][0] for f in top for n in f[3]}))
            notes.append(ValidationCheck(
                check="repair", passed=False,
                detail=f"ambiguous, nothing replaced: {alts} would each satisfy {eqs}",
            ))
            break
        _, key, cand, fixed = top[0]
        eqs = "; ".join(_EQUATIONS[n][0] for n in fixed)
        notes.append(ValidationCheck(
            check="repair", passed=True,
            detail=f"{key} {_raw(current, key)} -> {cand.value} (candidate satisfies {eqs})",
        ))
        current[key] = cand
    out: dict[str, FieldValue] = {}
    for k, v in current.items():
        fv = _as_field(v)
        if fv is not None:
            out[k] = fv
    return out, notes


def sum_tax_lines(
    fields: Mapping[str, FieldValue],
    candidates: Mapping[str, Sequence[FieldValue]],
) -> tuple[dict[str, FieldValue], list[ValidationCheck]]:
    """The document's tax amount when it prints one tax line per rate. ``candidates``: the other
    printed tax amounts and rates the model found (``repair``'s runner-ups).

    A line that is the sum of the others is the total tax ("VAT 22 %: 146.03 / 10 %: 12.29 / 5 %:
    1.65 / VAT total 159.97") and is taken. Without one, and with as many tax amounts as distinct
    tax rates (two or more), the tax amount is their sum, reported as a ``repair`` check; the model
    picks one line by confidence otherwise, and one rate's tax is not the document's."""
    current = dict(fields)
    first = current.get("tax_amount")
    lines: dict[tuple[int, tuple[float, ...]], tuple[FieldValue, Decimal]] = {}
    for f in [first, *candidates.get("tax_amount", ())]:
        d = _dec(f.value) if f is not None else None
        if f is not None and d is not None:
            lines.setdefault((f.page, tuple(f.bbox)), (f, d))
    if first is None or len(lines) < 2:
        return current, []
    whole = sum((d for _, d in lines.values()), Decimal(0))
    total_line = [f for f, d in lines.values() if len(lines) >= 3 and _close(2 * d, whole)]
    if total_line:
        current["tax_amount"] = total_line[0]
        return current, []
    rates = {_dec(f.value) for f in [current.get("tax_rate"), *candidates.get("tax_rate", ())] if f is not None}
    rates.discard(None)
    if len(rates) < 2 or len(rates) != len(lines):
        return current, []
    parts = sorted(lines.values(), key=lambda fd: (fd[0].page, fd[0].bbox[1], fd[0].bbox[0]))
    page = parts[-1][0].page
    current["tax_amount"] = FieldValue(
        value=format_amount(whole), text=" + ".join(f.text for f, _ in parts),
        confidence=min(f.confidence for f, _ in parts), page=page,
        bbox=union_box([f.bbox for f, _ in parts if f.page == page]))
    return current, [ValidationCheck(check="repair", passed=True, detail=(
        f"tax_amount {_fmt(whole)} = the sum of the {len(parts)} tax lines "
        f"({', '.join(_fmt(d) for _, d in parts)}) for {len(rates)} tax rates"))]


def dominant_tax_rate(
    fields: Mapping[str, FieldValue],
    candidates: Mapping[str, Sequence[FieldValue]],
) -> tuple[dict[str, FieldValue], dict[str, list[FieldValue]], list[ValidationCheck]]:
    """The document's tax rate when it prints one tax line per rate: the rate of the line with the
    largest base (its tax amount / its rate), the rate most of the goods carry. The model picks a
    line by confidence otherwise ("7 %" of a 19 % invoice with two 7 % items). Returns the fields,
    the candidates (the rate given up joins them) and the check."""
    current, others = dict(fields), {k: list(v) for k, v in candidates.items()}
    rates = [f for f in [current.get("tax_rate"), *candidates.get("tax_rate", ())] if f is not None]
    amounts = [f for f in [current.get("tax_amount"), *candidates.get("tax_amount", ())] if f is not None]
    bases: dict[Decimal, tuple[Decimal, FieldValue]] = {}
    for r in rates:
        rate = _dec(r.value)
        beside = [a for a in amounts if a.page == r.page and _same_line(a.bbox, r.bbox)]
        tax = _dec(beside[0].value) if len(beside) == 1 else None
        if rate is None or rate <= 0 or tax is None or rate in bases:
            continue
        bases[rate] = (tax * 100 / rate, r)
    if len(bases) < 2 or current.get("tax_rate") is None:
        return current, others, []
    rate, (base, best) = max(bases.items(), key=lambda kv: kv[1][0])
    if _dec(current["tax_rate"].value) == rate:
        return current, others, []
    others["tax_rate"] = [current["tax_rate"], *(f for f in others.get("tax_rate", []) if f is not best)]
    current["tax_rate"] = best
    return current, others, [ValidationCheck(check="repair", passed=True, detail=(
        f"tax_rate {best.value} % has the largest base of the {len(bases)} tax lines ({_fmt(base.quantize(CENT))})"))]


def _same_line(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    centre = (a[1] + a[3]) / 2
    return b[1] <= centre <= b[3]


def fill_missing_totals(
    fields: Mapping[str, FieldValue],
    line_items: Sequence[ItemLike],
    printed: Sequence[FieldValue],
) -> tuple[dict[str, FieldValue], list[ValidationCheck]]:
    """Fill in a missing subtotal, total or tax amount that the other values determine, when that
    amount is printed on the page (``printed``: every amount on the pages, in reading order; the
    last occurrence gives the box). A small model often leaves one line of the totals block untagged
    while the arithmetic pins it down; the printed number makes the value and its box real, not
    computed. The subtotal is taken from the line items only with two or more items and when their
    sum is not also the total (gross-priced lines). Each fill is reported as a ``repair`` check."""
    current = dict(fields)
    notes: list[ValidationCheck] = []
    where = {d: f for d, f in _printed_by_value(printed).items() if d > 0}

    def take(key: str, value: Decimal, how: str, inputs: Sequence[str]) -> None:
        f = where.get(value.quantize(CENT))
        if f is None:
            return
        conf = min((current[k].confidence for k in inputs if k in current), default=f.confidence)
        current[key] = f.model_copy(update={"confidence": round(conf, 4)})
        notes.append(ValidationCheck(check="repair", passed=True,
                                     detail=f"{key} filled in: {_fmt(value)} = {how}, printed on page {f.page + 1}"))

    amounts = [_dec(_item(it, "amount")) for it in line_items]
    lines = [a for a in amounts if a is not None]
    total = _amount(current, "total_amount")
    if (_amount(current, "subtotal") is None and len(lines) >= 2 and len(lines) == len(amounts)
            and (total is None or not _close(sum(lines, Decimal(0)), total))):
        take("subtotal", sum(lines, Decimal(0)), "the sum of the line items", ())
    sub, tax = _amount(current, "subtotal"), _amount(current, "tax_amount")
    if sub is None:
        return current, notes
    net = sub - abs(_amount(current, "discount") or Decimal(0)) + (_amount(current, "shipping") or Decimal(0))
    if total is None and tax is not None:
        take("total_amount", net + tax, "subtotal − discount + shipping + tax", ("subtotal", "tax_amount"))
    elif tax is None and total is not None and total - net > 0:
        take("tax_amount", total - net, "total − (subtotal − discount + shipping)", ("subtotal", "total_amount"))
    return current, notes


def _printed_by_value(printed: Sequence[FieldValue]) -> dict[Decimal, FieldValue]:
    """Printed amounts by value; the last occurrence on the pages gives the box."""
    where: dict[Decimal, FieldValue] = {}
    for f in printed:
        d = _dec(f.value)
        if d is not None:
            where[d] = f
    return where


CASH_ROUNDING: dict[str, Decimal] = {"MYR": Decimal("0.05"), "CHF": Decimal("0.05")}
"""Currencies whose cash totals are rounded (Malaysian and Swiss receipts: to 5 sen / 5 rappen)."""


def round_cash_total(
    fields: Mapping[str, FieldValue],
    currency: str | None,
    printed: Sequence[FieldValue],
) -> tuple[dict[str, FieldValue], list[ValidationCheck]]:
    """The rounded total of a receipt in a currency with cash rounding. A till prints the total
    before rounding ("Total incl. GST 33.92"), a rounding line and the rounded TOTAL (33.90), which
    is what is paid; when the total read is not a multiple of the rounding step and the page prints
    it rounded, the rounded amount is the total (reported as a ``repair`` check)."""
    current = dict(fields)
    step = CASH_ROUNDING.get(currency or "")
    total = _amount(current, "total_amount")
    if step is None or total is None or total % step == 0:
        return current, []
    rounded = (total / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    found = _printed_by_value(printed).get(rounded)
    if found is None:
        return current, []
    current["total_amount"] = found.model_copy(update={"confidence": current["total_amount"].confidence})
    return current, [ValidationCheck(check="repair", passed=True, detail=(
        f"total_amount {_fmt(total)} -> {_fmt(rounded)}: the total rounded to {_fmt(step)} {currency}, "
        f"printed on page {found.page + 1}"))]


def repair_item_quantity(index: int, item: LineItem, cell_texts: Sequence[str],
                         read: Callable[[str], str | None]) -> tuple[LineItem, ValidationCheck | None]:
    """Take an item's quantity from its own row when the model's quantity is missing or breaks
    quantity × unit price = amount and exactly one number printed in the row makes it hold: the model
    misses quantities most in column orders it has not seen (quantity first, quantity and unit in one cell)."""
    verdict = _item_ok(item)
    if (verdict is not None and verdict[0]) or _dec(item.unit_price) is None or _dec(item.amount) is None:
        return item, None
    found: set[str] = set()
    for text in cell_texts:
        q = read((text.split() or [""])[0])
        q_dec = _dec(q)
        if q is None or q_dec is None or q_dec <= 0:
            continue
        trial = item.model_copy(update={"quantity": q})
        ok = _item_ok(trial)
        if ok is not None and ok[0]:
            found.add(format_decimal(q_dec) or q)
    if len(found) != 1:
        return item, None
    q = found.pop()
    note = ValidationCheck(check="repair", passed=True,
                           detail=f"item {index + 1} quantity {item.quantity} -> {q} (read from its row: "
                                  f"{q} × {item.unit_price} = {item.amount})")
    return item.model_copy(update={"quantity": q}), note
