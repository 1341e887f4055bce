"""Invoice factory records: arithmetic, identifiers, and printed values that parse back (Babel)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from invoicegen.synth.locales import KINDS, LABELS, LOCALES, kind_allows
from invoicegen.synth.records import (
    check_arithmetic,
    ean13,
    get_faker,
    make_fmt,
    make_record,
    parse_amount,
    parse_date,
    parse_percent,
    tax_id,
)


def _records(n_per_pair: int = 3):
    for locale in LOCALES:
        for kind in (k for k in KINDS if kind_allows(k, locale)):
            for i in range(n_per_pair):
                rng = random.Random(f"rec:{locale}:{kind}:{i}")
                fake = get_faker(locale)
                fake.seed_instance(rng.getrandbits(63))
                yield make_record(rng, fake, kind, locale)


def test_arithmetic_holds_on_every_record():
    n_multi_rate = n_discount = n_shipping = n_paid = 0
    for rec, _fmt in _records():
        js = rec.to_json()
        assert check_arithmetic(js) == [], (rec.kind, rec.locale, check_arithmetic(js))
        for it in rec.items:  # money is Decimal with cents, never float
            assert isinstance(it.amount, Decimal) and it.amount == it.amount.quantize(Decimal("0.01"))
        n_multi_rate += len(rec.tax_lines) > 1
        n_discount += rec.discount > 0
        n_shipping += rec.shipping > 0
        n_paid += rec.amount_paid > 0 and rec.kind != "receipt"
        assert js["currency"] in ("USD", "CAD", "GBP", "EUR", "CHF", "MYR")
        assert dt.date.fromisoformat(js["invoice_date"])
    assert n_multi_rate and n_discount and n_shipping and n_paid


def test_check_arithmetic_catches_errors():
    rec, _ = next(_records(1))
    js = rec.to_json()
    js["total_amount"] = str(Decimal(js["total_amount"]) + Decimal("0.01"))
    assert check_arithmetic(js)


def test_identifiers_have_valid_check_digits():
    from stdnum import bic, iban
    from stdnum.eu import vat as eu_vat
    from stdnum.gb import vat as gb_vat

    rng = random.Random(1)
    for country in ("DE", "FR", "ES", "IT", "NL"):
        for _ in range(25):
            _printed, compact = tax_id(rng, country)
            assert eu_vat.is_valid(compact), compact
    for _ in range(25):
        assert gb_vat.is_valid(tax_id(rng, "GB")[1])
        printed, compact = tax_id(rng, "MY")  # Malaysian GST number: 12 digits
        assert len(compact) == 12 and compact.isdigit() and printed.replace(" ", "") == compact
        assert len(ean13(rng)) == 13
    for rec, _ in _records(1):
        if rec.supplier.iban:
            assert iban.is_valid(rec.supplier.iban), rec.supplier.iban
            assert bic.is_valid(rec.supplier.bic), rec.supplier.bic


@pytest.mark.parametrize("locale", list(LOCALES))
def test_every_format_of_a_locale_parses_back(locale):
    """All date patterns, number styles and currency placements of a locale print values that Babel
    reads back to the record's values."""
    spec = LOCALES[locale]
    rng = random.Random(locale)
    amounts = [Decimal("0.99"), Decimal("7.5"), Decimal("1234.56"), Decimal("1234567.89"), Decimal("20")]
    dates = [dt.date(2024, m, d) for m, d in ((1, 5), (3, 31), (5, 1), (9, 12), (12, 25))]
    for currency, _w in spec.currencies:
        for style, _w in spec.currency_styles:
            for group, dec in spec.number_styles:
                fmt = make_fmt(rng, locale, currency)
                fmt.group, fmt.decimal, fmt.currency_style = group, dec, style
                for x in amounts:
                    for negative in (False, True):
                        printed = fmt.money(x, negative=negative)
                        assert parse_amount(printed, locale) == x, (printed, x)
                for rate in (Decimal("20"), Decimal("5.5"), Decimal("8.875")):
                    assert parse_percent(fmt.percent(rate), locale) == rate
    for pattern in spec.date_patterns:
        fmt = make_fmt(rng, locale, spec.currencies[0][0])
        fmt.date_pattern = pattern
        for d in dates:
            assert parse_date(fmt.date(d), pattern, locale) == d, (pattern, fmt.date(d))


def test_captions_exist_for_every_language():
    keys = set(LABELS["en"])
    for lang, table in LABELS.items():
        assert set(table) == keys, (lang, keys ^ set(table))
        assert all(table[k] for k in keys)
