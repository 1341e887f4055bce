"""Coherent invoice records: the ground truth a synthetic document is rendered from.

A :class:`Record` holds exact values (``Decimal`` money, ``date`` dates, ISO 4217 currency) whose
arithmetic always holds: ``quantity * unit_price = amount`` per line, ``sum(amounts) = subtotal``,
``subtotal - discount + shipping + sum(tax lines) = total``, ``total - paid = due``.
A :class:`Fmt` holds one document's printing choices (date pattern, number style, currency placement)
and prints values the way the document shows them; :func:`parse_amount` / :func:`parse_date` read
printed text back (Babel data) so tests can check that what was printed is what the record says.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel.dates import format_date, get_month_names
from babel.numbers import get_currency_symbol, parse_decimal

from invoicegen.schema import field_key
from invoicegen.synth.locales import (
    BROADCAST_AGENCY_WORDS,
    BROADCAST_CAUSES,
    BROADCAST_OFFICES,
    BROADCAST_PROGRAMS,
    GOOD_QUALIFIERS,
    GOODS,
    HOURLY,
    HOURLY_DETAIL,
    KIND_WEIGHTS,
    KINDS,
    LABELS,
    LANG_INDEX,
    LOCALES,
    MY_AREA_CODES,
    MY_AREAS,
    MY_COMPANY_SUFFIXES,
    MY_PEOPLE,
    MY_SHOP_NAMES,
    MY_SHOP_TYPES,
    MY_STREETS,
    MY_TOWNS,
    SERVICES,
    UNITS,
    LocaleSpec,
    captions,
    has_caption,
    kind_allows,
)

CENT = Decimal("0.01")
FLAVORS = ("goods", "services", "hourly", "mixed")


def q2(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def wchoice(rng: random.Random, pairs) -> str:
    items, weights = zip(*pairs, strict=True)
    return rng.choices(items, weights=weights)[0]


# ---------------------------------------------------------------------------------------------
# Identifiers with valid check digits.
# ---------------------------------------------------------------------------------------------


def _digits(rng: random.Random, n: int, first_nonzero: bool = True) -> str:
    s = "".join(str(rng.randint(0, 9)) for _ in range(n))
    return (str(rng.randint(1, 9)) + s[1:]) if first_nonzero and n else s


def _luhn_check(number: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def tax_id(rng: random.Random, country: str) -> tuple[str, str]:
    """A tax id of the country's format with a valid check digit: (printed, normalised)."""
    if country == "US":
        d = _digits(rng, 9)
        return f"{d[:2]}-{d[2:]}", f"{d[:2]}-{d[2:]}"
    if country == "GB":
        body = _digits(rng, 7)
        weighted = sum(int(c) * w for c, w in zip(body, range(8, 1, -1), strict=True))
        num = f"{body}{(-weighted) % 97:02d}"
        compact = f"GB{num}"
        printed = rng.choice([compact, f"GB {num[:3]} {num[3:7]} {num[7:]}", f"GB{num[:3]} {num[3:7]} {num[7:]}"])
        return printed, compact
    if country == "DE":
        body = _digits(rng, 8)
        product = 10
        for ch in body:
            s = (int(ch) + product) % 10 or 10
            product = (2 * s) % 11
        check = str((11 - product) % 10)
        compact = f"DE{body}{check}"
        return rng.choice([compact, f"DE {body}{check}", f"DE {body[:3]} {body[3:6]} {body[6:]}{check}"]), compact
    if country == "FR":
        body = _digits(rng, 8)
        siren = body + _luhn_check(body)
        key = (12 + 3 * (int(siren) % 97)) % 97
        compact = f"FR{key:02d}{siren}"
        return rng.choice([compact, f"FR {key:02d} {siren}", f"FR{key:02d} {siren[:3]} {siren[3:6]} {siren[6:]}"]), compact
    if country == "ES":
        letter = rng.choice("ABG")
        body = _digits(rng, 7, first_nonzero=False)
        odd = sum(int(d) for d in body[1::2])
        even = sum(sum(divmod(int(d) * 2, 10)) for d in body[0::2])
        check = str((10 - (odd + even) % 10) % 10)
        compact = f"ES{letter}{body}{check}"
        return rng.choice([compact, f"{letter}{body}{check}", f"{letter}-{body}{check}"]), compact
    if country == "IT":  # 7 digits, the VAT office (001-100), a Luhn check digit
        body = _digits(rng, 7) + f"{rng.randint(1, 100):03d}"
        check = _luhn_check(body)
        compact = f"IT{body}{check}"
        return rng.choice([compact, f"{body}{check}", f"IT {body}{check}"]), compact
    if country == "NL":
        while True:
            body = _digits(rng, 8)
            rest = sum(int(c) * w for c, w in zip(body, range(9, 1, -1), strict=True)) % 11
            if rest < 10:
                break
        compact = f"NL{body}{rest}B{rng.randint(1, 19):02d}"
        return rng.choice([compact, f"NL {compact[2:]}", compact.replace("B", ".B")]), compact
    if country == "MY":  # GST registration number: 12 digits, issued from 000/001
        compact = rng.choice(["000", "001"]) + _digits(rng, 9, first_nonzero=False)
        return rng.choice([compact, compact, group4(compact)]), compact
    raise ValueError(country)


def ean13(rng: random.Random) -> str:
    body = _digits(rng, 12)
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
    return body + str((10 - s % 10) % 10)


def group4(s: str) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


# ---------------------------------------------------------------------------------------------
# Printing choices of one document and the matching parsers.
# ---------------------------------------------------------------------------------------------


@dataclass
class Fmt:
    locale: str
    lang: str
    currency: str
    date_pattern: str
    group: str
    decimal: str
    currency_style: str
    currency_space: bool
    items_with_currency: bool
    negative_style: str
    qty_places: int
    percent_space: bool
    percent_places: int
    picks: dict = field(default_factory=dict)
    rng: random.Random | None = field(default=None, repr=False)
    avoid: str | None = None
    """Lower-case stem that captions must not contain (the invoice title on other kinds)."""
    gross: bool = False
    """Prices include tax: captions that say "net" would lie."""

    # -- captions ------------------------------------------------------------------------------
    def label(self, key: str, **kw) -> str:
        """A caption in the document's language; one synonym per key for the whole document."""
        if key not in self.picks:
            options: tuple[str, ...] | list[str] = captions(self.locale, key)
            if self.avoid:  # "Invoice Total" does not belong on a credit note
                options = [o for o in options if self.avoid not in o.lower()] or options
            if self.gross and key in _AMOUNT_CAPTIONS:  # gross prices: no "net" / "excl. tax" / "HT" captions
                options = [o for o in options if not _says_net(o)] or options
            self.picks[key] = self.rng.choice(options) if self.rng else options[0]
        text = self.picks[key]
        return text.format(**kw) if kw else text

    def unit(self, key: str) -> str:
        ukey = f"unit:{key}"
        if ukey not in self.picks:
            self.picks[ukey] = self.rng.choice(UNITS[key][self.lang]) if self.rng else UNITS[key][self.lang][0]
        return self.picks[ukey]

    # -- values --------------------------------------------------------------------------------
    def number(self, x: Decimal, places: int = 2) -> str:
        sign = "-" if x < 0 else ""
        s = f"{abs(x):.{places}f}"
        whole, _, frac = s.partition(".")
        if self.group:
            parts: list[str] = []
            while len(whole) > 3:
                parts.insert(0, whole[-3:])
                whole = whole[:-3]
            parts.insert(0, whole)
            whole = self.group.join(parts)
        return sign + whole + (self.decimal + frac if places else "")

    @property
    def symbol(self) -> str:
        return get_currency_symbol(self.currency, self.locale)

    def money(self, x: Decimal, currency: bool = True, negative: bool = False) -> str:
        s = self.number(x)
        style = self.currency_style if currency else "none"
        sp = " " if self.currency_space else ""
        if style == "symbol_before":
            s = f"{self.symbol}{sp}{s}"
        elif style == "symbol_after":
            s = f"{s}{sp}{self.symbol}"
        elif style == "code_before":
            s = f"{self.currency} {s}"
        elif style == "code_after":
            s = f"{s} {self.currency}"
        if negative:
            s = f"({s})" if self.negative_style == "paren" else ("-" + s if self.negative_style == "minus" else s)
        return s

    def item_money(self, x: Decimal) -> str:
        return self.money(x, currency=self.items_with_currency)

    def qty(self, x: Decimal) -> str:
        places = self.qty_places
        if x != x.to_integral_value():
            places = max(places, len(str(x.normalize()).partition(".")[2]))
        return self.number(x, places)

    def percent(self, rate: Decimal) -> str:
        places = self.percent_places
        if rate != rate.to_integral_value():
            places = max(places, len(str(rate.normalize()).partition(".")[2]))
        return self.number(rate, places) + (" %" if self.percent_space else "%")

    def date(self, d: dt.date) -> str:
        return format_date(d, self.date_pattern, locale=self.locale)


_AMOUNT_CAPTIONS = frozenset({"subtotal", "subtotal_gross", "total", "amount_due", "col_unit_price",
                               "col_unit_price_hourly", "col_amount"})


def _says_net(caption: str) -> bool:
    words = re.findall(r"[\w.]+", caption.lower())
    return any(wd.startswith(("net", "excl", "imponib", "hors", "exkl")) or wd in ("ht", "h.t.") for wd in words)


def make_fmt(rng: random.Random, locale: str, currency: str) -> Fmt:
    spec = LOCALES[locale]
    group, dec = rng.choice(spec.number_styles)
    style = wchoice(rng, spec.currency_styles)
    space = spec.lang != "en" or rng.random() < 0.1
    if style == "symbol_before" and spec.lang in ("nl", "it", "de"):
        space = rng.random() < 0.8
    return Fmt(
        locale=locale, lang=spec.lang, currency=currency, date_pattern=rng.choice(spec.date_patterns),
        group=group, decimal=dec, currency_style=style, currency_space=space,
        items_with_currency=style != "none" and rng.random() < 0.35,
        negative_style=rng.choice(["minus", "minus", "paren", "none"]),
        qty_places=rng.choice([0, 0, 0, 2]), percent_space=spec.lang in ("fr", "de") and rng.random() < 0.7,
        percent_places=rng.choice([0, 0, 0, 1, 2]), rng=rng,
    )


_NUMBER_CHARS = re.compile(r"[^\d.,' \u00a0\u202f]")


def parse_amount(text: str, locale: str) -> Decimal:
    """Decimal value of a printed amount ("1.234,56 €", "($1,234.56)", "EUR 1 234,56") via Babel."""
    s = _NUMBER_CHARS.sub("", text).strip(" .,")
    if re.fullmatch(r"\d{1,3}([ \u00a0\u202f]\d{3})+([.,]\d+)?", s):
        s = re.sub(r"[ \u00a0\u202f]", "", s)
    return parse_decimal(s, locale=locale, strict=False)


def parse_percent(text: str, locale: str) -> Decimal:
    return parse_decimal(text.replace("%", "").strip(), locale=locale, strict=False)


@lru_cache(maxsize=256)
def _date_regex(pattern: str, locale: str) -> tuple[re.Pattern, tuple[str, ...]]:
    groups: list[str] = []
    out = []
    for tok in re.findall(r"'[^']*'|d+|M+|y+|.", pattern):
        if tok.startswith("'"):
            out.append(re.escape(tok.strip("'")))
        elif tok[0] == "d":
            out.append(r"(\d{1,2})")
            groups.append("d")
        elif tok[0] == "M" and len(tok) <= 2:
            out.append(r"(\d{1,2})")
            groups.append("M")
        elif tok[0] == "M":
            width = "wide" if len(tok) == 4 else "abbreviated"
            names: set[str] = set()
            for ctx in ("format", "stand-alone"):
                names.update(get_month_names(width, ctx, locale=locale).values())  # type: ignore[arg-type]
            out.append("(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + ")")
            groups.append(tok)
        elif tok[0] == "y":
            out.append(r"(\d{2})" if len(tok) == 2 else r"(\d{4})")
            groups.append(tok)
        else:
            out.append(re.escape(tok))
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE), tuple(groups)


def parse_date(text: str, pattern: str, locale: str) -> dt.date:
    """Read a date printed with a Babel ``pattern`` back (month names from Babel's locale data)."""
    rx, groups = _date_regex(pattern, locale)
    m = rx.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} does not match {pattern!r} ({locale})")
    day = month = year = None
    for g, val in zip(groups, m.groups(), strict=True):
        if g == "d":
            day = int(val)
        elif g == "M":
            month = int(val)
        elif g.startswith("M"):
            width = "wide" if len(g) == 4 else "abbreviated"
            for ctx in ("format", "stand-alone"):
                for num, name in get_month_names(width, ctx, locale=locale).items():  # type: ignore[arg-type]
                    if name.lower() == val.lower():
                        month = num
        else:
            year = int(val) + (2000 if len(g) == 2 else 0)
    if year is None or month is None or day is None:
        raise ValueError(f"{text!r}: incomplete date for {pattern!r}")
    return dt.date(year, month, day)


# ---------------------------------------------------------------------------------------------
# Records.
# ---------------------------------------------------------------------------------------------


@dataclass
class Party:
    name: str
    address: list[str]
    tax_id: str | None = None
    tax_id_compact: str | None = None
    email: str | None = None
    phone: str | None = None
    website: str | None = None
    iban: str | None = None
    bic: str | None = None
    bank_name: str | None = None
    routing: str | None = None
    account: str | None = None
    contact: str | None = None
    reg_no: str | None = None
    """Company registration number (Malaysia: "123456-X"), printed beside the name; not a tax id."""


@dataclass
class Item:
    description: str
    sku: str | None
    quantity: Decimal
    unit: str
    unit_price: Decimal
    tax_rate: Decimal
    amount: Decimal
    hourly: bool = False


@dataclass
class TaxLine:
    rate: Decimal
    base: Decimal
    amount: Decimal


@dataclass
class SpotLine:
    """The schedule columns of one broadcast line besides program, spots, rate and amount."""

    start: dt.date
    end: dt.date
    days: str
    time: str
    length: str


@dataclass
class Broadcast:
    """What a TV station's ad-buy order, contract or invoice adds to a record: the buyer is the
    advertiser, the agency that places the buy is billed, lines are spots of programs."""

    invoice: bool
    """An invoice of aired spots (else an order / contract)."""
    agency: Party
    product: str
    flight_start: dt.date
    flight_end: dt.date
    salesperson: str
    market: str
    alt_order: str | None
    commission_pct: Decimal
    lines: list[SpotLine]


@dataclass
class Record:
    kind: str
    flavor: str
    locale: str
    currency: str
    number: str
    po_number: str | None
    invoice_reference: str | None
    date: dt.date
    due_date: dt.date | None
    time: str | None
    terms_days: int | None
    payment_terms: str | None
    supplier: Party
    buyer: Party
    ship_to: list[str] | None
    items: list[Item]
    subtotal: Decimal
    discount: Decimal
    discount_pct: Decimal | None
    shipping: Decimal
    tax_lines: list[TaxLine]
    tax_amount: Decimal
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    tax_name: str
    notes: list[str]
    cashier: str | None = None
    paid_with: str | None = None
    tendered: Decimal | None = None
    delivery_date: dt.date | None = None
    prices_include_tax: bool = False
    """Gross prices: tax lines state the tax contained in their base; total = subtotal - discount + shipping."""
    rounding: Decimal = Decimal(0)
    """Cash rounding added to the total (Malaysia: to 0.05); the total is the rounded amount."""
    commission: Decimal = Decimal(0)
    """Agency commission of a broadcast order: amount due = total (gross) - commission (net)."""
    terminal: str | None = None
    broadcast: Broadcast | None = None

    @property
    def main_rate(self) -> Decimal:
        return max(self.tax_lines, key=lambda t: t.base).rate if self.tax_lines else Decimal(0)

    def to_json(self) -> dict:
        """Normalised ground truth keyed by schema field keys (+ ``line_items`` and extras)."""
        items = [
            {"description": it.description, "sku": it.sku, "quantity": _num(it.quantity), "unit": it.unit,
             "unit_price": str(it.unit_price), "tax_rate": _num(it.tax_rate), "amount": str(it.amount)}
            for it in self.items
        ]
        s, b = self.supplier, self.buyer
        doc_number = None if self.kind == "purchase_order" else self.number
        po = self.number if self.kind == "purchase_order" else self.po_number
        fields = {
            "doc_type": self.kind, "invoice_number": doc_number, "po_number": po,
            "invoice_date": self.date.isoformat(), "due_date": self.due_date.isoformat() if self.due_date else None,
            "payment_terms": self.payment_terms, "currency": self.currency,
            "supplier_name": s.name, "supplier_address": "\n".join(s.address), "supplier_tax_id": s.tax_id_compact,
            "supplier_email": s.email, "supplier_phone": s.phone, "supplier_iban": s.iban,
            "buyer_name": b.name, "buyer_address": "\n".join(b.address), "buyer_tax_id": b.tax_id_compact,
            "ship_to_address": "\n".join(self.ship_to) if self.ship_to else None,
            "subtotal": str(self.subtotal), "discount": str(self.discount) if self.discount else None,
            "shipping": str(self.shipping) if self.shipping else None,
            "tax_rate": _num(self.main_rate) if self.tax_lines else None,
            "tax_amount": str(self.tax_amount), "total_amount": str(self.total), "amount_due": str(self.amount_due),
        }
        assert set(fields) == {field_key(e) for e in _header_entities()}
        return {
            "kind": self.kind, "flavor": self.flavor, "locale": self.locale, **fields, "line_items": items,
            "tax_lines": [{"rate": _num(t.rate), "base": str(t.base), "amount": str(t.amount)}
                          for t in self.tax_lines],
            "amount_paid": str(self.amount_paid), "payment_terms_days": self.terms_days,
            "invoice_reference": self.invoice_reference, "supplier_bic": s.bic,
            "prices_include_tax": self.prices_include_tax,
            "discount_pct": _num(self.discount_pct) if self.discount_pct is not None else None,
            "rounding": str(self.rounding), "commission": str(self.commission),
            **(_broadcast_json(self.broadcast) if self.broadcast else {}),
        }


def _broadcast_json(b: Broadcast) -> dict:
    return {"agency_name": b.agency.name, "product": b.product, "flight_start": b.flight_start.isoformat(),
            "flight_end": b.flight_end.isoformat(), "commission_pct": _num(b.commission_pct),
            "spot_lines": [{"start": ln.start.isoformat(), "end": ln.end.isoformat(), "days": ln.days,
                            "time": ln.time, "length": ln.length} for ln in b.lines]}


def _header_entities() -> tuple[str, ...]:
    from invoicegen.schema import HEADER_ENTITIES

    return HEADER_ENTITIES


def _num(x: Decimal) -> str:
    return format(x.normalize(), "f")


def tax_of(base: Decimal, rate: Decimal, inclusive: bool = False) -> Decimal:
    """Tax on a net base, or the tax contained in a gross base (``inclusive``), rounded to cents."""
    return q2(base * rate / (100 + rate)) if inclusive else q2(base * rate / 100)


def check_arithmetic(rec: dict) -> list[str]:
    """Every arithmetic invariant of a record JSON (``Record.to_json()``); returns the failures."""
    errors = []
    D = Decimal
    items = rec["line_items"]
    for i, it in enumerate(items):
        if q2(D(it["quantity"]) * D(it["unit_price"])) != D(it["amount"]):
            errors.append(f"line {i}: {it['quantity']} x {it['unit_price']} != {it['amount']}")
    subtotal = sum((D(it["amount"]) for it in items), D(0))
    if subtotal != D(rec["subtotal"]):
        errors.append(f"sum of lines {subtotal} != subtotal {rec['subtotal']}")
    tax = D(0)
    inclusive = bool(rec.get("prices_include_tax"))
    for t in rec["tax_lines"]:
        if tax_of(D(t["base"]), D(t["rate"]), inclusive) != D(t["amount"]):
            errors.append(f"tax line {t}")
        tax += D(t["amount"])
    if tax != D(rec["tax_amount"]):
        errors.append(f"tax lines {tax} != tax_amount {rec['tax_amount']}")
    disc = D(rec["discount"] or 0)
    ship = D(rec["shipping"] or 0)
    bases = sum((D(t["base"]) for t in rec["tax_lines"]), D(0))
    if rec["tax_lines"] and bases != subtotal - disc + ship:
        errors.append(f"tax bases {bases} != subtotal - discount + shipping")
    total = subtotal - disc + ship + (0 if inclusive else tax) + D(rec.get("rounding") or 0)
    if total != D(rec["total_amount"]):
        errors.append(f"total {rec['total_amount']} != {total}")
    if D(rec["total_amount"]) - D(rec["amount_paid"]) - D(rec.get("commission") or 0) != D(rec["amount_due"]):
        errors.append("amount_due != total - paid - commission")
    return errors


# -- generators --------------------------------------------------------------------------------

_NUMBER_PATTERNS: dict[str, dict[str, tuple[str, ...]]] = {
    "invoice": {"en": ("INV-{Y}-{n4}", "INV{n6}", "{n5}", "{Y}-{n4}", "IN/{y}/{n4}", "#{n5}"),
                "de": ("RE-{Y}-{n4}", "RG{y}{n5}", "{Y}{n5}", "R{n6}", "{n5}"),
                "fr": ("FA{Y}-{n4}", "F-{Y}-{n5}", "FAC{n6}", "{Y}/{n4}", "F{y}{n5}"),
                "es": ("F{Y}-{n4}", "FV/{Y}/{n4}", "A-{n5}", "{Y}/{n4}", "FRA{n5}"),
                "it": ("FT {n4}/{Y}", "{n3}/{Y}", "FATT-{Y}-{n4}", "{n4}/A", "{Y}/{n5}"),
                "nl": ("F{Y}-{n4}", "FACT{n6}", "{Y}{n5}", "{n6}", "INV-{Y}-{n4}")},
    "credit_note": {"en": ("CN-{Y}-{n4}", "CR{n5}", "CM-{n4}"), "de": ("GS-{Y}-{n4}", "G{n6}", "RK{y}{n4}"),
                    "fr": ("AV{Y}-{n4}", "AV-{n5}"), "es": ("R{Y}-{n4}", "AB-{n5}", "FR/{Y}/{n3}"),
                    "it": ("NC {n3}/{Y}", "NC-{Y}-{n4}"), "nl": ("C{Y}-{n4}", "CF{n6}", "CN-{n5}")},
    "proforma": {"en": ("PF-{Y}-{n4}", "PRO{n5}", "Q-{n5}"), "de": ("PR-{Y}-{n4}", "PF{n5}"),
                 "fr": ("PRO-{Y}-{n4}", "PF{n5}"), "es": ("PF{Y}-{n4}", "PRO-{n5}"),
                 "it": ("PF {n3}/{Y}", "PRO-{n5}"), "nl": ("PF{Y}-{n4}", "PRO{n5}")},
    "purchase_order": {"en": ("PO-{Y}-{n4}", "PO{n6}", "45{n8}"), "de": ("B-{Y}-{n4}", "BE{n6}", "45{n8}"),
                       "fr": ("BC-{Y}-{n4}", "CMD{n6}"), "es": ("PED-{Y}-{n4}", "OC{n6}"),
                       "it": ("ORD-{Y}-{n4}", "OA {n4}/{Y}"), "nl": ("IO-{Y}-{n4}", "PO{n6}")},
    "receipt": {lang: ("{n4}-{n3}", "{n6}", "#{n5}", "{n2}/{n4}/{n4}") for lang in LANG_INDEX},
    "broadcast_order": {"en": ("{n6}", "{n8}", "{n5}", "{n6}-1", "{n6}-2", "2{n8}", "{n4}{n3}")},
}
_PO_PATTERNS = ("PO-{n5}", "45{n8}", "{n6}", "B-{Y}-{n4}", "ORD{n5}", "{L}{n5}", "PO#{n4}")
_SKU_PATTERNS = ("{L}{L}{L}-{n4}", "{n5}-{n2}", "SKU{n5}", "{L}{n2}{L}{n3}", "{ean}", "{n3}.{n3}.{n2}", "{L}-{n6}")


def _fill(rng: random.Random, pattern: str, date: dt.date) -> str:
    out = pattern
    for key, n in (("n2", 2), ("n3", 3), ("n4", 4), ("n5", 5), ("n6", 6), ("n8", 8)):
        while "{" + key + "}" in out:
            out = out.replace("{" + key + "}", _digits(rng, n, first_nonzero=False), 1)
    while "{L}" in out:
        out = out.replace("{L}", rng.choice("ABCDEFGHJKLMNPRSTUVWXZ"), 1)
    if "{ean}" in out:
        out = out.replace("{ean}", ean13(rng))
    return out.replace("{Y}", str(date.year)).replace("{y}", f"{date.year % 100:02d}")


def _address(fake, rng: random.Random, locale: str, country_line: bool = False) -> list[str]:
    lines = [ln.strip() for ln in fake.address().split("\n") if ln.strip()]
    if locale == "en_US" and len(lines) == 1 and "," in lines[0]:
        street, _, rest = lines[0].partition(", ")
        lines = [street, rest]
    if rng.random() < 0.25 and len(lines) >= 2 and locale != "en_US":
        lines = [lines[0], " ".join(lines[1:])]
    if country_line:
        lines.append(fake.current_country())
    return [re.sub(r"\s+", " ", ln) for ln in lines]


def _my_party(rng: random.Random, *, company: bool, supplier: bool) -> Party:
    """A Malaysian shop ("... SDN BHD", registration number, GST id) or person, with an address."""
    upper = rng.random() < 0.7
    if company:
        name = f"{rng.choice(MY_SHOP_NAMES)} {rng.choice(MY_SHOP_TYPES)} {wchoice(rng, MY_COMPANY_SUFFIXES)}".strip()
    else:
        name = rng.choice(MY_PEOPLE)
    town, state, first_postcode = rng.choice(MY_TOWNS)
    number = rng.choice(["NO. {n}", "No.{n}", "{n}", "LOT {n}", "{n}G", "NO.{n} & {m}"]).format(
        n=rng.randint(1, 250), m=rng.randint(251, 260))
    street = f"{number}, {rng.choice(MY_STREETS)} {rng.randint(1, 20)}" + (f"/{rng.randint(1, 9)}" if rng.random() < 0.3
                                                                           else "")
    place = f"{first_postcode + rng.randint(0, 999):05d} {town}"
    lines = [f"{street},", f"{rng.choice(MY_AREAS)},"]
    lines += [f"{place}, {state}."] if rng.random() < 0.4 else [f"{place},", f"{state}."]
    p = Party(name=name.upper() if upper else name, address=[ln.upper() if upper else ln for ln in lines])
    if company:
        p.reg_no = f"{rng.randint(10000, 1299999)}-{rng.choice('ADHKMPTUVWX')}"
    if supplier and rng.random() < 0.85:
        p.tax_id, p.tax_id_compact = tax_id(rng, "MY")
    if supplier or rng.random() < 0.3:
        p.phone = f"{rng.choice(MY_AREA_CODES)}-{_digits(rng, rng.choice([3, 4]))} {_digits(rng, 4, False)}"
    return p


def _party(fake, rng: random.Random, spec: LocaleSpec, *, company: bool, supplier: bool) -> Party:
    if spec.country == "MY":
        return _my_party(rng, company=company, supplier=supplier)
    name = fake.company() if company else fake.name()
    p = Party(name=re.sub(r"\s+", " ", name), address=_address(fake, rng, spec.code))
    if supplier or (company and rng.random() < 0.7):
        p.tax_id, p.tax_id_compact = tax_id(rng, spec.country)
    domain = re.sub(r"[^a-z0-9]+", "", name.lower().split(" ")[0])[:14] or "mail"
    tld = {"US": "com", "GB": "co.uk"}.get(spec.country, spec.country.lower())
    if supplier or rng.random() < 0.35:
        user = rng.choice(["info", "billing", "accounts", "invoices", "sales", "office", "contact"]) if company \
            else fake.user_name()
        p.email = f"{user}@{domain}.{tld}" if company else f"{user}@{fake.free_email_domain()}"
    if supplier or rng.random() < 0.3:
        p.phone = re.sub(r"\s+", " ", fake.phone_number())
    if supplier:
        p.website = f"www.{domain}.{tld}"
        if spec.country == "US":
            p.routing, p.account = fake.aba(), _digits(rng, rng.randint(8, 12))
            p.bank_name = rng.choice(["Chase Bank", "Bank of America", "Wells Fargo", "Citibank", "US Bank"])
        else:
            p.iban, p.bic = fake.iban(), fake.swift(length=rng.choice([8, 11]))
            p.bank_name = fake.company().split(" ")[0] + " " + rng.choice(
                {"en": ["Bank"], "de": ["Bank", "Sparkasse", "Volksbank"], "fr": ["Banque", "Crédit"],
                 "es": ["Banco", "Caja"], "it": ["Banca", "Credito"], "nl": ["Bank"]}[spec.lang])
        if rng.random() < 0.3:
            p.contact = fake.name()
    return p


def _catalog_item(rng: random.Random, lang: str, flavor: str, fmt: Fmt, rates: list[Decimal],
                  spec: LocaleSpec, retail: bool = False) -> Item:
    li = LANG_INDEX[lang]
    kind = flavor if flavor != "mixed" else rng.choice(["goods", "goods", "services", "hourly"])
    hourly = False
    if kind in ("goods", "services"):
        entry = rng.choice(GOODS if kind == "goods" else SERVICES)
        desc, unit_key, (lo, hi) = str(entry[li]), entry[6], entry[7]
        if kind == "goods" and rng.random() < 0.35:
            desc = f"{desc}, {rng.choice(GOOD_QUALIFIERS[lang])}"
    else:
        job = rng.choice(HOURLY)
        desc, unit_key, (lo, hi) = str(job[li]), "hour", job[6]
        hourly = True
        if rng.random() < 0.6:
            desc = f"{desc} – {rng.choice(HOURLY_DETAIL[lang]).format(n=rng.randint(1, 52))}"
    if retail:
        quantity = Decimal(rng.choice([1, 1, 1, 1, 2, 2, 3, 4])) if unit_key not in ("kg", "l", "m") else \
            Decimal(rng.randint(2, 40)) / 10
    elif unit_key in ("piece", "box"):
        quantity = Decimal(rng.choice([1, 1, 1, 2, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 25, 50, 100]))
    elif unit_key in ("kg", "l", "m"):
        quantity = Decimal(rng.choice([1, 2, 5, 10, 12, 25])) if rng.random() < 0.5 else \
            Decimal(rng.randint(5, 400)) / rng.choice([Decimal(2), Decimal(4), Decimal(10)])
    elif unit_key == "hour":
        quantity = Decimal(rng.randint(2, 320)) / 4 if rng.random() < 0.6 else Decimal(rng.randint(1, 60))
    elif unit_key in ("month", "day"):
        quantity = Decimal(rng.choice([1, 1, 2, 3, 6, 12]))
    else:
        quantity = Decimal(1)
    price = Decimal(rng.uniform(lo, hi)).quantize(Decimal("0.01"))
    ending = rng.random()
    if ending < 0.25:
        price = price.to_integral_value() + Decimal("0.99") - 1 if price > 1 else price
    elif ending < 0.5:
        price = price.to_integral_value()
    price = q2(max(price, Decimal("0.10")))
    sku = None
    if kind == "goods" or rng.random() < 0.3:
        sku = _fill(rng, fmt.picks.setdefault("sku_pattern", rng.choice(_SKU_PATTERNS)), dt.date(2000, 1, 1))
    rate = rates[0] if len(rates) == 1 or rng.random() < 0.6 else rng.choice(rates[1:])
    return Item(description=desc, sku=sku, quantity=quantity, unit=fmt.unit(unit_key), unit_price=price,
                tax_rate=rate, amount=q2(quantity * price), hourly=hourly)


def choose_kind(rng: random.Random, kinds: list[str] | None = None, locales: list[str] | None = None) -> str:
    """A kind by ``KIND_WEIGHTS``, among those drawn in at least one of ``locales`` (default: any)."""
    kinds = [k for k in (kinds or KINDS) if locales is None or any(kind_allows(k, lc) for lc in locales)]
    if not kinds:
        raise ValueError(f"none of these kinds is drawn in the locales {locales}")
    return rng.choices(kinds, weights=[KIND_WEIGHTS.get(k, 0.1) for k in kinds])[0]


def make_record(rng: random.Random, fake, kind: str, locale: str, n_items: int | None = None) -> tuple[Record, Fmt]:
    """A coherent record of ``kind`` in ``locale`` and the printing choices of its document."""
    if not kind_allows(kind, locale):
        raise ValueError(f"kind {kind} is not drawn in locale {locale}")
    if kind == "broadcast_order":
        return _broadcast_record(rng, fake, locale, n_items)
    spec = LOCALES[locale]
    lang = spec.lang
    currency = wchoice(rng, spec.currencies)
    fmt = make_fmt(rng, locale, currency)
    if kind not in spec.invoice_kinds:
        fmt.avoid = _invoice_stem(lang)
    flavor = rng.choice(["goods", "goods"]) if kind == "receipt" else wchoice(
        rng, [("goods", 0.5), ("services", 0.2), ("hourly", 0.18), ("mixed", 0.12)])
    if n_items is None:
        if kind == "receipt":
            n_items = rng.randint(1, 14)
        elif rng.random() < 0.16:
            n_items = rng.randint(16, 48)
        else:
            n_items = rng.choice([1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 9, 10, 12])
    first, last = spec.years
    date = dt.date(first, 1, 1) + dt.timedelta(days=rng.randint(0, (last - first + 1) * 365))
    number = _fill(rng, rng.choice(_NUMBER_PATTERNS.get(kind, _NUMBER_PATTERNS["invoice"])[lang]), date)
    supplier = _party(fake, rng, spec, company=True, supplier=True)
    if kind == "purchase_order":  # the buyer issues the order: a company with full contact details
        buyer = _party(fake, rng, spec, company=True, supplier=True)
        buyer.iban = buyer.bic = buyer.routing = buyer.account = buyer.bank_name = None
    else:
        buyer = _party(fake, rng, spec, company=rng.random() < 0.8, supplier=False)
    ship_to = None
    if kind not in ("receipt",) and rng.random() < 0.35:
        ship_to = [fake.name() if rng.random() < 0.5 else buyer.name] + _address(fake, rng, locale)

    # Taxes: one or several rates.
    rates = list(spec.tax_rates)
    multi = len(rates) > 1 and rates[1] > 0 and rng.random() < 0.25 and kind != "purchase_order"
    if spec.country == "US" and rng.random() < 0.15 or rng.random() < 0.06 and spec.country != "US":
        doc_rates = [Decimal(0)]
    else:
        doc_rates = [rates[0]] + ([r for r in rates[1:] if r > 0][:rng.randint(1, 2)] if multi else [])
        if not multi and rng.random() < 0.12:
            doc_rates = [rng.choice([r for r in rates if r > 0])]
    items = [_catalog_item(rng, lang, flavor, fmt, doc_rates, spec, retail=kind == "receipt") for _ in range(n_items)]
    subtotal = sum((it.amount for it in items), Decimal(0))
    discount, discount_pct = Decimal(0), None
    if len(doc_rates) == 1 and kind != "receipt" and rng.random() < 0.25:
        if rng.random() < 0.6:
            discount_pct = Decimal(rng.choice([2, 3, 5, 10, 15, 20]))
            discount = q2(subtotal * discount_pct / 100)
        else:
            discount = min(q2(Decimal(rng.choice([5, 10, 20, 25, 50, 100]))), q2(subtotal / 2))
    shipping = Decimal(0)
    if flavor in ("goods", "mixed") and kind != "receipt" and rng.random() < 0.35:
        shipping = Decimal(rng.choice(["4.90", "5.99", "7.50", "9.95", "12.00", "15.00", "25.00", "49.00", "89.50"]))
    bases: dict[Decimal, Decimal] = {}
    for it in items:
        bases[it.tax_rate] = bases.get(it.tax_rate, Decimal(0)) + it.amount
    std = doc_rates[0]
    bases[std] = bases.get(std, Decimal(0)) - discount + shipping
    # Shop receipts and some consumer invoices in Europe print gross prices: the tax is included.
    inclusive = spec.country not in ("US",) and (
        kind == "receipt" and rng.random() < 0.85 or kind == "invoice" and not buyer.tax_id and rng.random() < 0.3)
    fmt.gross = inclusive
    tax_lines = [TaxLine(rate=r, base=b, amount=tax_of(b, r, inclusive)) for r, b in sorted(bases.items(), reverse=True)]
    tax_amount = sum((t.amount for t in tax_lines), Decimal(0))
    total = subtotal - discount + shipping + (Decimal(0) if inclusive else tax_amount)
    rounding = Decimal(0)
    if spec.cash_rounding and kind == "receipt":  # the till rounds what the customer pays
        step = spec.cash_rounding
        rounded = q2((total / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)
        rounding, total = rounded - total, rounded
    paid = Decimal("0.00")
    tendered = None
    paid_with = None
    if kind == "receipt":
        paid = total
        paid_with = fmt.label("paid_with")
        tendered = total
        if paid_with in captions(locale, "paid_with")[:1]:  # cash: the customer hands over a round sum
            step = Decimal(rng.choice([1, 5, 10, 20]))
            tendered = (total / step).to_integral_value(rounding=ROUND_CEILING) * step
    elif kind in ("invoice", "tax_invoice") and rng.random() < 0.12:
        paid = q2(total * Decimal(rng.choice([10, 20, 25, 30, 50])) / 100) if rng.random() < 0.7 else total
    due_date, terms_days, terms, delivery_date = None, None, None, None
    if kind not in ("receipt",):
        terms_days = rng.choice([0, 7, 10, 14, 14, 15, 21, 30, 30, 30, 45, 60, 90])
        if kind == "purchase_order":
            terms_days = rng.choice([14, 30, 30, 45, 60])
        due_date = date + dt.timedelta(days=terms_days or rng.choice([0, 7, 14]))
        if kind == "purchase_order":  # a PO has a delivery date, not a payment due date
            delivery_date, due_date = due_date, None
        terms = fmt.label("terms_now") if terms_days == 0 else fmt.label("terms_days", d=terms_days)
    po_number = None
    if kind not in ("receipt", "purchase_order") and rng.random() < 0.55:
        po_number = _fill(rng, rng.choice(_PO_PATTERNS), date)
    inv_ref = None
    if kind == "credit_note":
        inv_ref = _fill(rng, rng.choice(_NUMBER_PATTERNS["invoice"][lang]), date)
    notes_key = {"proforma": "proforma_note", "credit_note": "credit_note_note", "purchase_order": "po_note"}
    notes = []
    if kind in notes_key:
        notes.append(fmt.label(notes_key[kind]))
    n_notes = rng.choice([0, 0, 1, 1, 2])
    note_lines = captions(locale, "note_lines")
    notes += rng.sample(note_lines, k=min(n_notes, len(note_lines)))
    time = terminal = cashier = None
    if kind == "receipt":
        clock = dt.time(rng.randint(7, 21), rng.randint(0, 59), rng.randint(0, 59))
        time = clock.strftime(rng.choice(spec.time_formats))
        if has_caption(locale, "terminal") and rng.random() < 0.6:
            terminal = rng.choice(["T{n}", "POS {n}", "{n:02d}", "C{n}", "{n}"]).format(n=rng.randint(1, 12))
        if rng.random() < 0.7:
            cashier = rng.choice(MY_PEOPLE) if spec.country == "MY" else fake.first_name()
    record = Record(
        kind=kind, flavor=flavor, locale=locale, currency=currency, number=number, po_number=po_number,
        invoice_reference=inv_ref, date=date, due_date=due_date, time=time,
        terms_days=terms_days, payment_terms=terms, supplier=supplier, buyer=buyer, ship_to=ship_to,
        items=items, subtotal=subtotal, discount=discount, discount_pct=discount_pct, shipping=shipping,
        tax_lines=tax_lines, tax_amount=tax_amount, total=total, amount_paid=paid, amount_due=total - paid,
        tax_name=rng.choice(spec.tax_names), notes=notes,
        cashier=cashier, paid_with=paid_with, tendered=tendered, delivery_date=delivery_date,
        prices_include_tax=inclusive, rounding=rounding, terminal=terminal,
    )
    return record, fmt


def _invoice_stem(lang: str) -> str:
    """Lower-case stem of the word "invoice" in ``lang``: captions of other kinds must not contain it."""
    return LABELS[lang]["title_invoice"][0].lower()[:5]


# -- broadcast ad-buy orders -------------------------------------------------------------------

_DAY_SETS = (("M-F", "MTWTF--", 0.4), ("M-Su", "MTWTFSS", 0.1), ("M-Sa", "MTWTFS-", 0.05), ("Sa", "-----S-", 0.1),
             ("Su", "------S", 0.1), ("Sa-Su", "-----SS", 0.07), ("M", "M------", 0.04), ("Tu", "-T-----", 0.04),
             ("W", "--W----", 0.04), ("Th", "---T---", 0.03), ("F", "----F--", 0.03))
_LENGTHS = ((":30", 0.75), (":15", 0.1), (":60", 0.05), ("1:00", 0.05), (":10", 0.05))
_RATES = (25, 35, 40, 50, 60, 75, 90, 100, 125, 150, 175, 200, 250, 300, 350, 400, 450, 500, 600, 750, 800, 900,
          1000, 1200, 1500, 1800, 2000, 2500, 3000, 3500, 5000)


def _clock(minutes: int, style: str) -> str:
    """A time of day printed the way station traffic systems do ("6:00 AM", "6a", "11:35p", "0600")."""
    h, m = divmod(minutes % (24 * 60), 60)
    h12, half = (h - 1) % 12 + 1, "AM" if h < 12 else "PM"
    if style == "ampm":
        return f"{h12}:{m:02d} {half}"
    if style == "short":
        return f"{h12}{f':{m:02d}' if m else ''}{half[0].lower()}"
    return f"{h:02d}{m:02d}"


def _advertiser(fake, rng: random.Random, year: int) -> str:
    name = f"{fake.first_name()} {fake.last_name()}"
    pattern = rng.choice(["{name} for {office}", "Committee to Elect {name}", "Friends of {name}",
                          "{name} {year}, Inc", "{last} for {office}", "Citizens for {cause}", "{cause} PAC",
                          "{cause} Action Fund", "{company}", "{company}", "{company}"])
    return pattern.format(name=name, last=name.split()[-1], office=rng.choice(BROADCAST_OFFICES),
                          cause=rng.choice(BROADCAST_CAUSES), year=year + year % 2, company=fake.company())


def _broadcast_record(rng: random.Random, fake, locale: str, n_items: int | None) -> tuple[Record, Fmt]:
    """A TV station's order / contract / invoice for an ad buy: spots of programs over a flight, the
    gross amount as the total, less agency commission (the net amount is what an invoice asks for)."""
    spec = LOCALES[locale]
    fmt = make_fmt(rng, locale, "USD")
    fmt.date_pattern = rng.choice(("MM/dd/yy", "M/d/yy", "MM/dd/yyyy", "M/d/yyyy"))
    fmt.group, fmt.decimal, fmt.currency_space, fmt.qty_places = ",", ".", False, 0
    fmt.currency_style = wchoice(rng, (("symbol_before", 0.85), ("none", 0.15)))
    fmt.items_with_currency = fmt.currency_style != "none" and rng.random() < 0.8
    invoice = rng.random() < 0.45
    if not invoice:
        fmt.avoid = _invoice_stem(spec.lang)
    flight_start = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randint(0, 7 * 365))
    weeks = rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8])
    flight_end = flight_start + dt.timedelta(days=7 * weeks - 1)
    date = flight_end + dt.timedelta(days=rng.randint(0, 10)) if invoice else \
        flight_start - dt.timedelta(days=rng.randint(1, 30))
    if n_items is None:
        n_items = rng.randint(16, 40) if rng.random() < 0.16 else rng.choice([1, 2, 2, 3, 4, 5, 6, 8, 10, 12, 15])
    day_style = rng.choice([0, 1])
    time_style = rng.choice(["ampm", "short", "24"])
    default_len = wchoice(rng, _LENGTHS)
    items, lines = [], []
    for _ in range(n_items):
        start_min = rng.choice(range(5 * 60, 24 * 60, 30))
        span = rng.choice([30, 60, 60, 60, 90, 120, 180, 240])
        days = str(rng.choices(_DAY_SETS, weights=[d[2] for d in _DAY_SETS])[0][day_style])
        if weeks > 1 and rng.random() < 0.5:  # a line of one week of the flight
            start = flight_start + dt.timedelta(days=7 * rng.randint(0, weeks - 1))
            end = start + dt.timedelta(days=6)
        else:
            start, end = flight_start, flight_end
        rate = Decimal(rng.choice(_RATES))
        spots = Decimal(rng.choice([1, 1, 2, 2, 3, 4, 5, 5, 6, 8, 10, 12, 15, 20]))
        program = rng.choice(BROADCAST_PROGRAMS)
        items.append(Item(description=program, sku=None, quantity=spots, unit="spots", unit_price=rate,
                          tax_rate=Decimal(0), amount=q2(spots * rate)))
        lines.append(SpotLine(start=start, end=end, days=days, time="-".join(
            _clock(t, time_style) for t in (start_min, start_min + span)),
            length=default_len if rng.random() < 0.85 else wchoice(rng, _LENGTHS)))
    gross = sum((it.amount for it in items), Decimal(0))
    pct = Decimal(wchoice(rng, (("15", 0.8), ("0", 0.15), ("10", 0.05))))
    commission = q2(gross * pct / 100)
    letters = rng.choice("KW") + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(3))
    station = _party(fake, rng, spec, company=True, supplier=True)
    station.name = letters + rng.choice(["", "", "-TV", "-DT", "-CD"])
    station.website = f"www.{letters.lower()}{rng.choice(['', 'tv', 'news'])}.com"
    station.email = f"{rng.choice(['billing', 'traffic', 'sales', 'accounting'])}@{letters.lower()}.com"
    agency = _party(fake, rng, spec, company=True, supplier=False)
    agency.name = f"{fake.last_name()} {rng.choice(BROADCAST_AGENCY_WORDS)}{rng.choice(['', '', ', LLC', ', Inc.'])}"
    advertiser = Party(name=_advertiser(fake, rng, flight_start.year), address=[])
    terms_days = 30 if invoice else None
    notes = rng.sample(captions(locale, "bc_note_lines"), k=rng.choice([0, 1, 1, 2]))
    number = _fill(rng, rng.choice(_NUMBER_PATTERNS["broadcast_order"][spec.lang]), date)
    estimate = _fill(rng, rng.choice(["{n4}", "{n3}", "{n6}", "{L}{L}{L}{L}/{L}{L}{L}{L}/{n6}", "E{n5}"]), date)
    broadcast = Broadcast(
        invoice=invoice, agency=agency, product=rng.choice(["Issue", "Candidate", "Political", "POL",
                                                            advertiser.name.split(" ")[0].upper(), "Retail",
                                                            "Auto Dealer", "Healthcare"]),
        flight_start=flight_start, flight_end=flight_end, salesperson=fake.name(),
        market=fake.city(), alt_order=_fill(rng, rng.choice(["WOC{n8}", "{n8}", "{n6}"]), date)
        if rng.random() < 0.5 else None, commission_pct=pct, lines=lines)
    record = Record(
        kind="broadcast_order", flavor="services", locale=locale, currency="USD", number=number,
        po_number=estimate, invoice_reference=None, date=date,
        due_date=date + dt.timedelta(days=30) if invoice and rng.random() < 0.5 else None, time=None,
        terms_days=terms_days, payment_terms=fmt.label("terms_days", d=30) if invoice else None,
        supplier=station, buyer=advertiser, ship_to=None, items=items, subtotal=gross, discount=Decimal(0),
        discount_pct=None, shipping=Decimal(0), tax_lines=[], tax_amount=Decimal(0), total=gross,
        amount_paid=Decimal(0), amount_due=gross - commission, tax_name=rng.choice(spec.tax_names), notes=notes,
        commission=commission, broadcast=broadcast,
    )
    return record, fmt


@lru_cache(maxsize=16)
def get_faker(locale: str):
    from faker import Faker

    spec = LOCALES.get(locale)
    return Faker(spec.faker if spec and spec.faker else locale)
