"""Normalisation of printed field text: amounts, dates, currencies, rates, IBANs, tax ids.

Tables cover every factory locale (en_US, en_GB, de_DE, fr_FR, es_ES, it_IT, nl_NL); Babel-formatted
strings check that whatever a locale prints reads back to the same value.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

from invoicegen.extract.normalize import (
    DocumentContext,
    NumberConvention,
    clean_tax_id,
    convention_for_locale,
    detect_currency,
    detect_date_order,
    detect_languages,
    detect_number_convention,
    format_amount,
    format_decimal,
    iban_is_valid,
    normalize_field,
    normalize_iban,
    parse_amount,
    parse_currency,
    parse_date,
    parse_percent,
)


def _w(text: str) -> list[str]:
    """Words of a text, as the document loader would give them."""
    return text.split()


LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL")
NC = NumberConvention

# --------------------------------------------------------------------------------------------
# amounts
# --------------------------------------------------------------------------------------------

AMOUNTS = [
    # (locale, printed, expected)
    ("en_US", "$1,234.56", "1234.56"),
    ("en_US", "1,234.56 USD", "1234.56"),
    ("en_US", "USD 1,500", "1500.00"),
    ("en_US", "$ 0.99", "0.99"),
    ("en_US", "($1,269.12)", "-1269.12"),
    ("en_US", "1,269.12-", "-1269.12"),
    ("en_US", "-$5.00", "-5.00"),
    ("en_US", "125.00 CR", "-125.00"),
    ("en_US", "1,234", "1234.00"),
    ("en_US", "1,234,567.891", "1234567.891"),
    ("en_GB", "£1,234.56", "1234.56"),
    ("en_GB", "GBP 99.5", "99.50"),
    ("en_GB", "£0.50", "0.50"),
    ("de_DE", "1.234,56 €", "1234.56"),
    ("de_DE", "€ 1.234,56", "1234.56"),
    ("de_DE", "1.234,56 EUR", "1234.56"),
    ("de_DE", "34,- €", "34.00"),
    ("de_DE", "-8,79 €", "-8.79"),
    ("de_DE", "1.234", "1234.00"),
    ("de_DE", "12,5", "12.50"),
    ("de_DE", "1.000.000,00", "1000000.00"),
    ("fr_FR", "1 234,56 €", "1234.56"),
    ("fr_FR", "1\u202f234,56\u00a0€", "1234.56"),
    ("fr_FR", "1\u00a0234,56 EUR", "1234.56"),
    ("fr_FR", "12 345 678,90 €", "12345678.90"),
    ("fr_FR", "0,99 €", "0.99"),
    ("es_ES", "1.234,56 €", "1234.56"),
    ("es_ES", "EUR 1.234,56", "1234.56"),
    ("es_ES", "(1.234,56 €)", "-1234.56"),
    ("it_IT", "€ 1.234,56", "1234.56"),
    ("it_IT", "1.234,56 euro", "1234.56"),
    ("it_IT", "€ 2.500", "2500.00"),
    ("nl_NL", "€ 1.234,56", "1234.56"),
    ("nl_NL", "€ 1.234,-", "1234.00"),
    ("nl_NL", "EUR -1.234,56", "-1234.56"),
    ("de_CH", "CHF 1'234.50", "1234.50"),
    ("de_CH", "Fr. 1’234.50", "1234.50"),
]


@pytest.mark.parametrize(("locale", "text", "expected"), AMOUNTS)
def test_parse_amount_per_locale(locale: str, text: str, expected: str) -> None:
    conv = convention_for_locale(locale)
    assert format_amount(parse_amount(text, conv)) == expected
    # the locale hint alone gives the same reading
    assert format_amount(parse_amount(text, locale_hint=locale)) == expected


@pytest.mark.parametrize(
    ("text", "convention", "expected"),
    [
        ("1.234", NC.COMMA_DECIMAL, "1234.00"),
        ("1.234", NC.DOT_DECIMAL, "1.234"),
        ("1,234", NC.DOT_DECIMAL, "1234.00"),
        ("1,234", NC.COMMA_DECIMAL, "1.234"),
        ("1,234", NC.SPACE_COMMA, "1.234"),
        ("1.234", NC.APOSTROPHE_DOT, "1.234"),
        ("0.125", NC.COMMA_DECIMAL, "0.125"),  # never thousands after a zero
        ("1234,567", NC.DOT_DECIMAL, "1234.567"),  # four digits before: not a group
        ("1.234,56", NC.DOT_DECIMAL, "1234.56"),  # both marks: unambiguous whatever the document
        ("1.234", None, "1234.00"),  # no convention: thousands, as the real-data scorer reads it
    ],
)
def test_convention_decides_ambiguous_numbers(
    text: str, convention: NumberConvention | None, expected: str
) -> None:
    assert format_amount(parse_amount(text, convention)) == expected


@pytest.mark.parametrize("text", ["", "   ", "EUR", "n/a", None])
def test_parse_amount_without_number(text: str | None) -> None:
    assert parse_amount(text) is None


def test_parse_amount_skips_percentages_and_keeps_scale() -> None:
    assert parse_amount("19 % 190,00", NC.COMMA_DECIMAL) == Decimal("190.00")
    assert parse_amount("12.5").as_tuple().exponent == -1  # type: ignore[union-attr]
    assert isinstance(parse_amount("$1.00"), Decimal)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1500"), "1500.00"),
        (Decimal("12.5"), "12.50"),
        (Decimal("0.125"), "0.125"),
        (Decimal("12.3400"), "12.34"),
        (Decimal("-0.00"), "0.00"),
        (Decimal("-1269.12"), "-1269.12"),
        (Decimal("1E+3"), "1000.00"),
        (None, None),
    ],
)
def test_format_amount(value: Decimal | None, expected: str | None) -> None:
    assert format_amount(value) == expected


def test_format_decimal() -> None:
    assert format_decimal(Decimal("2.000")) == "2"
    assert format_decimal(Decimal("19.50")) == "19.5"
    assert format_decimal(Decimal("100")) == "100"


@pytest.mark.parametrize("locale", LOCALES + ("de_CH",))
@pytest.mark.parametrize("amount", ["1234.56", "0.99", "1234567.89", "-45.10", "1000.00"])
def test_babel_formatted_amounts_read_back(locale: str, amount: str) -> None:
    from babel.numbers import format_currency
    from babel.numbers import format_decimal as babel_decimal

    value = Decimal(amount)
    cur = {"en_US": "USD", "en_GB": "GBP", "de_CH": "CHF"}.get(locale, "EUR")
    printed = [format_currency(value, cur, locale=locale), babel_decimal(value, locale=locale,
                                                                         format="#,##0.00")]
    conv = detect_number_convention(printed, locale)
    for text in printed:
        assert format_amount(parse_amount(text, conv)) == format_amount(value), text


# --------------------------------------------------------------------------------------------
# number convention detection
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("texts", "hint", "expected"),
    [
        (["Total", "1,234.56", "USD"], None, NC.DOT_DECIMAL),
        (["Summe", "1.234,56", "€", "19,00"], None, NC.COMMA_DECIMAL),
        (["Total", "1 234,56", "€"], None, NC.SPACE_COMMA),
        (["Total", "1\u202f234,56"], None, NC.SPACE_COMMA),
        (["CHF", "1'234.56"], None, NC.APOSTROPHE_DOT),
        (["12,50", "3,99", "7.5"], None, NC.COMMA_DECIMAL),  # two-decimal votes beat one weak one
        (["1.234"], "de_DE", NC.COMMA_DECIMAL),  # no evidence: the hint decides
        (["1.234"], "en_US", NC.DOT_DECIMAL),
        (["1.234"], "fr_FR", NC.SPACE_COMMA),
        ([], "de_CH", NC.APOSTROPHE_DOT),
        ([], None, NC.DOT_DECIMAL),
        (["15.01.2024", "1.500"], "en_US", NC.DOT_DECIMAL),  # dates give no vote
        (["1.234,56"], "en_US", NC.COMMA_DECIMAL),  # evidence beats the hint
    ],
)
def test_detect_number_convention(texts: list[str], hint: str | None, expected: NumberConvention) -> None:
    assert detect_number_convention(texts, hint) is expected


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en_US", NC.DOT_DECIMAL), ("en_GB", NC.DOT_DECIMAL), ("de_DE", NC.COMMA_DECIMAL),
     ("fr_FR", NC.SPACE_COMMA), ("es_ES", NC.COMMA_DECIMAL), ("it_IT", NC.COMMA_DECIMAL),
     ("nl_NL", NC.COMMA_DECIMAL), ("de_CH", NC.APOSTROPHE_DOT), ("xx_YY", None), (None, None)],
)
def test_convention_for_locale(locale: str | None, expected: NumberConvention | None) -> None:
    assert convention_for_locale(locale) is expected


# --------------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------------

D = date(2024, 1, 15)
DATES = [
    # (locale, printed, expected)
    ("en_US", "01/15/2024", D),
    ("en_US", "1/15/24", D),
    ("en_US", "Jan 15, 2024", D),
    ("en_US", "January 15th, 2024", D),
    ("en_US", "Monday, January 15, 2024", D),
    ("en_US", "2024-01-15", D),
    ("en_US", "03/04/2024", date(2024, 3, 4)),
    ("en_GB", "15/01/2024", D),
    ("en_GB", "15 Jan 2024", D),
    ("en_GB", "15-Jan-24", D),
    ("en_GB", "15th January 2024", D),
    ("en_GB", "03/04/2024", date(2024, 4, 3)),
    ("de_DE", "15.01.2024", D),
    ("de_DE", "15.1.24", D),
    ("de_DE", "15. Januar 2024", D),
    ("de_DE", "3. März 2024", date(2024, 3, 3)),
    ("de_DE", "Montag, 15. Januar 2024", D),
    ("de_DE", "15. Okt. 2024", date(2024, 10, 15)),
    ("fr_FR", "15/01/2024", D),
    ("fr_FR", "15 janvier 2024", D),
    ("fr_FR", "1er février 2024", date(2024, 2, 1)),
    ("fr_FR", "lundi 15 janvier 2024", D),
    ("fr_FR", "15 déc. 2023", date(2023, 12, 15)),
    ("fr_FR", "le 3 août 2024", date(2024, 8, 3)),
    ("es_ES", "15/01/2024", D),
    ("es_ES", "15 de enero de 2024", D),
    ("es_ES", "1º de marzo de 2024", date(2024, 3, 1)),
    ("es_ES", "15-ene-2024", D),
    ("es_ES", "mar. 15 ene. 2024", D),
    ("it_IT", "15/01/2024", D),
    ("it_IT", "15 gennaio 2024", D),
    ("it_IT", "lunedì 15 gennaio 2024", D),
    ("it_IT", "3 mag 2024", date(2024, 5, 3)),
    ("nl_NL", "15-01-2024", D),
    ("nl_NL", "15 januari 2024", D),
    ("nl_NL", "31 mrt 2024", date(2024, 3, 31)),
    ("nl_NL", "2 mei 2024", date(2024, 5, 2)),
]


@pytest.mark.parametrize(("locale", "text", "expected"), DATES)
def test_parse_date_per_locale(locale: str, text: str, expected: date) -> None:
    lang = locale.split("_")[0]
    order = detect_date_order([], locale)
    assert parse_date(text, [lang, "en"], order) == expected


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("fmt", ["short", "medium", "long", "full"])
@pytest.mark.parametrize("day", [date(2024, 1, 15), date(2023, 12, 3), date(2024, 3, 9)])
def test_babel_formatted_dates_read_back(locale: str, fmt: str, day: date) -> None:
    from babel.dates import format_date

    printed = format_date(day, format=fmt, locale=locale)
    lang = locale.split("_")[0]
    assert parse_date(printed, [lang, "en"], detect_date_order([], locale)) == day, printed


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("03/04/2024", "DMY", date(2024, 4, 3)),
        ("03/04/2024", "MDY", date(2024, 3, 4)),
        ("15/01/2024", "MDY", D),  # impossible in the given order: the other reading is taken
        ("01/15/2024", "DMY", D),
        ("03/04/2024", None, date(2024, 4, 3)),  # unknown order: day first
        ("10/03/2018 5:41:06", "DMY", date(2018, 3, 10)),
        ("20240115", None, D),
        ("Date: 15.01.2024", None, D),
    ],
)
def test_parse_date_order(text: str, order: str | None, expected: date) -> None:
    assert parse_date(text, None, order) == expected


@pytest.mark.parametrize("text", ["", "n/a", "January 2024", "31/02/2024", "Rechnung", None])
def test_parse_date_rejects(text: str | None) -> None:
    assert parse_date(text, ["de", "en"], "DMY") is None


def test_parse_date_uses_dateparser_only_as_fallback() -> None:
    # a form the fast patterns do not cover, read by dateparser with the document's languages
    assert parse_date("15 janv 2024 à 10h30", ["fr"], "DMY") == D
    assert parse_date("2024年1月15日", None, None) == D


@pytest.mark.parametrize(
    ("texts", "hint", "expected"),
    [
        (["15/01/2024"], None, "DMY"),
        (["01/15/2024"], None, "MDY"),
        (["03/04/2024", "12/31/2024"], "en_GB", "MDY"),  # evidence beats the hint
        (["15.01.2024"], None, "DMY"),
        (["03/04/2024"], "en_US", "MDY"),
        (["03/04/2024"], "de_DE", "DMY"),
        ([], "en", "MDY"),
        ([], None, "DMY"),
    ],
)
def test_detect_date_order(texts: list[str], hint: str | None, expected: str) -> None:
    assert detect_date_order(texts, hint) == expected


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en_US", "MDY"), ("en_GB", "DMY"), ("de_DE", "DMY"), ("fr_FR", "DMY"), ("es_ES", "DMY"),
     ("it_IT", "DMY"), ("nl_NL", "DMY")],
)
def test_date_order_of_each_locale(locale: str, expected: str) -> None:
    assert detect_date_order([], locale) == expected


# --------------------------------------------------------------------------------------------
# currency
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("€", "EUR"), ("EUR", "EUR"), ("eur", "EUR"), ("Euro", "EUR"), ("euros", "EUR"),
        ("1.234,56 €", "EUR"), ("$", "USD"), ("US$", "USD"), ("USD", "USD"), ("US Dollars", "USD"),
        ("£", "GBP"), ("GBP", "GBP"), ("pounds sterling", "GBP"), ("CHF", "CHF"), ("Fr.", "CHF"),
        ("SFr. 12.50", "CHF"), ("RM", "MYR"), ("RM 9.00", "MYR"), ("¥", "JPY"), ("C$", "CAD"),
        ("CA$", "CAD"), ("A$", "AUD"), ("AU$", "AUD"), ("NZ$", "NZD"), ("HK$", "HKD"),
        ("Canadian dollars", "CAD"), ("zł", "PLN"), ("Kč", "CZK"), ("₹", "INR"), ("SEK", "SEK"),
        ("", None), ("Total", None),
    ],
)
def test_parse_currency(text: str, expected: str | None) -> None:
    assert parse_currency(text) == expected


@pytest.mark.parametrize(
    ("context", "hint", "expected"),
    [
        (["All amounts in USD"], None, "USD"),
        (["Toronto, ON M5V 2T6"], None, "CAD"),
        (["GST/HST No. 123456789"], None, "CAD"),
        (["Sydney NSW 2000"], None, "AUD"),
        (["ABN 51 824 753 556"], None, "AUD"),
        (["Auckland, New Zealand"], None, "NZD"),
        (["Seattle, WA 98101"], None, "USD"),  # a US zip is not an Australian postcode
        ([], "en_CA", "CAD"),
        ([], "en_AU", "AUD"),
        ([], "en_US", "USD"),
        (["CAD"], "en_US", "CAD"),  # evidence on the page beats the hint
        ([], None, "USD"),
    ],
)
def test_dollar_disambiguation(context: list[str], hint: str | None, expected: str) -> None:
    assert parse_currency("$", context, hint) == expected


def test_krone_and_yen_need_context() -> None:
    assert parse_currency("kr") is None
    assert parse_currency("kr", locale_hint="sv_SE") == "SEK"
    assert parse_currency("kr", locale_hint="da_DK") == "DKK"
    assert parse_currency("kr", ["Oslo, Norge"]) == "NOK"
    assert parse_currency("¥", ["RMB 100"]) == "CNY"


@pytest.mark.parametrize(
    ("words", "hint", "expected"),
    [
        (_w("Summe 1.234,56 € MwSt 19 % 196,00 €"), None, "EUR"),
        (_w("Total $1,500.00 Tax $100.00"), None, "USD"),
        (_w("Total $1,500.00 Vancouver, BC V6B 1A1"), None, "CAD"),
        (_w("TOTAL RM 9.00 CASH RM 10.00"), None, "MYR"),
        (_w("ALL PRICES INCLUDE TAX 19,00 EUR"), None, "EUR"),  # "ALL" (lek) is a word here
        (_w("Invoice 12 Total 100.00"), None, None),
        (_w("Total € 100,00 and $ 5.00"), None, "EUR"),
    ],
)
def test_detect_currency(words: list[str], hint: str | None, expected: str | None) -> None:
    assert detect_currency(words, hint) == expected


# --------------------------------------------------------------------------------------------
# percentages, IBAN, tax ids
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("19 %", "19"), ("19,0%", "19"), ("7.5 %", "7.5"), ("20%", "20"), ("MwSt. 19%", "19"),
     ("TVA 5,5 %", "5.5"), ("IVA 21%", "21"), ("BTW 9%", "9"), ("0 %", "0"), ("8.875%", "8.875"),
     ("n/a", None)],
)
def test_parse_percent(text: str, expected: str | None) -> None:
    assert format_decimal(parse_percent(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DE89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("de89370400440532013000", "DE89370400440532013000"),
        ("IBAN: GB29 NWBK 6016 1331 9268 19", "GB29NWBK60161331926819"),
        ("FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606"),
        ("ES91 2100 0418 4502 0005 1332", "ES9121000418450200051332"),
        ("IT60 X054 2811 1010 0000 0123 456", "IT60X0542811101000000123456"),
        ("NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"),
        ("DE89 3704 0044 0532 0130 01", None),  # one digit off: checksum fails
        ("DE89 3704 0044 0532 0130", None),  # too short for Germany
        ("not an iban", None),
        ("", None),
    ],
)
def test_normalize_iban(text: str, expected: str | None) -> None:
    assert normalize_iban(text) == expected
    assert iban_is_valid(text) is (expected is not None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("USt-IdNr.: DE 123 456 789", "DE123456789"),
        ("USt-ID DE123456789", "DE123456789"),
        ("VAT Reg. No.: GB 123 4567 89", "GB123456789"),
        ("VAT: gb123456789", "GB123456789"),
        ("N° TVA intracom. FR 40 303 265 045", "FR40303265045"),
        ("P.IVA IT 12345678901", "IT12345678901"),
        ("Partita IVA: IT12345678901", "IT12345678901"),
        ("CIF: ESB12345678", "ESB12345678"),
        ("BTW-nummer: NL 8525.53.421.B01", "NL852553421B01"),
        ("ATU 12345678", "ATU12345678"),
        ("EIN 12-3456789", "12-3456789"),  # not an EU VAT id: separators kept
        ("Steuernummer 12/345/67890", "12/345/67890"),
        ("CHE-123.456.789 MWST", "CHE-123.456.789 MWST"),
        ("NO 123456789 MVA", "NO 123456789 MVA"),  # "NO" is Norway here, not "No."
        ("Tax ID: 94-1234567", "94-1234567"),
    ],
)
def test_clean_tax_id(text: str, expected: str) -> None:
    assert clean_tax_id(text) == expected


# --------------------------------------------------------------------------------------------
# document context and the decoder's entry point
# --------------------------------------------------------------------------------------------

PAGES = {
    "en_US": ("INVOICE Date: 01/15/2024 Due: 02/14/2024 Subtotal $1,000.00 Tax $80.00 "
              "Total $1,080.00 Thank you for your business"),
    "en_GB": "INVOICE Date: 15/01/2024 Total £1,080.00 VAT 20% Payment terms 30 days",
    "de_DE": "Rechnung Nr. 7 Datum 15.01.2024 Netto 1.000,00 € MwSt 19 % Gesamtbetrag 1.190,00 €",
    "fr_FR": "FACTURE N° 7 Date 15/01/2024 Total HT 1 000,00 € TVA 20 % Total TTC 1 200,00 €",
    "es_ES": "FACTURA Fecha 15/01/2024 Base imponible 1.000,00 € IVA 21 % Total 1.210,00 €",
    "it_IT": "FATTURA Data 15/01/2024 Imponibile 1.000,00 € IVA 22 % Totale 1.220,00 €",
    "nl_NL": "FACTUUR Factuurdatum 15-01-2024 Subtotaal € 1.000,00 BTW 21% Totaal € 1.210,00",
}


@pytest.mark.parametrize("locale", LOCALES)
def test_context_from_words_without_hint(locale: str) -> None:
    ctx = DocumentContext.from_words(PAGES[locale].split())
    assert ctx.number_convention.decimal == ("." if locale.startswith("en") else ",")
    assert ctx.date_order == ("MDY" if locale == "en_US" else "DMY")
    assert ctx.languages[0] == locale.split("_")[0]
    assert ctx.currency == {"en_US": "USD", "en_GB": "GBP"}.get(locale, "EUR")


def test_context_hint_fills_missing_evidence() -> None:
    ctx = DocumentContext.from_words(["Total", "1.234"], locale_hint="de_DE")
    assert ctx.number_convention is NC.COMMA_DECIMAL
    assert ctx.languages[0] == "de"
    assert normalize_field("TOTAL_AMOUNT", "1.234", ctx) == "1234.00"
    us = DocumentContext.from_words(["Total", "1.234"], locale_hint="en_US")
    assert normalize_field("TOTAL_AMOUNT", "1.234", us) == "1.234"


def test_detect_languages() -> None:
    assert detect_languages(_w("Rechnung Datum Betrag"))[:1] == ["de"]
    assert detect_languages(_w("factuur datum bedrag btw"))[:1] == ["nl"]
    assert detect_languages([], "it_IT") == ["it", "en"]
    assert detect_languages([]) == ["en"]


@pytest.mark.parametrize(
    ("locale", "entity", "text", "expected"),
    [
        ("en_US", "TOTAL_AMOUNT", "$1,080.00", "1080.00"),
        ("en_US", "INVOICE_DATE", "01/15/2024", "2024-01-15"),
        ("en_US", "CURRENCY", "$", "USD"),
        ("en_US", "TAX_RATE", "8%", "8"),
        ("en_US", "ITEM_QUANTITY", "2", "2"),
        ("en_US", "ITEM_UNIT_PRICE", "$1,234", "1234.00"),
        ("en_GB", "DUE_DATE", "14/02/2024", "2024-02-14"),
        ("de_DE", "TOTAL_AMOUNT", "1.190,00 €", "1190.00"),
        ("de_DE", "ITEM_UNIT_PRICE", "1.234", "1234.00"),
        ("de_DE", "ITEM_QUANTITY", "2,5", "2.5"),
        ("de_DE", "INVOICE_DATE", "3. März 2024", "2024-03-03"),
        ("de_DE", "SUPPLIER_TAX_ID", "USt-IdNr. DE 123 456 789", "DE123456789"),
        ("fr_FR", "TOTAL_AMOUNT", "1 200,00 €", "1200.00"),
        ("fr_FR", "INVOICE_DATE", "15 janvier 2024", "2024-01-15"),
        ("es_ES", "INVOICE_DATE", "15 de enero de 2024", "2024-01-15"),
        ("it_IT", "TAX_RATE", "22 %", "22"),
        ("it_IT", "SUPPLIER_TAX_ID", "P.IVA 12345678901", "IT12345678901"),  # bare partita IVA: EU form
        ("es_ES", "BUYER_TAX_ID", "CIF: B-2803187", "B-2803187"),  # not a whole NIF: left alone
        ("es_ES", "BUYER_TAX_ID", "CIF: B-28031870", "ESB28031870"),
        ("en_GB", "DISCOUNT", "-£1,916.97", "1916.97"),  # a discount is a reduction, however printed
        ("de_DE", "DISCOUNT", "(19,17 €)", "19.17"),
        ("nl_NL", "SUPPLIER_IBAN", "NL91 ABNA 0417 1643 00", "NL91ABNA0417164300"),
        ("de_DE", "SUPPLIER_IBAN", "DE89 3704 0044 0532 0130 00,", "DE89370400440532013000"),  # ", BIC ..." follows
        ("nl_NL", "SUPPLIER_IBAN", "NL91 ABNA 0417 1643 01", "NL91ABNA0417164301"),  # kept for validation
        ("nl_NL", "CURRENCY", "Euro", "EUR"),
        ("en_US", "INVOICE_NUMBER", "# INV-2024-001", "INV-2024-001"),
        ("de_DE", "INVOICE_NUMBER", "05.03.2018", None),  # a date is not an invoice number
        ("de_DE", "INVOICE_NUMBER", "202,33", None),  # nor an amount, nor a word without digits
        ("fr_FR", "PO_NUMBER", "Globale", None),
        ("de_DE", "INVOICE_NUMBER", "01.234.567.8-2018-1", "01.234.567.8-2018-1"),
        ("en_US", "INVOICE_NUMBER", "662627.", "662627"),  # the full stop of a sentence
        ("de_DE", "INVOICE_NUMBER", "471102 vom 05.03.2018", "471102"),  # a title's date after it
        ("en_US", "SUPPLIER_EMAIL", "mailto:Billing@Acme.COM", "billing@acme.com"),
        ("en_US", "SUPPLIER_NAME", "  Acme \n Corp  ", "Acme Corp"),
        ("en_US", "INVOICE_DATE", "not a date", None),
        ("en_US", "TOTAL_AMOUNT", "n/a", None),
    ],
)
def test_normalize_field(locale: str, entity: str, text: str, expected: str | None) -> None:
    ctx = DocumentContext.from_words(PAGES[locale].split())
    assert normalize_field(entity, text, ctx) == expected


def test_currency_field_falls_back_to_document_currency() -> None:
    ctx = DocumentContext.from_words(_w("Total $1,500.00 Toronto, ON M5V 2T6"))
    assert ctx.currency == "CAD"
    assert normalize_field("CURRENCY", "$", ctx) == "CAD"
    assert normalize_field("CURRENCY", "???", ctx) == "CAD"


# --------------------------------------------------------------------------------------------
# agreement with the real-data scorer's own normalisation
# --------------------------------------------------------------------------------------------

REALDATA = Path(os.environ.get("INVOICEGEN_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))


@pytest.fixture(scope="module")
def score_module() -> ModuleType:
    path = REALDATA / "score.py"
    if not path.is_file():
        pytest.skip(f"no real-data scorer at {path}")
    spec = importlib.util.spec_from_file_location("_realdata_score", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_realdata_score", module)
    spec.loader.exec_module(module)
    return module


AGREE_AMOUNTS = ["$1,234.50", "1.234,56 EUR", "1,269.12-", "(1,269.12)", "RM 9.00", "34,-",
                 "EUR -8,79", "1 234,56 €", "CHF 1'234.50", "9.00", "-$5.00", "USD 1,500"]
AGREE_DATES = [("15/01/2024", "DMY"), ("01/15/2024", "MDY"), ("25.12.2018", None), ("2024-01-15", None),
               ("Aug 3, 2014", "MDY"), ("3. März 2024", "DMY"), ("15 janvier 2024", "DMY"),
               ("15 de enero de 2024", "DMY"), ("15 gennaio 2024", "DMY"), ("15 januari 2024", "DMY"),
               ("15-Jan-24", None), ("03/04/2018", "MDY"), ("10/03/2018 5:41:06", "DMY")]


@pytest.mark.realdata
@pytest.mark.parametrize("text", AGREE_AMOUNTS)
def test_amounts_agree_with_scorer(score_module: ModuleType, text: str) -> None:
    ours = parse_amount(text)
    theirs = score_module.parse_amount(text)
    assert ours is not None and theirs is not None
    assert score_module.quantize_amount(ours) == score_module.quantize_amount(theirs)
    # and the scorer reads our normalised output back to the same value
    assert score_module.quantize_amount(score_module.parse_amount(format_amount(ours))) == \
        score_module.quantize_amount(ours)


@pytest.mark.realdata
@pytest.mark.parametrize(("text", "order"), AGREE_DATES)
def test_dates_agree_with_scorer(score_module: ModuleType, text: str, order: str | None) -> None:
    ours = parse_date(text, ["de", "fr", "es", "it", "nl", "en"], order)
    assert ours is not None
    assert score_module.parse_date(text, order) == {ours}
    assert score_module.parse_date(ours.isoformat(), order) == {ours}


@pytest.mark.realdata
@pytest.mark.parametrize("text", ["€", "EUR", "$", "US$", "RM", "£", "CHF", "Fr.", "C$", "euros"])
def test_currency_agrees_with_scorer(score_module: ModuleType, text: str) -> None:
    assert score_module.norm_currency(text) == parse_currency(text)


# --------------------------------------------------------------------------------------------
# OCR noise seen on real scans
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("4,759 .20", "4759.20"), ("1,269 .12-", "-1269.12"),
                                                ("132 .20", "132.20")])
def test_amount_with_space_before_decimals(text: str, expected: str) -> None:
    assert format_amount(parse_amount(text)) == expected


@pytest.mark.parametrize(("text", "expected"), [("l.738,36", "1738.36"), ("4l2.44 GBP", "412.44"),
                                                ("713,0B €", "713.08"), ("€ 1O0,00", "100.00"),
                                                ("S$12.00", "12.00"), ("USD 4575.68", "4575.68")])
def test_amount_with_letters_read_for_digits(text: str, expected: str) -> None:
    assert format_amount(parse_amount(text)) == expected


@pytest.mark.parametrize(("text", "expected"), [("Fow1er, White and Black", "Fowler, White and Black"),
                                                ("Guinizzelli-Prodi s.r.1.", "Guinizzelli-Prodi s.r.l."),
                                                ("INV0ICE SA", "INVOICE SA"), ("Bloomberg 2020, Inc", "Bloomberg 2020, Inc"),
                                                ("B2B Solutions", "B2B Solutions"), ("Route 101 Diner", "Route 101 Diner")])
def test_names_read_ocr_digits_between_letters_as_letters(text: str, expected: str) -> None:
    assert normalize_field("BUYER_NAME", text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("5tudio 96i Ward Passage", "Studio 96i Ward Passage"), ("F1at 00 Amanda P0rts", "Flat 00 Amanda Ports"),
    ("Urbanización Amand0 Ródenas 2 Pis0 4", "Urbanización Amando Ródenas 2 Piso 4"),
    ("Rotonda Annalisa, 798 41O40, San Martino", "Rotonda Annalisa, 798 41040, San Martino"),
    ("Fritschallee 3/5 3B228 Bad Langensalza", "Fritschallee 3/5 38228 Bad Langensalza"),
    ("Vizcaya, O2834", "Vizcaya, 02834"),
    # postcodes and house numbers with letters stay as printed
    ("96 Matthews Terrace SL8 2NZ", "96 Matthews Terrace SL8 2NZ"), ("Platz 2377B B1 1AA", "Platz 2377B B1 1AA"),
    ("Flat 3 North Garyfort CB0H 8SG", "Flat 3 North Garyfort CB0H 8SG"),
    ("Oslo 0150", "Oslo 0150"),
    # a tax caption or a phone number the address ran into
    ("Alameda Isaura Pont 28 Lleida, 09080 N.I.F.:", "Alameda Isaura Pont 28 Lleida, 09080"),
    ("Rotonda Antonello, 261 46012, Bozzolo (MN) P.IVA", "Rotonda Antonello, 261 46012, Bozzolo (MN)"),
    ("1103 Taylor Roads Lake Stephen, IA 70701 40-2597147", "1103 Taylor Roads Lake Stephen, IA 70701"),
    ("Sainte Daniel 0759743393", "Sainte Daniel"), ("Zaltbommel 6292IU", "Zaltbommel 6292IU")])
def test_addresses_undo_ocr_slips_between_letters_and_digits(text: str, expected: str) -> None:
    assert normalize_field("SUPPLIER_ADDRESS", text) == expected


def test_date_with_the_time_glued_to_the_year() -> None:
    assert parse_date("04/03/201815:41:52") == date(2018, 3, 4)


def test_page_currency_ignores_noise_and_bare_rare_codes() -> None:
    assert detect_currency(_w("WPPS <£Vfff WIN5UWKf")) is None
    assert detect_currency(_w("ELECT RON IC PAYMENT PROGRAM")) is None
    assert detect_currency(_w("Total RON 120,00")) == "RON"
    assert detect_currency(_w("Preis (€) Menge")) == "EUR"


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("Invoice 1 2 02 Anywhere, USA, 99999 Total 4,759.20", "MDY"),
        ("Invoice Austin, TX 78701 Date 03/04/2024", "MDY"),
        ("Invoice Total $100.00 Date 03/04/2024", "MDY"),
        ("Invoice Total £100.00 Date 03/04/2024", "DMY"),
        ("Invoice Total 100.00 Date 03/04/2024", "DMY"),
    ],
)
def test_date_order_from_us_cues(page: str, expected: str) -> None:
    assert DocumentContext.from_words(_w(page)).date_order == expected
