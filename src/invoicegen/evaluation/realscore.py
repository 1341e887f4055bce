"""Scoring predictions on real documents against a gold JSONL (the ``gold_dev.jsonl`` format).

Our own implementation of the rules documented by ``../shared/realdata/score.py`` (the reference
scorer of the real-data folder), so that ``invoicegen evaluate --real`` needs nothing outside the
package and can attach error analysis to every field; tests run both on the same predictions and
require identical numbers. The rules, in short:

* ids (``invoice_number``): case, spaces and punctuation ignored;
* dates: every calendar date the prediction can mean (an ambiguous numeric date is resolved with
  the gold ``date_order``, else both readings count) must meet one the gold can mean;
* names (``supplier_name``, ``buyer_name``): token-set similarity >= 0.8 *and* the prediction
  covers at least half of the gold name's characters in shared tokens (legal-form words aside),
  unless the two strings are >= 0.8 similar as a whole; ``"match": "contains"`` in the gold asks
  for containment instead;
* currency: ISO 4217 code, symbols and common names mapped;
* amounts: equal to the cent, sign included;
* line items: a predicted item matches a gold item when the amounts agree to the cent and the
  descriptions are >= 0.6 similar (a gold item without amount: description only), pairs taken
  greedily most-similar first, one-to-one; P/R/F1 micro-averaged over items.

Predictions may be raw printed strings; that is why the readers here are lenient and why they are
not ``extract.normalize`` (which decides conventions per document and must stay strict).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

FIELD_KINDS: dict[str, str] = {
    "invoice_number": "id",
    "invoice_date": "date",
    "due_date": "date",
    "supplier_name": "name",
    "buyer_name": "name",
    "currency": "currency",
    "subtotal": "amount",
    "tax_amount": "amount",
    "total_amount": "amount",
}
"""The scored fields, in report order, and how each is compared."""

LINE_ITEM_KEYS: tuple[str, ...] = ("description", "quantity", "unit_price", "amount")
NAME_SIMILARITY = 0.8
NAME_COVERAGE = 0.5
DESCRIPTION_SIMILARITY = 0.6
_CENT = Decimal("0.01")

# ============================================================================================
# text
# ============================================================================================


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _nfkc(value: object) -> str:
    return unicodedata.normalize("NFKC", str(value))


def fold(text: str) -> str:
    """Lower-case ASCII-ish form: accents dropped, Polish l-stroke mapped (dates, names)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return plain.replace("\u0142", "l").replace("\u0141", "L").lower()


def _unwrap(value: Any) -> Any:
    """A prediction or gold value may be wrapped as ``{"value": ...}``."""
    while isinstance(value, dict):
        value = value.get("value")
    return value


def norm_text(value: Any) -> str:
    """Folded text with every non-alphanumeric character as a space, whitespace collapsed."""
    value = _unwrap(value)
    if value is None:
        return ""
    folded = fold(_nfkc(value))
    return " ".join("".join(ch if ch.isalnum() else " " for ch in folded).split())


def norm_id(value: Any) -> str:
    """Identifier key: case-folded alphanumerics only ("# BLR-1" -> "blr1")."""
    value = _unwrap(value)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "".join(ch for ch in _nfkc(value).casefold() if ch.isalnum())


# ============================================================================================
# amounts
# ============================================================================================

_SPACES = " \u00a0\u202f'\u2019"
_GROUPED = re.compile(rf"\d{{1,3}}(?:[{_SPACES}]\d{{3}})+(?:[.,]\d+)?(?!\d)")
_PLAIN = re.compile(r"\d[\d.,]*")
_MINUS = "-\u2212\u2013"
_MONEY_MARK = r"(?:[A-Za-z]{1,3}\.?\$?|[^\w\s])?"  # an optional currency code or symbol
_MINUS_BEFORE = re.compile(rf"[{_MINUS}]\s*{_MONEY_MARK}\s*$")
_MINUS_AFTER = re.compile(rf"\s?[{_MINUS}]\s*{_MONEY_MARK}\s*$")
_OPEN_PAREN = re.compile(rf"\(\s*{_MONEY_MARK}\s*$")
_CLOSE_PAREN = re.compile(rf"\s*{_MONEY_MARK}\s*\)")


def _digits_only(token: str) -> str | None:
    """A number token with grouping removed and "." as decimal mark; None if unreadable."""
    token = re.sub(f"[{_SPACES}]", "", token).rstrip(".,")
    if not token:
        return None
    dots, commas = token.count("."), token.count(",")
    if dots and commas:
        decimal_mark = "." if token.rfind(".") > token.rfind(",") else ","
        token = token.replace("," if decimal_mark == "." else ".", "")
        if token.count(decimal_mark) > 1:
            return None
        return token.replace(decimal_mark, ".")
    if not (dots or commas):
        return token
    parts = token.split("." if dots else ",")
    if len(parts) > 2:  # several marks of one kind: grouping, unless the groups are not thousands
        if all(len(p) == 3 for p in parts[1:]):
            return "".join(parts)
        return "".join(parts[:-1]) + "." + parts[-1]
    whole, frac = parts
    if len(frac) == 3 and whole not in ("", "0") and len(whole) <= 3:
        return whole + frac  # "1,234" / "5.200": thousands
    return whole + "." + frac


def read_amount(value: Any) -> Decimal | None:
    """A printed amount as a Decimal (not rounded), sign included; None without a number.

    Reads currency marks, thousands separators (comma, dot, space, apostrophe), decimal commas,
    "34,-", a leading or trailing minus and parentheses."""
    value = _unwrap(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    s = _nfkc(value).strip()
    if not s:
        return None
    grouped, plain = _GROUPED.search(s), _PLAIN.search(s)
    m = plain if grouped is None or (plain is not None and plain.start() < grouped.start()) else grouped
    if m is None:
        return None
    digits = _digits_only(m.group(0))
    if digits is None:
        return None
    try:
        amount = Decimal(digits)
    except InvalidOperation:
        return None
    before, after = s[: m.start()], s[m.end():]
    trailing_minus = bool(_MINUS_AFTER.match(after)) and m.group(0)[-1] not in ".,"  # "34,-" is 34
    parens = bool(_OPEN_PAREN.search(before)) and bool(_CLOSE_PAREN.match(after))
    negative = bool(_MINUS_BEFORE.search(before)) or trailing_minus or parens
    return -amount if negative else amount


def cents(value: Any) -> Decimal | None:
    """The amount rounded half-up to the cent (what "equal to the cent" compares)."""
    amount = read_amount(value)
    return None if amount is None else amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def format_cents(amount: Decimal | None) -> str | None:
    if amount is None:
        return None
    q = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    return format(abs(q) if q == 0 else q, "f")


# ============================================================================================
# dates
# ============================================================================================

_MONTH_NAMES: dict[int, str] = {  # folded, as printed in en/de/fr/es/it/nl/pl/ms
    1: "january jan januar janner januari janvier janv enero ene gennaio gen styczen stycznia",
    2: "february feb februar februari fevrier fevr fev febrero febbraio luty lutego",
    3: "march mar marz maerz mrz maart mars marzo mac marzec marca",
    4: "april apr avril avr abril aprile kwiecien kwietnia",
    5: "may mai mei mayo maggio mag maj maja",
    6: "june jun juni juin junio giugno giu czerwiec czerwca",
    7: "july jul juli juillet juil julio luglio lug julai lipiec lipca",
    8: "august aug augustus aout agosto ago ogos sierpien sierpnia",
    9: "september sep sept septembre septiembre setiembre settembre set wrzesien wrzesnia",
    10: "october oct oktober okt octobre octubre ottobre ott pazdziernik pazdziernika",
    11: "november nov novembre noviembre listopad listopada",
    12: "december dec dezember dez decembre diciembre dic dicembre disember grudzien grudnia",
}
MONTHS: dict[str, int] = {name: n for n, names in _MONTH_NAMES.items() for name in names.split()}

_CLOCK = re.compile(r"\b\d{1,2}[:h]\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?", re.IGNORECASE)
_YMD = re.compile(r"(?<!\d)(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?!\d)")
_XYY_SAME_SEP = re.compile(r"(?<!\d)(\d{1,2})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{4}|\d{2})(?!\d)")
_XYY_ANY_SEP = re.compile(r"(?<!\d)(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4}|\d{2})(?!\d)")
_XYY_SPACES = re.compile(r"(?<!\d)(\d{1,2})\s+(\d{1,2})\s+(\d{4}|\d{2})(?!\d)")
_EIGHT_DIGITS = re.compile(r"(?<!\d)(\d{8})(?!\d)")
_LETTERS = re.compile(r"[a-z]+")
_DIGITS = re.compile(r"\d+")
_DAY_MONTH_GLUE = re.compile(r"[\s.,\-/]*(?:de\s+)?")


def _full_year(y: str | int) -> int:
    year = int(y)
    if year < 100:
        year += 2000 if year < 70 else 1900
    return year


def _make_date(y: str | int, m: str | int, d: str | int) -> date | None:
    try:
        return date(_full_year(y), int(m), int(d))
    except (ValueError, TypeError):
        return None


def _both_readings(first: str, second: str, year: str, order: str | None) -> set[date]:
    """A numeric date with day and month in unknown order: the readings the order allows."""
    day_first, month_first = _make_date(year, second, first), _make_date(year, first, second)
    if day_first and month_first and day_first != month_first and order in ("DMY", "MDY"):
        return {day_first if order == "DMY" else month_first}
    return {d for d in (day_first, month_first) if d}


def _month_name_date(text: str) -> date | None:
    """"3 March 2024", "March 3, 2024", "15 de enero de 2024", "03-Mar-24" and the like."""
    f = fold(text)
    found = next(((m.start(), m.end(), MONTHS[m.group(0)]) for m in _LETTERS.finditer(f) if m.group(0) in MONTHS),
                 None)
    if found is None:
        return None
    m_start, m_end, month = found
    numbers = [(n.start(), n.end(), n.group(0)) for n in _DIGITS.finditer(f)]
    before = [n for n in numbers if n[1] <= m_start]
    after = [n for n in numbers if n[0] >= m_end]

    def first_year(cands: Sequence[tuple[int, int, str]], sizes: tuple[int, ...]) -> str | None:
        return next((n[2] for n in cands if len(n[2]) in sizes), None)

    day: str | None = None
    year: str | None = None
    if before and len(before[-1][2]) <= 2 and 1 <= int(before[-1][2]) <= 31 \
            and _DAY_MONTH_GLUE.fullmatch(f[before[-1][1]:m_start]):
        day = before[-1][2]
        year = first_year(after, (2, 4)) or first_year(before[:-1], (4,))
    elif after:
        if len(after[0][2]) <= 2:
            day = after[0][2]
            year = first_year(after[1:], (2, 4)) or first_year(before, (4,))
        elif len(after[0][2]) == 4 and before and len(before[-1][2]) <= 2:
            day, year = before[-1][2], after[0][2]
    elif before and len(before[-1][2]) == 4 and len(before) >= 2:
        day, year = before[-1][2], before[0][2]
    if day is None or year is None:
        return None
    return _make_date(year, month, day)


def _dateparser_dates(text: str, order: str | None) -> set[date]:
    """Last resort for what the patterns above cannot read (other languages' month names)."""
    if not re.search(r"\d", text):
        return set()
    try:
        import dateparser
    except ImportError:  # pragma: no cover - dateparser is a project dependency
        return set()
    settings: dict[str, Any] = {"PREFER_DAY_OF_MONTH": "first", "REQUIRE_PARTS": ["day", "month", "year"]}
    if order in ("DMY", "MDY"):
        settings["DATE_ORDER"] = order
    try:
        parsed = dateparser.parse(text, settings=settings)
    except Exception:
        parsed = None
    return {parsed.date()} if parsed else set()


def read_dates(value: Any, order: str | None = None) -> set[date]:
    """Every calendar date a printed date can mean (empty when it is not a date).

    ``order`` ("DMY"/"MDY") resolves numeric dates that read both ways; without it both readings
    are returned, except that dotted dates ("07.09.18") are day-first."""
    value = _unwrap(value)
    if value is None or isinstance(value, bool):
        return set()
    if isinstance(value, datetime):
        return {value.date()}
    if isinstance(value, date):
        return {value}
    s = _nfkc(value).strip()
    if not s:
        return set()
    s = _CLOCK.sub(" ", s)
    m = _YMD.search(s)
    if m and (d := _make_date(*m.groups())):
        return {d}
    m = _XYY_SAME_SEP.search(s)
    if m:
        first, sep, second, year = m.groups()
        dotted = "DMY" if order is None and sep == "." else order  # "07.09.18" is day-first
        readings = _both_readings(first, second, year, dotted)
        if readings:
            return readings
    m = _XYY_ANY_SEP.search(s)
    if m and (readings := _both_readings(m.group(1), m.group(2), m.group(3), order)):
        return readings
    m = _EIGHT_DIGITS.search(s)
    if m:
        t = m.group(1)
        d = _make_date(t[:4], t[4:6], t[6:]) if t[:2] in ("19", "20") else None
        if d is None:
            d = _make_date(t[4:], t[:2], t[2:4]) if order == "MDY" else _make_date(t[4:], t[2:4], t[:2])
        if d:
            return {d}
    named = _month_name_date(s)
    if named:
        return {named}
    m = _XYY_SPACES.search(s)
    if m and (readings := _both_readings(m.group(1), m.group(2), m.group(3), order)):
        return readings
    return _dateparser_dates(s, order)


# ============================================================================================
# currency
# ============================================================================================

ISO_CURRENCIES: frozenset[str] = _wordset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD
GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD
KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK
NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF
XCD XOF XPF YER ZAR ZMW ZWL DEM FRF NLG
""")
"""Codes read as themselves (current ISO 4217 plus the pre-euro codes old invoices print)."""

CURRENCY_SYMBOLS: tuple[tuple[str, str], ...] = (  # checked in this order: "US$" before "$"
    ("US$", "USD"), ("USD$", "USD"), ("U.S.$", "USD"), ("C$", "CAD"), ("CA$", "CAD"), ("A$", "AUD"),
    ("AU$", "AUD"), ("NZ$", "NZD"), ("HK$", "HKD"), ("S$", "SGD"), ("R$", "BRL"), ("\u20ac", "EUR"),
    ("\u00a3", "GBP"), ("\u00a5", "JPY"), ("\uffe5", "JPY"), ("\u20b9", "INR"), ("\u20a9", "KRW"),
    ("\u20bd", "RUB"), ("\u20ba", "TRY"), ("\u20aa", "ILS"), ("\u20ab", "VND"), ("\u0e3f", "THB"),
    ("\u20b1", "PHP"), ("Z\u0141", "PLN"), ("K\u010c", "CZK"), ("$", "USD"),
)
CURRENCY_WORDS: dict[str, str] = {
    "EURO": "EUR", "EUROS": "EUR", "EUR": "EUR", "RM": "MYR", "RINGGIT": "MYR", "RS": "INR", "INR": "INR",
    "RUPEES": "INR", "RUPEE": "INR", "ZL": "PLN", "ZLOTY": "PLN", "DOLLAR": "USD", "DOLLARS": "USD",
    "POUND": "GBP", "POUNDS": "GBP", "YEN": "JPY", "FR": "CHF", "SFR": "CHF", "DM": "DEM", "KC": "CZK",
    "FT": "HUF", "LEI": "RON", "TL": "TRY", "SR": "SAR",
}
_UPPER_WORDS = re.compile("[A-Z\u0141\u010c]+")


def read_currency(value: Any) -> str | None:
    """ISO 4217 code of a printed currency: a code, then a symbol, then a name; None otherwise."""
    value = _unwrap(value)
    if value is None:
        return None
    s = _nfkc(value).strip().upper()
    if not s:
        return None
    words = _UPPER_WORDS.findall(s)
    code = next((w for w in words if len(w) == 3 and w.isascii() and w in ISO_CURRENCIES), None)
    if code:
        return code
    code = next((c for sym, c in CURRENCY_SYMBOLS if sym in s), None)
    if code:
        return code
    code = next((CURRENCY_WORDS[fold(w).upper()] for w in words if fold(w).upper() in CURRENCY_WORDS), None)
    if code:
        return code
    if len(words) == 1 and len(words[0]) == 3 and words[0].isascii():
        return words[0]
    return None


# ============================================================================================
# similarity and names
# ============================================================================================


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence (the InDel distance is len(a)+len(b)-2*LCS)."""
    if not a or not b:
        return 0
    if len(b) > len(a):
        a, b = b, a
    row = [0] * (len(b) + 1)
    for ca in a:
        diag = 0
        for j, cb in enumerate(b, 1):
            keep = row[j]
            row[j] = diag + 1 if ca == cb else max(row[j], row[j - 1])
            diag = keep
    return row[-1]


def indel_similarity(a: str, b: str) -> float:
    """Normalised InDel similarity ("ratio"): 2*LCS / (len(a)+len(b))."""
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    return 2.0 * lcs_length(a, b) / (len(a) + len(b))


def token_set_ratio(a: str, b: str) -> float:
    """Token-set similarity in [0, 1] of two normalised strings (rapidfuzz's ``token_set_ratio``/100).

    The shared tokens S and each side's other tokens Da, Db (sorted, space-joined) are compared as
    S vs S+Da, S vs S+Db and S+Da vs S+Db; the best InDel similarity wins, and a subset scores 1."""
    ta, tb = set(a.split()), set(b.split())
    if not ta or not tb:
        return 0.0
    shared = ta & tb
    only_a, only_b = " ".join(sorted(ta - tb)), " ".join(sorted(tb - ta))
    if shared and (not only_a or not only_b):
        return 1.0
    n_shared = len(" ".join(sorted(shared)))
    glue = 1 if n_shared else 0
    len_a, len_b = n_shared + glue + len(only_a), n_shared + glue + len(only_b)
    # S+Da vs S+Db share the prefix S, so their distance is that of Da vs Db
    distance = len(only_a) + len(only_b) - 2 * lcs_length(only_a, only_b)
    total = len_a + len_b
    best = 1.0 - distance / total if total else 1.0
    if n_shared:
        best = max(best, 1.0 - (glue + len(only_a)) / (n_shared + len_a),
                   1.0 - (glue + len(only_b)) / (n_shared + len_b))
    return best


LEGAL_FORM_WORDS: frozenset[str] = _wordset("""
inc incorporated corp corporation co company companies ltd limited llc llp lp plc pty pvt private
gmbh mbh ag kg ohg ug ev eg se sa sas sarl sasu srl spa bv nv vof oy ab as asa aps
sdn bhd s b m enterprise enterprises trading the and of und et
""")
"""Words that do not identify a company ("GmbH", "SDN BHD"): not counted in the gold coverage."""


def name_matches(pred: Any, gold: Any, mode: str | None = None) -> bool:
    """Is ``pred`` the gold name? See the module docstring for the rule."""
    p, g = norm_text(pred), norm_text(gold)
    if not p or not g:
        return False
    if mode == "contains":
        return g.replace(" ", "") in p.replace(" ", "")
    if mode == "exact":
        return p == g
    if token_set_ratio(p, g) < NAME_SIMILARITY:
        return False
    gold_tokens = [t for t in g.split() if t not in LEGAL_FORM_WORDS] or g.split()
    pred_tokens = set(p.split())
    total = sum(len(t) for t in gold_tokens)
    covered = sum(len(t) for t in gold_tokens if t in pred_tokens)
    return not (total and covered / total < NAME_COVERAGE and indel_similarity(p, g) < NAME_SIMILARITY)


# ============================================================================================
# one field
# ============================================================================================


def gold_alternatives(gold: Any) -> tuple[list[Any], str | None]:
    """Acceptable gold values and the match mode of a gold field (plain value or object)."""
    if isinstance(gold, dict):
        values = [gold.get("value"), *(gold.get("alt") or [])]
        return [v for v in values if v not in (None, "")], gold.get("match")
    return [gold], None


def prediction_value(pred: Any) -> Any:
    """A predicted field as one value (``{"value": v}`` and lists are unwrapped)."""
    if isinstance(pred, dict):
        return pred.get("value")
    if isinstance(pred, list):
        return pred[0] if pred else None
    return pred


def compare_field(name: str, gold: Any, pred: Any, date_order: str | None = None) -> tuple[bool, Any]:
    """(correct, the prediction as the scorer read it) for one field instance."""
    kind = FIELD_KINDS.get(name, "name")
    golds, mode = gold_alternatives(gold)
    value = prediction_value(pred)
    if value is None or (isinstance(value, str) and not value.strip()):
        return False, None
    if kind == "amount":
        amount = cents(value)
        if amount is None:
            return False, None
        return any(cents(g) == amount for g in golds), format_cents(amount)
    if kind == "date":
        readings = read_dates(value, date_order)
        gold_dates = set().union(*(read_dates(g, date_order) for g in golds)) if golds else set()
        return bool(readings & gold_dates), sorted(d.isoformat() for d in readings) or None
    if kind == "id":
        key = norm_id(value)
        return bool(key) and any(norm_id(g) == key for g in golds), key or None
    if kind == "currency":
        code = read_currency(value)
        return code is not None and any(read_currency(g) == code for g in golds), code
    return any(name_matches(value, g, mode) for g in golds), norm_text(value) or None


# ============================================================================================
# line items
# ============================================================================================


@dataclass
class ItemMatch:
    """One-to-one matching of predicted to gold line items."""

    n_gold: int
    n_pred: int
    pairs: list[tuple[int, int, float]] = field(default_factory=list)
    """(gold index, predicted index, description similarity), in matching order."""

    @property
    def matched(self) -> int:
        return len(self.pairs)


def match_line_items(gold_items: Sequence[Any], pred_items: Sequence[Any] | None) -> ItemMatch:
    """Greedy one-to-one matching: amounts equal to the cent (when the gold has one) and description
    similarity >= 0.6 (when the gold has one); most similar pairs first."""
    golds = [g for g in gold_items if isinstance(g, dict)]
    preds = [p for p in (pred_items or []) if isinstance(p, dict)]
    g_amount = [cents(g.get("amount")) for g in golds]
    p_amount = [cents(p.get("amount")) for p in preds]
    g_desc = [norm_text(g.get("description")) for g in golds]
    p_desc = [norm_text(p.get("description")) for p in preds]
    candidates: list[tuple[float, int, int]] = []
    for i in range(len(golds)):
        if g_amount[i] is None and not g_desc[i]:
            continue  # nothing to match on
        for j in range(len(preds)):
            if g_amount[i] is not None and g_amount[i] != p_amount[j]:
                continue
            sim = token_set_ratio(g_desc[i], p_desc[j]) if g_desc[i] and p_desc[j] else 0.0
            if g_desc[i] and sim < DESCRIPTION_SIMILARITY:
                continue
            candidates.append((-sim, i, j))
    candidates.sort()
    result = ItemMatch(len(golds), len(preds))
    used_gold: set[int] = set()
    used_pred: set[int] = set()
    for neg_sim, i, j in candidates:
        if i not in used_gold and j not in used_pred:
            used_gold.add(i)
            used_pred.add(j)
            result.pairs.append((i, j, -neg_sim))
    return result


def prf(matched: int, n_gold: int, n_pred: int) -> tuple[float, float, float]:
    """Precision, recall, F1 from counts (0 where undefined)."""
    p = matched / n_pred if n_pred else 0.0
    r = matched / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


# ============================================================================================
# a whole gold file
# ============================================================================================


def doc_key(path: Any) -> str:
    """Document key: forward slashes, no leading "./"."""
    key = str(path).replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key


def _line_items_of(obj: Mapping[str, Any]) -> list[Any] | None:
    items = obj.get("line_items")
    if items is None and isinstance(obj.get("fields"), dict):
        items = obj["fields"].get("line_items")
    return items if isinstance(items, list) else None


def _accuracy(n: int, correct: int) -> float | None:
    return round(correct / n, 4) if n else None


def _counts(n: int, correct: int) -> dict[str, Any]:
    return {"n": n, "correct": correct, "accuracy": _accuracy(n, correct)}


def _item_summary(docs: int, n_gold: int, n_pred: int, matched: int) -> dict[str, Any]:
    p, r, f = prf(matched, n_gold, n_pred)
    return {"docs": docs, "gold": n_gold, "pred": n_pred, "matched": matched,
            "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


@dataclass
class Scored:
    """A scoring run: the summary (same numbers and shape as score.py's ``--json`` output) and
    one detail row per gold field instance and per document with line items."""

    summary: dict[str, Any]
    details: list[dict[str, Any]]


def score(gold_docs: Iterable[Mapping[str, Any]], pred_docs: Iterable[Any]) -> Scored:
    """Score predictions (``{"doc", "fields", "line_items"}``) against gold documents."""
    gold_docs = list(gold_docs)
    warnings: list[str] = []
    preds: dict[str, Mapping[str, Any]] = {}
    for p in pred_docs:
        if not isinstance(p, dict) or "doc" not in p:
            warnings.append("prediction without 'doc' skipped")
            continue
        key = doc_key(p["doc"])
        if key in preds:
            warnings.append(f"duplicate prediction for {key}: first one kept")
        else:
            preds[key] = p
    unknown = sorted(set(preds) - {doc_key(g["doc"]) for g in gold_docs})
    if unknown:
        warnings.append(f"{len(unknown)} predicted docs are not in the gold file (ignored), e.g. {unknown[0]}")

    fields: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    items: dict[str, list[int]] = {}
    docs: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    details: list[dict[str, Any]] = []
    for g in gold_docs:
        dataset = g.get("dataset", "?")
        key = doc_key(g["doc"])
        p = preds.get(key)
        docs[dataset][0] += 1
        docs[dataset][1] += p is not None
        predicted: dict[str, Any] = {}
        if p is not None:
            predicted = dict(p.get("fields") or {})
            predicted.update({f: p[f] for f in FIELD_KINDS if f not in predicted and f in p})
        for name, gold_value in (g.get("fields") or {}).items():
            if name not in FIELD_KINDS:
                continue
            ok, read = compare_field(name, gold_value, predicted.get(name), g.get("date_order"))
            fields[dataset][name][0] += 1
            fields[dataset][name][1] += ok
            details.append({"dataset": dataset, "doc": key, "field": name, "gold": gold_value,
                            "pred": prediction_value(predicted.get(name)), "pred_norm": read, "correct": ok})
        gold_items = _line_items_of(g)
        if gold_items:
            match = match_line_items(gold_items, (_line_items_of(p) if p is not None else None) or [])
            acc = items.setdefault(dataset, [0, 0, 0, 0])
            acc[0] += match.matched
            acc[1] += match.n_gold
            acc[2] += match.n_pred
            acc[3] += 1
            details.append({"dataset": dataset, "doc": key, "field": "line_items", "tp": match.matched,
                            "n_gold": match.n_gold, "n_pred": match.n_pred,
                            "pairs": [[i, j, round(s, 3)] for i, j, s in match.pairs]})
    return Scored(_summary(fields, items, docs, warnings), details)


def _summary(fields: Mapping[str, Mapping[str, list[int]]], items: Mapping[str, list[int]],
             docs: Mapping[str, list[int]], warnings: list[str]) -> dict[str, Any]:
    datasets: dict[str, Any] = {}
    overall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for dataset in sorted(docs):
        per_field: dict[str, Any] = {}
        for name in FIELD_KINDS:
            if name in fields.get(dataset, {}):
                n, c = fields[dataset][name]
                per_field[name] = _counts(n, c)
                overall[name][0] += n
                overall[name][1] += c
        entry: dict[str, Any] = {
            "docs": docs[dataset][0], "docs_predicted": docs[dataset][1], "fields": per_field,
            "micro": _counts(sum(v["n"] for v in per_field.values()), sum(v["correct"] for v in per_field.values())),
        }
        if dataset in items:
            tp, ng, npred, nd = items[dataset]
            entry["line_items"] = _item_summary(nd, ng, npred, tp)
        datasets[dataset] = entry
    per_field_all = {name: _counts(*overall[name]) for name in FIELD_KINDS if name in overall}
    line_items = None
    if items:
        tp, ng, npred, nd = (sum(v[k] for v in items.values()) for k in range(4))
        line_items = _item_summary(nd, ng, npred, tp)
    return {"datasets": datasets, "per_field": per_field_all,
            "micro": _counts(sum(v[0] for v in overall.values()), sum(v[1] for v in overall.values())),
            "line_items": line_items, "warnings": warnings}
