"""Printed field text -> normalised contract values (see ARCHITECTURE.md, "Result contract").

Why conventions are decided once per document: "1.234" is one thousand two hundred and thirty-four
on a German invoice and one point two three four on an American one, and "03/04/2024" is the 3rd
of April in Paris and March 4th in Chicago. A single string cannot tell; the whole page usually
can (some other amount reads "1.234,56", some other date "15/01/2024"). ``DocumentContext``
gathers that evidence from all words of a document once, and every field is then read with it.

Values produced here: amounts as decimal strings with at least two decimals ("1500.00", never
floats), quantities as plain decimals ("2", "1.5"), percentages as percent points ("19", "7.5"),
dates ISO 8601, currencies ISO 4217, IBANs and EU VAT ids compact and upper case.

Amount parsing is our own rather than price-parser's because price-parser drops signs (trailing
minus, parentheses, "CR") and cannot take a per-document decision for "1.234"; dateparser is used
only as a fallback after fast explicit patterns, because it is slow to initialise.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import lru_cache
from typing import Any

from invoicegen.schema import AMOUNT_ENTITIES, DATE_ENTITIES, PERCENT_ENTITIES

__all__ = [
    "DocumentContext",
    "NumberConvention",
    "clean_tax_id",
    "detect_currency",
    "detect_date_order",
    "detect_languages",
    "detect_number_convention",
    "format_amount",
    "format_decimal",
    "iban_is_valid",
    "normalize_field",
    "normalize_iban",
    "parse_amount",
    "parse_currency",
    "parse_date",
    "parse_percent",
]

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl")
"""Languages the keyword detector and the fast month-name table know."""

# ============================================================================================
# numbers
# ============================================================================================


class NumberConvention(Enum):
    """How a document prints numbers: decimal mark and thousands grouping.

    Only the decimal mark changes how a number is read; the grouping is kept because it tells
    the style apart for reports and for rendering ("1 234,56" vs "1.234,56").
    """

    DOT_DECIMAL = "1,234.56"
    COMMA_DECIMAL = "1.234,56"
    SPACE_COMMA = "1 234,56"
    APOSTROPHE_DOT = "1'234.56"

    @property
    def decimal(self) -> str:
        """The decimal mark ("." or ",")."""
        return "," if self in (NumberConvention.COMMA_DECIMAL, NumberConvention.SPACE_COMMA) else "."

    @property
    def group(self) -> str:
        """The usual thousands separator."""
        return {"1,234.56": ",", "1.234,56": ".", "1 234,56": " ", "1'234.56": "'"}[self.value]


_SPACES = " \u00a0\u202f\u2009\u2007"
_APOSTROPHES = "'\u2019\u02bc"
_MINUS = "-\u2212\u2013\u2012"


def _wordset(words: str) -> set[str]:
    """A set from a space-separated word list (keeps long tables readable)."""
    return set(words.split())


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _fold(text: str) -> str:
    """ASCII-fold and lower-case ("März" -> "marz") for keyword and month matching."""
    s = unicodedata.normalize("NFKD", text)
    return "".join(c for c in s if not unicodedata.combining(c)).lower()


def _split_locale(locale_hint: str | None) -> tuple[str | None, str | None]:
    """"de_DE" / "de-de" / "de" -> ("de", "DE") / ("de", None)."""
    if not locale_hint:
        return None, None
    parts = re.split(r"[-_.@]", locale_hint.strip())
    lang = parts[0].lower() or None
    region = parts[1].upper() if len(parts) > 1 and parts[1] else None
    return lang, region


@lru_cache(maxsize=64)
def convention_for_locale(locale_hint: str | None) -> NumberConvention | None:
    """The number convention a locale prints with (from Babel's CLDR data), None if unknown."""
    lang, region = _split_locale(locale_hint)
    if lang is None:
        return None
    try:
        from babel.numbers import get_decimal_symbol, get_group_symbol

        loc = f"{lang}_{region}" if region else lang
        dec, grp = get_decimal_symbol(loc), get_group_symbol(loc)
    except Exception:
        return None
    if dec == ",":
        return NumberConvention.COMMA_DECIMAL if grp == "." else NumberConvention.SPACE_COMMA
    return NumberConvention.APOSTROPHE_DOT if grp in _APOSTROPHES else NumberConvention.DOT_DECIMAL


_NUM_TOKEN = re.compile(r"\d[\d.,'\u2019\u02bc]*\d|\d")
_SPACE_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:[ \u00a0\u202f\u2009\u2007]\d{3})+,\d{1,2}(?!\d)")


def _vote(token: str) -> tuple[str | None, float, str | None]:
    """Evidence one number token gives: (decimal mark, weight, group style)."""
    style = None
    if any(a in token for a in _APOSTROPHES):
        style = "'"
        token = re.sub(f"[{_APOSTROPHES}]", "", token)
    has_dot, has_comma = "." in token, "," in token
    if has_dot and has_comma:
        dec = "." if token.rfind(".") > token.rfind(",") else ","
        grp = "," if dec == "." else "."
        head, _, frac = token.rpartition(dec)
        groups = head.split(grp)
        if grp in frac or not all(len(g) == 3 for g in groups[1:]) or not 1 <= len(groups[0]) <= 3:
            return None, 0.0, style
        return dec, 2.0, style or grp
    if not (has_dot or has_comma):
        return None, 0.0, style
    sep = "." if has_dot else ","
    parts = token.split(sep)
    if len(parts) > 2:
        if all(len(p) == 3 for p in parts[1:]) and 1 <= len(parts[0]) <= 3:
            return ("," if sep == "." else "."), 1.0, style or sep
        return None, 0.0, style  # dates such as 15.01.2024, version numbers
    frac = parts[1]
    if len(frac) == 2:
        return sep, 1.0, style
    if len(frac) == 1:
        return sep, 0.5, style
    if len(frac) == 3 and style == "'":
        return sep, 1.0, style
    return None, 0.0, style


def detect_number_convention(texts: list[str], locale_hint: str | None = None) -> NumberConvention:
    """Decide a document's number convention from all its amount-like strings.

    Strong evidence: a number with both marks ("1,234.56"); normal: one mark with two decimals
    ("12,50"); weak: one decimal ("7,5"). "1.234" (three digits after one mark) gives none.
    Without evidence (or on a tie) the locale hint decides, else the dot-decimal convention.
    """
    votes: defaultdict[str, float] = defaultdict(float)
    styles: Counter[str] = Counter()
    for raw in texts:
        text = _nfkc(raw) if not raw.isascii() else raw
        if _SPACE_GROUPED.search(raw) or _SPACE_GROUPED.search(text):
            votes[","] += 2.0
            styles[" "] += 1
        for m in _NUM_TOKEN.finditer(text):
            dec, weight, style = _vote(m.group(0))
            if dec is not None:
                votes[dec] += weight
            if style is not None:
                styles[style] += 1
    hinted = convention_for_locale(locale_hint)
    if votes["."] == votes[","]:
        if hinted is not None:
            return hinted
        dec = "."
    else:
        dec = "." if votes["."] > votes[","] else ","
    if dec == ",":
        if styles[" "] > styles["."] or (
            styles[" "] == styles["."] == 0 and hinted is NumberConvention.SPACE_COMMA
        ):
            return NumberConvention.SPACE_COMMA
        return NumberConvention.COMMA_DECIMAL
    if styles["'"] > 0 or (not styles and hinted is NumberConvention.APOSTROPHE_DOT):
        return NumberConvention.APOSTROPHE_DOT
    return NumberConvention.DOT_DECIMAL


_GROUPED_NUM = re.compile(r"\d{1,3}(?:[ '\u2019\u02bc]\d{3})+(?:[.,]\d+)?(?![\d])")
_PLAIN_NUM = re.compile(r"\d[\d.,'\u2019\u02bc]*")
_CUR = r"(?:[A-Za-z]{1,3}\.?\s?\$?|[^\w\s()]{1,2})?"  # optional currency code or symbol


def _number_text(token: str, decimal_mark: str | None) -> str | None:
    """One number token -> a plain "1234.56" string (None if it is not a number)."""
    token = re.sub(f"[ {_APOSTROPHES}]", "", token).rstrip(".,")
    if not token:
        return None
    has_dot, has_comma = "." in token, "," in token
    if has_dot and has_comma:
        dec = "." if token.rfind(".") > token.rfind(",") else ","
        grp = "," if dec == "." else "."
        token = token.replace(grp, "")
        if token.count(dec) > 1:
            return None
        return token.replace(dec, ".")
    if not (has_dot or has_comma):
        return token
    sep = "." if has_dot else ","
    parts = token.split(sep)
    if len(parts) > 2:
        if all(len(p) == 3 for p in parts[1:]):
            return "".join(parts)
        return "".join(parts[:-1]) + "." + parts[-1]  # "1.234.56" (OCR): last mark is decimal
    intpart, frac = parts
    if len(frac) != 3 or intpart in ("", "0") or len(intpart) > 3:
        return intpart + "." + frac
    # "1.234" / "1,234": the document's convention decides; without one, thousands (as score.py)
    if decimal_mark is None:
        return intpart + frac
    return intpart + "." + frac if sep == decimal_mark else intpart + frac


def _find_number(s: str) -> re.Match[str] | None:
    """The amount's number in a string: the first one that is not a percentage."""
    found: list[re.Match[str]] = []
    pos = 0
    while pos < len(s):
        g = _GROUPED_NUM.search(s, pos)
        p = _PLAIN_NUM.search(s, pos)
        m = g if g is not None and (p is None or g.start() <= p.start()) else p
        if m is None:
            break
        found.append(m)
        pos = m.end()
    for m in found:
        if not re.match(r"\s?%", s[m.end():]):
            return m
    return found[0] if found else None


_OCR_DIGITS = str.maketrans("lIOoBS", "110085")
_OCR_NUMBER = re.compile(r"(?<![A-Za-z])(?=[lIOoBS]?[\d.,]*\d)(?=(?:[\d.,]*[lIOoBS]){1,2})[\dlIOoBS.,]*\d[\dlIOoBS.,]*(?![A-Za-z])")
"""A number with one or two letters OCR reads for digits in it (l/I for 1, O/o for 0, B for 8, S for 5)."""


def parse_amount(
    text: str | None,
    convention: NumberConvention | None = None,
    locale_hint: str | None = None,
) -> Decimal | None:
    """Read a printed amount ("$1,234.50", "1.234,56 EUR", "1,269.12-", "(5.00)", "9.00 CR").

    The convention (or, failing that, the locale hint) decides numbers that read both ways
    ("1.234"); without either they read as thousands, like the real-data scorer. Signs: leading or
    trailing minus, parentheses and a "CR" (credit) marker make the amount negative. The Decimal
    keeps the printed scale ("12.5" -> Decimal("12.5")); None when there is no number.
    """
    if text is None:
        return None
    s = _nfkc(str(text)).strip()
    if not s:
        return None
    s = re.sub(r"(?<=\d)\s+(?=[.,]\d{2}(?![\d.,]))", "", s)  # OCR: "4,759 .20"
    s = _OCR_NUMBER.sub(lambda m: m.group(0).translate(_OCR_DIGITS), s)  # OCR: "l.738,36", "713,0B"
    if convention is None:
        convention = convention_for_locale(locale_hint)
    m = _find_number(s)
    if m is None:
        return None
    num = _number_text(m.group(0), convention.decimal if convention else None)
    if num is None:
        return None
    try:
        amount = Decimal(num)
    except InvalidOperation:
        return None
    before, after = s[: m.start()], s[m.end():]
    dangling = m.group(0)[-1] in ".,"  # "34,-" is 34 (German "no cents"), not -34
    negative = bool(
        re.search(rf"[{_MINUS}]\s*{_CUR}\s*$", before)
        or (not dangling and re.match(rf"\s?[{_MINUS}]\s*{_CUR}\s*$", after))
        or (re.search(rf"\(\s*{_CUR}\s*$", before) and re.match(rf"\s*{_CUR}\s*\)", after))
        or re.search(r"(?<![A-Za-z])CR\.?$", after.strip(), re.IGNORECASE)
        or re.match(r"\s*CR\b", before, re.IGNORECASE)
    )
    return -amount if negative else amount


def format_amount(value: Decimal | None) -> str | None:
    """Decimal -> contract amount string: at least two decimals, more only if significant.

    "1500" -> "1500.00", "12.5" -> "12.50", "0.125" -> "0.125", "12.3400" -> "12.34".
    """
    if value is None:
        return None
    if not value.is_finite():
        return None
    q = value.normalize()
    exp = q.as_tuple().exponent
    if isinstance(exp, int) and exp > -2:
        q = q.quantize(Decimal("0.01"))
    if q == 0:
        q = abs(q)
    return format(q, "f")


def format_decimal(value: Decimal | None) -> str | None:
    """Decimal -> plain string without trailing zeros ("2.000" -> "2", "19.50" -> "19.5")."""
    if value is None or not value.is_finite():
        return None
    q = value.normalize()
    if q == q.to_integral_value():
        q = q.quantize(Decimal(1))
    if q == 0:
        q = abs(q)
    return format(q, "f")


_PERCENT = re.compile(r"(\d+(?:[.,]\d+)?)\s*%")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def parse_percent(text: str | None) -> Decimal | None:
    """Read a rate in percent points ("19 %", "19,0%", "7.5 %", "MwSt. 19%") -> Decimal("19")..

    The number next to a "%" wins; otherwise the first number. Rates are small, so one mark is
    always a decimal mark here ("7,5" is 7.5, never 75).
    """
    if text is None:
        return None
    s = _nfkc(str(text))
    m = _PERCENT.search(s) or _NUMBER.search(s)
    if m is None:
        return None
    token = m.group(1) if m.re is _PERCENT else m.group(0)
    try:
        value = Decimal(token.replace(",", "."))
    except InvalidOperation:
        return None
    if re.search(rf"[{_MINUS}]\s*$", s[: m.start()]):
        value = -value
    return value


# ============================================================================================
# dates
# ============================================================================================

_MONTH_NAMES: dict[str, tuple[str, ...]] = {
    # folded to ASCII lower case; index 0 = January
    "en": ("january jan", "february feb", "march mar", "april apr", "may", "june jun",
           "july jul", "august aug", "september sep sept", "october oct", "november nov",
           "december dec"),
    "de": ("januar jan janner jaenner", "februar feb", "marz maerz mrz", "april apr", "mai",
           "juni jun", "juli jul", "august aug", "september sep sept", "oktober okt",
           "november nov", "dezember dez"),
    "fr": ("janvier janv", "fevrier fevr fev", "mars", "avril avr", "mai", "juin",
           "juillet juil", "aout", "septembre sept", "octobre oct", "novembre nov",
           "decembre dec"),
    "es": ("enero ene", "febrero feb", "marzo mar", "abril abr", "mayo may", "junio jun",
           "julio jul", "agosto ago", "septiembre setiembre sep sept", "octubre oct",
           "noviembre nov", "diciembre dic"),
    "it": ("gennaio gen", "febbraio feb", "marzo mar", "aprile apr", "maggio mag",
           "giugno giu", "luglio lug", "agosto ago", "settembre set sett", "ottobre ott",
           "novembre nov", "dicembre dic"),
    "nl": ("januari jan", "februari feb", "maart mrt", "april apr", "mei", "juni jun",
           "juli jul", "augustus aug", "september sep sept", "oktober okt", "november nov",
           "december dec"),
}
MONTHS: dict[str, int] = {
    name: i + 1 for groups in _MONTH_NAMES.values() for i, g in enumerate(groups) for name in g.split()
}
"""Folded month name or abbreviation -> month number, for all supported languages."""

_M = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")(?![a-z])\.?"
_ORD = r"(?:st|nd|rd|th|er|re|e|o|°)?\.?"
_DMY_NAME = re.compile(
    rf"(?<![\d])(\d{{1,2}}){_ORD}[\s\-/.,]*(?:de\s+)?{_M}[\s\-/.,]*(?:de\s+|del\s+)?'?(\d{{4}}|\d{{2}})(?!\d)"
)
_MDY_NAME = re.compile(rf"(?<![a-z]){_M}[\s\-/.]*(\d{{1,2}}){_ORD}(?!\d)[\s,.\-/]*'?(\d{{4}}|\d{{2}})(?!\d)")
_YMD_NAME = re.compile(rf"(?<!\d)(\d{{4}})[\s\-/.,]*{_M}[\s\-/.,]*(\d{{1,2}})(?!\d)")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?!\d)")
_NUM_DATE = re.compile(r"(?<![\d.,])(\d{1,2})\s?([-/.])\s?(\d{1,2})\s?\2\s?(\d{4}|\d{2})(?![\d])")
_NUM_DATE_SPACED = re.compile(r"(?<![\d.,])(\d{1,2})\s+(\d{1,2})\s+(\d{4})(?!\d)")
_COMPACT_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)")


def _year(y: str) -> int:
    v = int(y)
    if v < 100:
        v += 2000 if v < 70 else 1900
    return v


def _mk(y: str | int, m: str | int, d: str | int) -> date | None:
    try:
        return date(_year(str(y)), int(m), int(d))
    except (TypeError, ValueError):
        return None


def _numeric(a: str, b: str, y: str, date_order: str | None, sep: str) -> date | None:
    """Read "a/b/y" with the document's order; a reading that cannot be a date yields to the other."""
    order = date_order
    if order not in ("DMY", "MDY"):
        if int(a) > 12 >= int(b):
            order = "DMY"
        elif int(b) > 12 >= int(a):
            order = "MDY"
        else:
            order = "DMY"  # unknown and ambiguous: day first, as most of the world
    first = _mk(y, b, a) if order == "DMY" else _mk(y, a, b)
    if first is not None:
        return first
    return _mk(y, a, b) if order == "DMY" else _mk(y, b, a)


def _fast_date(text: str, date_order: str | None) -> date | None:
    m = _ISO_DATE.search(text)
    if m:
        d = _mk(m.group(1), m.group(3), m.group(4))
        if d:
            return d
    m = _NUM_DATE.search(text)
    if m:
        d = _numeric(m.group(1), m.group(3), m.group(4), date_order, m.group(2))
        if d:
            return d
    m = _COMPACT_DATE.search(text)
    if m:
        d = _mk(*m.groups())
        if d:
            return d
    folded = _fold(text)
    candidates = []
    for rx, order in ((_DMY_NAME, "dmy"), (_MDY_NAME, "mdy"), (_YMD_NAME, "ymd")):
        m = rx.search(folded)
        if m:
            candidates.append((m.start(), order, m))
    for _, order, m in sorted(candidates, key=lambda c: c[0]):
        if order == "dmy":
            d = _mk(m.group(3), MONTHS[m.group(2)], m.group(1))
        elif order == "mdy":
            d = _mk(m.group(3), MONTHS[m.group(1)], m.group(2))
        else:
            d = _mk(m.group(1), MONTHS[m.group(2)], m.group(3))
        if d:
            return d
    m = _NUM_DATE_SPACED.search(text)
    if m:
        return _numeric(m.group(1), m.group(2), m.group(3), date_order, " ")
    return None


@lru_cache(maxsize=32)
def _date_parser(languages: tuple[str, ...] | None, date_order: str | None) -> Any:
    """One dateparser parser per (languages, order): building it is the slow part, so cache it."""
    from dateparser.date import DateDataParser

    settings: dict[str, Any] = {
        "PREFER_DAY_OF_MONTH": "first",
        "REQUIRE_PARTS": ["day", "month", "year"],
        "PARSERS": ["custom-formats", "absolute-time"],
    }
    if date_order in ("DMY", "MDY", "YMD"):
        settings["DATE_ORDER"] = date_order
    return DateDataParser(languages=list(languages) if languages else None, settings=settings)


@lru_cache(maxsize=4096)
def _slow_date(text: str, languages: tuple[str, ...] | None, date_order: str | None) -> date | None:
    try:
        data = _date_parser(languages, date_order).get_date_data(text)
    except Exception:
        return None
    return data.date_obj.date() if data and data.date_obj else None


_GLUED_TIME = re.compile(r"(?<=[-/.]\d{4})(?=\d{1,2}:\d{2})")
"""Where OCR glued the time to a date's four-digit year ("04/03/201815:41:52")."""
_TIME = re.compile(r"\b\d{1,2}[:h]\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?", re.IGNORECASE)


def parse_date(
    text: str | None, languages: list[str] | None = None, date_order: str | None = None,
    fallback: bool = True,
) -> date | None:
    """Read a printed date ("15/01/2024", "3. März 2024", "Jan 15, 2024", "15-Jan-24").

    Numeric dates follow ``date_order`` ("DMY" or "MDY"); without it a part above 12 decides and
    ambiguous ones read day first. Explicit patterns (numeric, ISO, month names in en/de/fr/es/it/nl)
    run first; dateparser, restricted to ``languages``, only reads what they miss (unless
    ``fallback`` is False: a scan of every word of a page cannot afford dateparser).
    """
    if text is None:
        return None
    s = _nfkc(str(text)).strip()
    if not s or not re.search(r"\d", s):
        return None
    s = _GLUED_TIME.sub(" ", s)
    s = _TIME.sub(" ", s)
    d = _fast_date(s, date_order)
    if d is not None or not fallback:
        return d
    langs = tuple(lang for lang in (languages or []) if lang) or None
    return _slow_date(" ".join(s.split()), langs, date_order)


def detect_date_order(texts: list[str], locale_hint: str | None = None) -> str:
    """"DMY" or "MDY" for a document, from its numeric dates, else from the locale hint.

    A date whose first part exceeds 12 votes DMY, one whose second part does votes MDY; dotted
    dates ("15.01.2024") lean DMY. Without evidence: MDY for US-style locales (en_US, en_PH, bare
    "en"), DMY otherwise.
    """
    votes: defaultdict[str, float] = defaultdict(float)
    for text in texts:
        for m in _NUM_DATE.finditer(text):
            a, sep, b = int(m.group(1)), m.group(2), int(m.group(3))
            if 31 >= a > 12 >= b >= 1:
                votes["DMY"] += 1
            elif b > 12 >= a >= 1 and b <= 31:
                votes["MDY"] += 1
            elif sep == ".":
                votes["DMY"] += 0.25
    if votes["DMY"] != votes["MDY"]:
        return "DMY" if votes["DMY"] > votes["MDY"] else "MDY"
    return _order_for_locale(locale_hint)


def _order_for_locale(locale_hint: str | None) -> str:
    lang, region = _split_locale(locale_hint)
    if region in ("US", "PH", "FM", "MH", "PW") or (lang == "en" and region is None):
        return "MDY"
    return "DMY"


# ============================================================================================
# languages
# ============================================================================================

_KEYWORDS: dict[str, set[str]] = {
    "en": _wordset("invoice bill date due total subtotal amount tax qty quantity description price "
              "payment terms balance thank you the and of for to number ship sales unit each "
              "order customer"),
    "de": _wordset("rechnung rechnungsnummer rechnungsdatum datum betrag summe gesamt gesamtbetrag "
              "netto brutto mwst ust umsatzsteuer menge einzelpreis beschreibung zahlbar bis und "
              "der die das fur bitte lieferdatum steuernummer bankverbindung zwischensumme "
              "zahlungsziel artikel bezeichnung"),
    "fr": _wordset("facture montant tva ht ttc quantite prix unitaire designation echeance reglement "
              "le la les du des et pour numero paiement total date client conditions "
              "sous"),
    "es": _wordset("factura fecha importe iva cantidad precio descripcion vencimiento pago base "
              "imponible el los las del para numero total cliente subtotal forma"),
    "it": _wordset("fattura data importo iva quantita prezzo descrizione scadenza pagamento "
              "imponibile totale il di della per numero partita cliente aliquota"),
    "nl": _wordset("factuur factuurnummer factuurdatum datum bedrag btw totaal aantal prijs "
              "omschrijving vervaldatum betaling het van voor te subtotaal klant "
              "betalingstermijn"),  # not "de" / "en": Spanish and French print them as often
}
_KEYWORD_LANGS: dict[str, list[str]] = {}
for _lang, _words in _KEYWORDS.items():
    for _w in _words:
        _KEYWORD_LANGS.setdefault(_w, []).append(_lang)


def detect_languages(words: list[str], locale_hint: str | None = None) -> list[str]:
    """The document's likely languages, most likely first, always ending with English.

    Keyword votes (a word shared by k languages counts 1/k); the hint's language goes first.
    English stays in the list because invoices mix it in (codes, "Total", "IBAN").
    """
    scores: defaultdict[str, float] = defaultdict(float)
    for w in words:
        for token in re.findall(r"[a-z]+", _fold(w)):
            langs = _KEYWORD_LANGS.get(token)
            if langs:
                for lang in langs:
                    scores[lang] += 1.0 / len(langs)
    ranked = [lang for lang, sc in sorted(scores.items(), key=lambda kv: -kv[1]) if sc >= 2.0]
    hint, _ = _split_locale(locale_hint)
    out: list[str] = []
    if hint in SUPPORTED_LANGUAGES:
        out.append(hint)
    out.extend(lang for lang in ranked[:2] if lang not in out)
    if "en" not in out:
        out.append("en")
    return out


# ============================================================================================
# currency
# ============================================================================================

_PREFIXED_DOLLARS: tuple[tuple[str, str], ...] = (
    ("USD$", "USD"), ("U.S.$", "USD"), ("US$", "USD"), ("CAD$", "CAD"), ("CA$", "CAD"),
    ("C$", "CAD"), ("AUD$", "AUD"), ("AU$", "AUD"), ("A$", "AUD"), ("NZD$", "NZD"),
    ("NZ$", "NZD"), ("HK$", "HKD"), ("SGD$", "SGD"), ("SG$", "SGD"), ("S$", "SGD"),
    ("MX$", "MXN"), ("R$", "BRL"),
)
_PREFIXED_RE = re.compile(
    r"(?<![A-Za-z])("
    + "|".join(re.escape(p[:-1]) for p, _ in _PREFIXED_DOLLARS)
    + r")\s?\$"
)
_PREFIX_CODES = {p[:-1].upper(): code for p, code in _PREFIXED_DOLLARS}
_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("\u20ac", "EUR"), ("\u00a3", "GBP"), ("\u20b9", "INR"), ("\u20a9", "KRW"), ("\u20bd", "RUB"),
    ("\u20ba", "TRY"), ("\u20aa", "ILS"), ("\u20ab", "VND"), ("\u0e3f", "THB"), ("\u20b1", "PHP"),
    ("\u20b4", "UAH"), ("\u20a6", "NGN"), ("\u20a1", "CRC"), ("\u20b2", "PYG"), ("\u20b5", "GHS"),
    ("\u20b8", "KZT"), ("\u20bc", "AZN"), ("\u20be", "GEL"), ("\u5186", "JPY"), ("\u5143", "CNY"),
    ("z\u0142", "PLN"), ("Z\u0141", "PLN"), ("K\u010d", "CZK"), ("K\u010c", "CZK"),
)
_WORDS: dict[str, str] = {
    "euro": "EUR", "euros": "EUR", "eur": "EUR", "pound": "GBP", "pounds": "GBP",
    "sterling": "GBP", "yen": "JPY", "yuan": "CNY", "renminbi": "CNY", "rmb": "CNY",
    "rm": "MYR", "ringgit": "MYR", "rupee": "INR", "rupees": "INR", "rs": "INR",
    "zloty": "PLN", "zlotych": "PLN", "zl": "PLN", "forint": "HUF", "ft": "HUF", "lei": "RON",
    "chf": "CHF", "sfr": "CHF", "fr": "CHF", "franken": "CHF", "francs": "CHF", "franc": "CHF",
}
_DOLLAR_WORDS = {"dollar", "dollars", "dolar", "dolares", "dollari", "dollaro", "dollars."}
_KRONE_WORDS = {"kr", "krone", "kroner", "kronor", "krona", "kronur"}
_DOLLAR_CODES = frozenset({"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "BRL", "TWD"})
_KRONE_CODES = frozenset({"SEK", "NOK", "DKK", "ISK"})
COMMON_CURRENCIES: frozenset[str] = frozenset(
    _wordset("USD EUR GBP CHF CAD AUD NZD JPY CNY HKD SGD MYR INR SEK NOK DKK ISK PLN CZK HUF RON BGN "
    "RUB UAH ZAR BRL MXN KRW TWD THB IDR PHP VND AED SAR ILS EGP NGN KES")
)
"""Codes trusted when scanning a whole page (rarer codes such as ALL or TOP read as words there)."""
_SAFE_CODES = frozenset(
    _wordset("USD EUR GBP CHF CAD AUD NZD JPY CNY HKD SGD MYR INR SEK NOK DKK PLN CZK HUF ZAR BRL MXN")
)
"""Codes that are never ordinary words; the other common codes need an amount next to them."""


@lru_cache(maxsize=1)
def _iso_codes() -> frozenset[str]:
    try:
        from babel.numbers import list_currencies

        return frozenset(list_currencies())
    except Exception:  # pragma: no cover - babel is a dependency
        return COMMON_CURRENCIES


_CA_POSTCODE = re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d\b")
_AU_STATE = re.compile(r"\b(?:NSW|VIC|QLD|SA|WA|TAS|ACT|NT)\s+\d{4}(?!\d)")
_DOLLAR_CUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bCanada\b|\bGST/HST\b|\bHST\b|\bQST\b|\bTPS\b|\bTVQ\b", re.IGNORECASE), "CAD"),
    (_CA_POSTCODE, "CAD"),
    (re.compile(r"\bAustralia\b|\bABN\b", re.IGNORECASE), "AUD"),
    (_AU_STATE, "AUD"),
    (re.compile(r"\bNew Zealand\b|\bNZBN\b", re.IGNORECASE), "NZD"),
    (re.compile(r"\bSingapore\b|\bUEN\b", re.IGNORECASE), "SGD"),
    (re.compile(r"\bHong Kong\b", re.IGNORECASE), "HKD"),
    (re.compile(r"\bM[eé]xico\b|\bRFC\b", re.IGNORECASE), "MXN"),
)
_REGION_DOLLAR = {"CA": "CAD", "AU": "AUD", "NZ": "NZD", "SG": "SGD", "HK": "HKD", "MX": "MXN",
                  "BR": "BRL", "TW": "TWD"}
_KRONE_CUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bSverige\b|\bSweden\b|\bMoms\b", re.IGNORECASE), "SEK"),
    (re.compile(r"\bNorge\b|\bNorway\b|\bMVA\b", re.IGNORECASE), "NOK"),
    (re.compile(r"\bDanmark\b|\bDenmark\b|\bCVR\b", re.IGNORECASE), "DKK"),
)
_LANG_KRONE = {"sv": "SEK", "nb": "NOK", "nn": "NOK", "no": "NOK", "da": "DKK", "is": "ISK"}


def _codes_in(texts: list[str], allowed: frozenset[str]) -> Counter[str]:
    found: Counter[str] = Counter()
    for t in texts:
        for m in _PREFIXED_RE.finditer(t):
            code = _PREFIX_CODES[m.group(1).upper()]
            if code in allowed:
                found[code] += 1
        for m in re.finditer(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])", t):
            if m.group(1) in allowed:
                found[m.group(1)] += 1
    return found


def _resolve_dollar(context_texts: list[str], locale_hint: str | None) -> str:
    """Which dollar "$" means: an explicit code or prefix on the page, then address cues, then
    the locale's region, else USD."""
    codes = _codes_in(context_texts, _DOLLAR_CODES)
    if codes:
        return codes.most_common(1)[0][0]
    joined = " ".join(context_texts)
    for rx, code in _DOLLAR_CUES:
        if rx.search(joined):
            return code
    _, region = _split_locale(locale_hint)
    return _REGION_DOLLAR.get(region or "", "USD")


def _resolve_krone(context_texts: list[str], locale_hint: str | None) -> str | None:
    codes = _codes_in(context_texts, _KRONE_CODES)
    if codes:
        return codes.most_common(1)[0][0]
    lang, region = _split_locale(locale_hint)
    if lang in _LANG_KRONE:
        return _LANG_KRONE[lang]
    joined = " ".join(context_texts)
    for rx, code in _KRONE_CUES:
        if rx.search(joined):
            return code
    return None


def _explicit_currency(s: str, strict: bool) -> str | None:
    """A currency named without ambiguity in ``s``; "$", "kr" and "¥" come back as markers.

    ``strict`` (page scanning): only common upper-case codes count and single words like "Fr"
    or "Rs" are ignored, since on a whole page they are mostly not currencies.
    """
    m = _PREFIXED_RE.search(s)
    if m:
        return _PREFIX_CODES[m.group(1).upper()]
    codes = COMMON_CURRENCIES if strict else _iso_codes()
    alpha = re.sub(r"[^A-Za-z]", "", s)
    for m2 in re.finditer(r"(?<![A-Za-z])([A-Za-z]{3})(?![A-Za-z])", s):
        tok = m2.group(1)
        if tok.upper() in codes and (tok.isupper() or (not strict and alpha.upper() == tok.upper())):
            return tok.upper()
    for sym, code in _SYMBOLS:
        if sym in s:
            return code
    if "\u00a5" in s or "\uffe5" in s:
        return "\u00a5"
    tokens = re.findall(r"[a-z]+", _fold(s))
    for tok in tokens:
        if tok in _WORDS and (not strict or tok in ("euro", "euros", "ringgit", "zloty", "sterling")
                              or (tok == "rm" and "RM" in s)):
            return _WORDS[tok]
    if any(t in _DOLLAR_WORDS for t in tokens) or "$" in s:
        return "$"
    if any(t in _KRONE_WORDS for t in tokens) and (not strict or re.search(r"(?<![A-Za-z])kr\b", s)):
        return "kr"
    return None


def parse_currency(
    text: str | None, context_texts: list[str] | None = None, locale_hint: str | None = None
) -> str | None:
    """ISO 4217 code of a printed currency ("€", "EUR", "euros", "US$", "RM", "Fr.", "kr").

    "$" is disambiguated with the context (a dollar code or "CA$"/"A$" prefix elsewhere on the
    page, Canadian/Australian/... address cues), then the locale's region, else USD. "kr" needs
    context or a Nordic locale (None otherwise); "¥" is JPY unless the context says CNY/RMB/元.
    """
    if text is None:
        return None
    s = _nfkc(str(text)).strip()
    if not s:
        return None
    context = list(context_texts or [])
    found = _explicit_currency(s, strict=False)
    # "US dollars", "Canadian dollars"
    if found == "$":
        folded = _fold(s)
        if re.search(r"\b(?:us|u\.s\.|american)\b", folded):
            return "USD"
        if re.search(r"\b(?:canadian|canada)\b", folded):
            return "CAD"
        if re.search(r"\b(?:australian|australia)\b", folded):
            return "AUD"
        return _resolve_dollar([s, *context], locale_hint)
    if found == "kr":
        return _resolve_krone([s, *context], locale_hint)
    if found == "\u00a5":
        cny = _codes_in(context, frozenset({"CNY"})) or any(
            "RMB" in t or "\u5143" in t for t in context
        )
        return "CNY" if cny else "JPY"
    return found


def detect_currency(words: list[str], locale_hint: str | None = None) -> str | None:
    """The document's currency from all its words: the most frequent explicit one, with "$"
    resolved once for the whole page; None when the page names no currency."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for i, w in enumerate(words):
        s = _nfkc(w)
        found = _explicit_currency(s, strict=True)
        if found is None:
            continue
        letters = re.sub(r"[^A-Za-z]", "", s)
        if len(letters) > 3 and found not in letters.upper() and _fold(letters) not in _WORDS:
            continue  # a symbol inside a longer word is OCR noise ("<£Vfff")
        if found not in _SAFE_CODES and re.search(rf"(?<![A-Za-z]){found}(?![A-Za-z])", s):
            # a rarer code ("RON", "PHP", "SAR") counts only next to an amount
            near = [s, *(words[j] for j in (i - 1, i + 1) if 0 <= j < len(words))]
            if not any(re.search(r"\d", t) for t in near):
                continue
        counts[found] += 1
        first_seen.setdefault(found, i)
    if not counts:
        return None
    def merge(marker: str, code: str | None) -> None:
        n = counts.pop(marker)
        if code:
            counts[code] += n
            first_seen[code] = min(first_seen.get(code, first_seen[marker]), first_seen[marker])

    if "$" in counts:
        merge("$", _resolve_dollar(list(words), locale_hint))
    if "kr" in counts:
        merge("kr", _resolve_krone(list(words), locale_hint))
    if "\u00a5" in counts:
        merge("\u00a5", "CNY" if counts.get("CNY") else "JPY")
    if not counts:
        return None
    best = max(counts.values())
    return min((c for c, n in counts.items() if n == best), key=lambda c: first_seen.get(c, 0))


# ============================================================================================
# IBAN and tax ids
# ============================================================================================


def iban_is_valid(text: str | None) -> bool:
    """True when ``text`` (spaces and case ignored) is an IBAN with a valid mod-97 checksum and
    its country's length and format (python-stdnum's country table)."""
    return normalize_iban(text) is not None


def _compact_iban(text: str) -> str:
    s = _nfkc(text).upper()
    s = re.sub(r"^\s*IBAN\b\s*[:#.]?", "", s)
    return re.sub(r"[\s.\-,;:]", "", s)  # "IBAN DE89 3704 ..., BIC ...": separators and trailing punctuation


def normalize_iban(text: str | None) -> str | None:
    """Compact upper-case IBAN ("DE89 3704 ..." -> "DE8937040044..."), None if it is invalid."""
    if not text:
        return None
    s = _compact_iban(text)
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}", s):
        return None
    from stdnum import iban

    return s if iban.is_valid(s) else None


_TAX_LABEL = re.compile(
    r"^\s*(?:"
    r"VAT(?:\s*(?:Reg(?:istration)?\.?|Registration))?(?:\s*(?:No\.?|Number|ID|Nr\.?|#))?"
    r"|USt\.?\s*-?\s*Id(?:ent)?\.?\s*-?\s*Nr\.?|USt\.?\s*-?\s*ID|UID(?:\s*-?\s*Nr\.?)?"
    r"|Steuer\s*-?\s*(?:Nr\.?|nummer)|St\.?\s*-?\s*Nr\.?|Steuernummer"
    r"|N[°ºo]\.?\s*(?:de\s+)?TVA(?:\s+intra(?:com(?:munautaire)?)?\.?)?"
    r"|TVA(?:\s+intra(?:com(?:munautaire)?)?\.?)?|SIRE[NT]"
    r"|N\.?I\.?F\.?|C\.?I\.?F\.?|N\.?I\.?E\.?"
    r"|P\.?\s*IVA|Partita\s+IVA|C\.?F\.?|Codice\s+Fiscale"
    r"|BTW(?:\s*-?\s*(?:nummer|nr\.?|id))?|KvK(?:\s*-?\s*(?:nummer|nr\.?))?"
    r"|Tax\s*(?:ID|No\.?|Number|Reg(?:istration)?\.?\s*No\.?)|TIN|EIN|ABN|GST(?:\s*Reg\.?)?(?:\s*No\.?)?"
    r"|Reg\.?\s*No\.?|No\.|Nr\.|(?:No|Nr|ID)(?=\s*[:#])"
    r")(?![A-Za-z0-9])\s*[:#.]?\s*",
    re.IGNORECASE,
)
_EU_VAT_PREFIXES = frozenset(
    _wordset("AT BE BG CY CZ DE DK EE EL GR ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI GB")
)

VAT_LENGTHS = {"AT": 9, "BE": 10, "DE": 9, "DK": 8, "ES": 9, "FI": 8, "FR": 11, "GB": 9, "IE": 8, "IT": 11,
               "LU": 8, "NL": 12, "PL": 10, "PT": 9, "SE": 12}
"""Characters after the country prefix of an EU (and UK) VAT number, at least (GB: 9, or 12 for a branch)."""


def clean_tax_id(text: str | None) -> str:
    """A tax id without its label ("USt-IdNr.: DE 123 456 789" -> "DE123456789").

    EU VAT numbers are compacted (their official form has no separators); other ids (US EIN
    "12-3456789", German "12/345/67890", Swiss "CHE-123.456.789 MWST") keep their printed
    separators, upper-cased and with whitespace collapsed.
    """
    if not text:
        return ""
    s = _nfkc(str(text)).strip()
    for _ in range(4):  # labels may stack: "VAT Reg. No.:"
        stripped = _TAX_LABEL.sub("", s, count=1)
        if stripped == s or not re.search(r"\d", stripped):
            break
        s = stripped
    s = " ".join(s.split()).upper().strip(" :#")
    compact = re.sub(r"[\s.\-]", "", s)
    if compact[:2] in _EU_VAT_PREFIXES and re.fullmatch(r"[A-Z]{2}[0-9A-Z]{8,12}", compact) and \
            sum(c.isdigit() for c in compact[2:]) >= len(compact[2:]) - 2:
        return compact
    return s


_DATE_LIKE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}-\d{2}-\d{2}")
_AMOUNT_LIKE = re.compile(r"-?\d{1,3}(?:[.,' ]\d{3})*[.,]\d{2}")


DATE_JOINERS = frozenset({"vom", "dated", "du", "del", "dal", "van", "datiert"})
"""The word between a document's number and its date in a title ("Rechnung Nr. 471102 vom 05.03.2018")."""


def _document_id(text: str) -> str | None:
    """An invoice or order number, or None when the text cannot be one: no digit at all, or
    exactly a date or an amount (the model sometimes tags the value beside the number's caption),
    so that the decoder prefers another candidate. A sentence's full stop after it is no part of it
    ("... contract 662627."), nor the date a title prints after it ("471102 vom 05.03.2018")."""
    words = _collapse(text).split()
    cut = next((i for i, w in enumerate(words) if i and w.casefold() in DATE_JOINERS), len(words))
    s = " ".join(words[:cut]).strip(" :#").rstrip(".,;")
    if not re.search(r"\d", s) or _DATE_LIKE.fullmatch(s) or _AMOUNT_LIKE.fullmatch(s):
        return None
    return s


_NATIONAL_VAT = {"it": ("IT", re.compile(r"\d{11}")),  # partita IVA
                 "es": ("ES", re.compile(r"[A-HJNPQRSUVW]\d{7}[0-9A-J]|\d{8}[A-Z]"))}  # NIF / CIF
"""Bare national VAT numbers printed without their EU country prefix, by document language."""


def _with_vat_prefix(tax_id: str, languages: Sequence[str]) -> str:
    """An Italian or Spanish VAT number printed bare ("P.IVA 12345678901", "CIF B-1234567X") in the
    EU form ("IT12345678901"), which is what VIES and accounting systems match on."""
    compact = re.sub(r"[\s.\-]", "", tax_id)
    prefix, pattern = _NATIONAL_VAT.get(languages[0] if languages else "", ("", None))
    return prefix + compact if pattern is not None and pattern.fullmatch(compact) else tax_id


# ============================================================================================
# one entry point per document and field
# ============================================================================================


@dataclass(frozen=True)
class DocumentContext:
    """Conventions decided once per document, used to read every field of it."""

    number_convention: NumberConvention = NumberConvention.DOT_DECIMAL
    date_order: str = "DMY"
    languages: tuple[str, ...] = ("en",)
    currency: str | None = None
    locale_hint: str | None = None

    @classmethod
    def from_words(cls, words: list[str], locale_hint: str | None = None) -> DocumentContext:
        """Decide number convention, languages, currency and date order from all the words.

        Without a locale hint an English page in US dollars, or a page with a US address and no
        other currency, reads ambiguous numeric dates as MDY; any other page as DMY.
        """
        convention = detect_number_convention(words, locale_hint)
        languages = detect_languages(words, locale_hint)
        currency = detect_currency(words, locale_hint)
        hint = locale_hint
        if hint is None:
            us_cue = bool(_US_CUE.search(" ".join(words)))
            us = currency in ("USD", None) and (us_cue or (currency == "USD" and languages[0] == "en"))
            hint = "en_US" if us else "xx"
        date_order = detect_date_order(words, hint)
        return cls(
            number_convention=convention,
            date_order=date_order,
            languages=tuple(languages),
            currency=currency,
            locale_hint=locale_hint,
        )


_US_STATES = _wordset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM "
    "NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
)
_US_CUE = re.compile(
    r"\bUSA\b|\bU\.S\.A\.|\bUnited States\b|\b(?:" + "|".join(sorted(_US_STATES)) + r"),?\s+\d{5}(?:-\d{4})?\b"
)
"""A US address on the page: with no other currency, numeric dates read month first."""


def _collapse(text: str) -> str:
    return " ".join(_nfkc(text).split())


def normalize_field(entity: str, text: str, ctx: DocumentContext | None = None) -> str | None:
    """The contract value of one extracted entity, read with the document's context.

    Amounts -> "1234.50", quantities -> "2", rates -> "19", dates -> "2024-01-15",
    currency -> "EUR", IBAN -> compact (kept even when its checksum fails, so that validation can
    report it), tax ids -> cleaned; anything else -> whitespace-collapsed text. None when a typed
    field cannot be read (the printed text stays in ``FieldValue.text``).
    """
    ctx = ctx or DocumentContext()
    if text is None:
        return None
    if entity == "DISCOUNT":  # a reduction, however it is printed ("-£19.17", "(19.17)", "19.17")
        amount = parse_amount(text, ctx.number_convention)
        return format_amount(abs(amount) if amount is not None else None)
    if entity in AMOUNT_ENTITIES:
        return format_amount(parse_amount(text, ctx.number_convention))
    if entity == "ITEM_QUANTITY":
        q = parse_amount(text, ctx.number_convention)
        return format_decimal(q) if q is not None else (_collapse(text) or None)
    if entity in DATE_ENTITIES:
        d = parse_date(text, list(ctx.languages), ctx.date_order)
        return d.isoformat() if d else None
    if entity in PERCENT_ENTITIES:
        return format_decimal(parse_percent(text))
    if entity == "CURRENCY":
        context = [ctx.currency] if ctx.currency else None
        return parse_currency(text, context, ctx.locale_hint) or ctx.currency
    if entity == "SUPPLIER_IBAN":
        valid = normalize_iban(text)
        if valid:
            return valid
        compact = _compact_iban(text)
        return compact if re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{8,30}", compact) else (_collapse(text) or None)
    if entity.endswith("_TAX_ID"):
        return _with_vat_prefix(clean_tax_id(text), ctx.languages) or None
    if entity in ("INVOICE_NUMBER", "PO_NUMBER"):
        return _document_id(text)
    if entity == "SUPPLIER_EMAIL":
        s = re.sub(r"^mailto:", "", _collapse(text), flags=re.IGNORECASE)
        return s.strip(" <>()[],;:").lower() or None
    if entity in ("SUPPLIER_NAME", "BUYER_NAME"):
        return " ".join(_ocr_word(w) for w in _OCR_LETTER.sub(_letter_for_digit, _collapse(text)).split()) or None
    if entity.endswith("_ADDRESS"):  # "F1at", but not the postcode "CB0H 8SG"
        words = [_ocr_word(w) for w in _OCR_LETTER.sub(_lower_letter_for_digit, _collapse(text)).split()]
        return " ".join(_without_trailing_ids(words)) or None
    return _collapse(text) or None


_OCR_LETTER = re.compile(r"(?<=[^\W\d_])[01](?=[^\W\d_])|(?<=[^\W\d_]\.)[01](?=\.)")
"""A 1 or 0 between letters in a name ("Fow1er", "Pr0duct", "s.r.1."): OCR's reading of l and o."""


_EDGE_LETTER = {"0": "o", "5": "s"}
_DIGIT_FOR = {"O": "0", "o": "0", "l": "1", "I": "1", "S": "5", "B": "8", "Z": "2"}


def _ocr_word(word: str) -> str:
    """A word of a name or address with OCR's other slips between letters and digits undone: a 0 or
    5 that starts or ends a lower-case word ("5tudio", "0nn", "Studi0"), and one letter inside a
    number of three or more digits ("41O40", "3B228", "O2834"). Postcodes such as "SL8" or "B1"
    are left alone (too few digits)."""
    core = word.rstrip(",.;")
    tail = word[len(core):]
    if len(core) >= 3 and core[0] in _EDGE_LETTER and core[1:].isalpha() and core[1:].islower():
        return _EDGE_LETTER[core[0]].upper() + core[1:] + tail
    if len(core) >= 4 and core[-1] in _EDGE_LETTER and core[:-1].isalpha() and core[-3:-1].islower():
        return core[:-1] + _EDGE_LETTER[core[-1]] + tail
    odd = [i for i, c in enumerate(core) if not c.isdigit()]
    if len(odd) == 1 and len(core) >= 4 and core[odd[0]] in _DIGIT_FOR and odd[0] < len(core) - 1:
        i = odd[0]  # not the last: "2377B" may be a house number with its letter
        return core[:i] + _DIGIT_FOR[core[i]] + core[i + 1:] + tail
    return word


_PHONE_LIKE = re.compile(r"[+(]?\d[\d().\-/x]{6,}")


def _without_trailing_ids(words: list[str]) -> list[str]:
    """An address without what the model let it run into at its end: a tax id's caption ("P.IVA",
    "N.I.F.:") or a phone or tax number ("670.583.1811x804", "40-2597147"); a postcode has fewer
    digits."""
    while words:
        last = words[-1]
        label = _TAX_LABEL.match(last)
        digits = sum(ch.isdigit() for ch in last)
        if last.endswith(":") or (label is not None and label.end() == len(last)) or (
                _PHONE_LIKE.fullmatch(last) and (digits >= 9 or (digits >= 8 and re.search(r"[-./x]", last)))):
            words = words[:-1]
        else:
            break
    return words


def _lower_letter_for_digit(m: re.Match[str]) -> str:
    """``_letter_for_digit`` beside a lower-case letter only (a 0 between capitals is a postcode's)."""
    letter = _letter_for_digit(m)
    return m.group(0) if letter.isupper() else letter


def _letter_for_digit(m: re.Match[str]) -> str:
    upper = m.string[max(0, m.start() - 1)].isupper() and m.string[m.end():m.end() + 1].isupper()
    letter = "l" if m.group(0) == "1" else "o"
    return letter.upper() if upper else letter
