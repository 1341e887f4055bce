"""Reading the invoice XML that born-digital e-invoices carry (ZUGFeRD, Factur-X, XRechnung).

Why: such a PDF holds the invoice twice, printed on its pages and as a machine-readable XML
attachment (UN/CEFACT Cross Industry Invoice; UBL ``Invoice``/``CreditNote`` is read too). The XML
is exact, so a real invoice system reads it when it is there and reads the page only when it is
not. The values still get a place on the page: each is looked up in the words the pipeline already
loaded, by normalised value ("1.234,56" finds 1234.56, "05.06.2018" finds 2018-06-05, names match
without case, spaces or punctuation). A value that is not printed keeps ``NO_BOX``.

Safety: the XML comes with an untrusted upload. It is parsed with expat straight into local names,
refusing any DOCTYPE or entity declaration (no entity expansion, no external entities: no XML
bombs), anything above ``MAX_XML_BYTES`` and nesting deeper than ``MAX_DEPTH``. PDFium decodes the
attachment stream itself; its decoded size is checked before it is copied out.

What is read: number, dates, PO number, payment terms, currency, both parties (name, tax id,
address, and the seller's email, phone and IBAN), net (tax basis) total, tax, grand total, amount
due, the single tax rate when there is only one, and the line items. ``subtotal`` is the tax basis
total, i.e. after document-level allowances and charges; those are not reported as ``discount``
/ ``shipping`` because they are already inside it (so the lines may not add up to the subtotal
when the invoice has such allowances, and the validation check says so).
"""

from __future__ import annotations

import ctypes
import logging
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pyexpat import ExpatError, ParserCreate
from typing import Any, NamedTuple

from invoicegen.document import MEDIA_TYPES, LoadedDocument
from invoicegen.extract.normalize import (
    MONTHS,
    DocumentContext,
    normalize_field,
    parse_amount,
    parse_currency,
    parse_date,
)
from invoicegen.schema import (
    AMOUNT_ENTITIES,
    COLUMN_ENTITIES,
    DATE_ENTITIES,
    NO_BOX,
    PERCENT_ENTITIES,
    BBox,
    FieldValue,
    LineItem,
    Page,
    field_key,
)

log = logging.getLogger(__name__)

MAX_XML_BYTES = 5 * 1024 * 1024
"""Largest attachment read; real XRechnung files with base64 supporting documents reach ~1.3 MB."""
MAX_DEPTH = 64
"""Deepest element nesting accepted (real invoices nest ~10 deep)."""
INVOICE_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")
"""Attachment names the standards prescribe (lower case); tried before any other ``*.xml``."""

XML_CONTEXT = DocumentContext()
"""XML values are written one way: dot decimals, ISO or ``YYYYMMDD`` (format 102) dates."""



class EInvoiceError(ValueError):
    """An XML attachment that cannot be used: too big, refused, malformed or not an invoice."""


# ------------------------------------------------------------------------------------------------
# Attachments and safe parsing
# ------------------------------------------------------------------------------------------------


class Attachment(NamedTuple):
    name: str
    size: int
    data: bytes | None
    """None when ``size`` is above ``MAX_XML_BYTES`` (not copied out of the PDF)."""


def xml_attachments(doc: LoadedDocument) -> list[Attachment]:
    """The ``*.xml`` files attached to a PDF, the standard e-invoice names first."""
    if doc.document.media_type != MEDIA_TYPES["pdf"]:
        return []
    import pypdfium2.raw as pdfium_c
    from pypdfium2 import PdfiumError

    found: list[Attachment] = []
    with doc.pdf() as pdf:
        for i in range(pdf.count_attachments() if pdf is not None else 0):
            att = pdf.get_attachment(i)  # type: ignore[union-attr]
            size = ctypes.c_ulong()
            try:
                name = att.get_name()
                if not name.lower().endswith(".xml") or not pdfium_c.FPDFAttachment_GetFile(
                        att.raw, None, 0, ctypes.byref(size)):
                    continue
                data = bytes(att.get_data()) if 0 < size.value <= MAX_XML_BYTES else None
            except PdfiumError:  # a broken file specification: as if it were not there
                continue
            found.append(Attachment(name, size.value, data))
    return sorted(found, key=lambda a: a.name.lower() not in INVOICE_NAMES)


def _local(name: str) -> str:
    return name.rpartition(" ")[2]


def parse_xml(data: bytes) -> ET.Element:
    """Parse untrusted XML into elements named by local name (namespaces dropped).

    Raises EInvoiceError for DOCTYPE/entity declarations, deep nesting, size and malformed XML."""
    if len(data) > MAX_XML_BYTES:
        raise EInvoiceError(f"{len(data)} bytes, more than {MAX_XML_BYTES}")
    builder = ET.TreeBuilder()
    parser = ParserCreate(namespace_separator=" ")
    depth = 0

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise EInvoiceError(f"elements nested deeper than {MAX_DEPTH}")
        builder.start(_local(name), {_local(k): v for k, v in attrs.items()})

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(_local(name))

    def refuse(*_: Any) -> None:
        raise EInvoiceError("DOCTYPE/ENTITY declarations are refused (XML bomb guard)")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except ExpatError as e:
        raise EInvoiceError(f"malformed XML: {e}") from None
    return builder.close()


# ------------------------------------------------------------------------------------------------
# What to read where (paths over local names; the first path that gives a value wins)
# ------------------------------------------------------------------------------------------------


Paths = dict[str, tuple[str, ...]]
"""Result key -> candidate paths."""


def _under(parents: Sequence[str], leaf: str) -> tuple[str, ...]:
    return tuple(f".//{p}/{leaf}" for p in parents)


_CII_SUMS = ("SpecifiedTradeSettlementHeaderMonetarySummation", "SpecifiedTradeSettlementMonetarySummation")


def _cii_party(role: str) -> Paths:
    party = f".//{role}TradeParty"
    return {
        "name": (f"{party}/Name",),
        "address": (f"{party}/PostalTradeAddress",),
        "tax_id": (f"{party}/SpecifiedTaxRegistration/ID[@schemeID='VA']", f"{party}/SpecifiedTaxRegistration/ID"),
    }


def _ubl_party(role: str) -> Paths:
    party = f"Accounting{role}Party/Party"
    return {
        "name": (f"{party}/PartyLegalEntity/RegistrationName", f"{party}/PartyName/Name"),
        "address": (f"{party}/PostalAddress",),
        "tax_id": (f"{party}/PartyTaxScheme/CompanyID",),
    }


def _parties(party: Callable[[str], Paths], seller: str, buyer: str) -> Paths:
    out = {f"supplier_{k}": v for k, v in party(seller).items()}
    out.update({f"buyer_{k}": v for k, v in party(buyer).items()})
    return out


@dataclass(frozen=True)
class Syntax:
    """Where one XML syntax keeps each result field (field key -> candidate paths)."""

    name: str
    header: Mapping[str, tuple[str, ...]]
    item: Mapping[str, tuple[str, ...]]
    """Line-item column -> paths relative to a line; ``path#attr`` reads an attribute."""


CII = Syntax(
    name="cii",
    header={
        "invoice_number": ("ExchangedDocument/ID", "HeaderExchangedDocument/ID"),
        "invoice_date": ("ExchangedDocument/IssueDateTime/DateTimeString",
                         "HeaderExchangedDocument/IssueDateTime/DateTimeString", "HeaderExchangedDocument/IssueDateTime"),
        "due_date": (".//SpecifiedTradePaymentTerms/DueDateDateTime/DateTimeString",
                     ".//SpecifiedTradePaymentTerms/DueDateDateTime"),
        "payment_terms": (".//SpecifiedTradePaymentTerms/Description",),
        "po_number": (".//BuyerOrderReferencedDocument/IssuerAssignedID", ".//BuyerOrderReferencedDocument/ID"),
        "currency": (".//InvoiceCurrencyCode",),
        **_parties(_cii_party, "Seller", "Buyer"),
        "supplier_email": (".//SellerTradeParty/URIUniversalCommunication/URIID",
                           ".//SellerTradeParty/DefinedTradeContact/EmailURIUniversalCommunication/URIID"),
        "supplier_phone": (".//SellerTradeParty/DefinedTradeContact/TelephoneUniversalCommunication/CompleteNumber",),
        "supplier_iban": (".//PayeePartyCreditorFinancialAccount/IBANID",),
        "ship_to_address": (".//ShipToTradeParty/PostalTradeAddress",),
        "subtotal": _under(_CII_SUMS, "TaxBasisTotalAmount"),
        "tax_amount": _under(_CII_SUMS, "TaxTotalAmount"),
        "total_amount": _under(_CII_SUMS, "GrandTotalAmount"),
        "amount_due": _under(_CII_SUMS, "DuePayableAmount"),
        "tax_rate": (".//ApplicableHeaderTradeSettlement/ApplicableTradeTax/RateApplicablePercent",
                     ".//ApplicableSupplyChainTradeSettlement/ApplicableTradeTax/ApplicablePercent"),
    },
    item={
        "description": ("SpecifiedTradeProduct/Name",),
        "sku": ("SpecifiedTradeProduct/SellerAssignedID",),
        "quantity": (".//BilledQuantity",),
        "unit": (".//BilledQuantity#unitCode",),
        "unit_price": (".//NetPriceProductTradePrice/ChargeAmount",),
        "tax_rate": (".//ApplicableTradeTax/RateApplicablePercent", ".//ApplicableTradeTax/ApplicablePercent"),
        "amount": (".//SpecifiedTradeSettlementLineMonetarySummation/LineTotalAmount",
                   ".//SpecifiedTradeSettlementMonetarySummation/LineTotalAmount"),
    },
)

UBL = Syntax(
    name="ubl",
    header={
        "invoice_number": ("ID",),
        "invoice_date": ("IssueDate",),
        "due_date": ("DueDate", "PaymentMeans/PaymentDueDate"),
        "payment_terms": ("PaymentTerms/Note",),
        "po_number": ("OrderReference/ID",),
        "currency": ("DocumentCurrencyCode",),
        **_parties(_ubl_party, "Supplier", "Customer"),
        "supplier_email": ("AccountingSupplierParty/Party/Contact/ElectronicMail",),
        "supplier_phone": ("AccountingSupplierParty/Party/Contact/Telephone",),
        "supplier_iban": ("PaymentMeans/PayeeFinancialAccount/ID",),
        "ship_to_address": ("Delivery/DeliveryLocation/Address",),
        "subtotal": ("LegalMonetaryTotal/TaxExclusiveAmount",),
        "tax_amount": ("TaxTotal/TaxAmount",),
        "total_amount": ("LegalMonetaryTotal/TaxInclusiveAmount",),
        "amount_due": ("LegalMonetaryTotal/PayableAmount",),
        "tax_rate": ("TaxTotal/TaxSubtotal/TaxCategory/Percent",),
    },
    item={
        "description": ("Item/Name",),
        "sku": ("Item/SellersItemIdentification/ID",),
        "quantity": ("InvoicedQuantity", "CreditedQuantity"),
        "unit": ("InvoicedQuantity#unitCode", "CreditedQuantity#unitCode"),
        "unit_price": ("Price/PriceAmount",),
        "tax_rate": ("Item/ClassifiedTaxCategory/Percent",),
        "amount": ("LineExtensionAmount",),
    },
)

UNIT_CODES = {"H87": "pcs", "C62": "pcs", "EA": "pcs", "XPP": "pcs", "KGM": "kg", "GRM": "g", "LTR": "l",
              "MTR": "m", "MTK": "m2", "MTQ": "m3", "HUR": "h", "MIN": "min", "DAY": "day", "MON": "month",
              "ANN": "year", "KWH": "kWh", "SET": "set", "LS": "lump sum"}
"""UN/ECE Recommendation 20 unit codes seen on invoices -> the short unit a page prints; others kept."""

_STREET = ("LineOne", "LineTwo", "LineThree", "StreetName", "AdditionalStreetName")
_TOWN = (("PostcodeCode", "PostalZone"), ("CityName",))


def _address(el: ET.Element) -> str:
    """"street, postcode city" from a CII/UBL postal address (the country code is rarely printed)."""
    lines = [t for tag in _STREET if (t := (el.findtext(tag) or "").strip())]
    town = " ".join(t for tags in _TOWN for tag in tags if (t := (el.findtext(tag) or "").strip()))
    return ", ".join([*lines, town] if town else lines)


def _texts(el: ET.Element, path: str, currency: str | None = None) -> list[str]:
    """Non-empty values at ``path`` (an address element gives its composed address); amounts
    stated in another currency than ``currency`` (a tax total in the tax currency) are skipped."""
    path, _, attr = path.partition("#")
    out = []
    for hit in el.findall(path):
        if currency and hit.get("currencyID", currency) != currency:
            continue
        text = hit.get(attr, "") if attr else _address(hit) if len(hit) else hit.text or ""
        out.append(" ".join(text.split()))
    return [t for t in out if t]


# ------------------------------------------------------------------------------------------------
# Reading the invoice
# ------------------------------------------------------------------------------------------------

Value = tuple[str, str]
"""(text as written in the XML, normalised contract value)."""


@dataclass
class EInvoice:
    """The values of one e-invoice XML, before they are looked up on the page."""

    attachment: str
    syntax: str
    fields: dict[str, Value] = field(default_factory=dict)
    items: list[dict[str, Value]] = field(default_factory=list)


_LINE_TAGS = frozenset({"IncludedSupplyChainTradeLineItem", "InvoiceLine", "CreditNoteLine"})


def _syntax(root: ET.Element) -> Syntax:
    if root.find("ExchangedDocument") is not None or root.find("HeaderExchangedDocument") is not None:
        return CII  # D16B CrossIndustryInvoice, ZUGFeRD 1 CrossIndustryDocument and its draft "Invoice"
    if root.tag in ("Invoice", "CreditNote") and root.find("ID") is not None:
        return UBL
    raise EInvoiceError(f"root element {root.tag!r} is not a CII or UBL invoice")


def _read(el: ET.Element, paths: Sequence[str], entity: str, currency: str | None = None) -> Value | None:
    """The first value found along ``paths``; a tax rate only when the document has one rate."""
    for path in paths:
        values = []
        for hit in _texts(el, path, currency):
            value = UNIT_CODES.get(hit, hit) if entity == "ITEM_UNIT" else normalize_field(entity, hit, XML_CONTEXT)
            if value is not None:
                values.append((hit, value))
        if entity == "TAX_RATE" and len({v for _, v in values}) > 1:
            return None
        if values:
            return values[0]
    return None


def parse_invoice(data: bytes, name: str = "invoice.xml") -> EInvoice:
    """Read an e-invoice XML (CII or UBL); EInvoiceError when it is unsafe, malformed or no invoice."""
    root = parse_xml(data)
    syntax = _syntax(root)
    lines = [el for el in root.iter() if el.tag in _LINE_TAGS]
    for parent in list(root.iter()):  # header paths search everywhere else, never inside a line
        for child in [c for c in parent if c.tag in _LINE_TAGS]:
            parent.remove(child)
    inv = EInvoice(attachment=name, syntax=syntax.name)
    currency = _read(root, syntax.header["currency"], "CURRENCY")
    for key, paths in syntax.header.items():
        found = _read(root, paths, key.upper(), currency[1] if currency else None)
        if found is not None:
            inv.fields[key] = found
    for line in lines:
        item = {col: v for col, paths in syntax.item.items() if (v := _read(line, paths, COLUMN_ENTITIES[col]))}
        if item:
            inv.items.append(item)
    if "invoice_number" not in inv.fields and "total_amount" not in inv.fields:
        raise EInvoiceError("neither an invoice number nor a total")
    return inv


def read_embedded(doc: LoadedDocument) -> EInvoice | None:
    """The first XML attachment of ``doc`` that reads as an invoice; None when there is no XML
    attachment at all; EInvoiceError (the last attachment's reason) when none is usable."""
    error: EInvoiceError | None = None
    for att in xml_attachments(doc):
        try:
            if att.data is None:
                raise EInvoiceError(f"{att.size} bytes, more than {MAX_XML_BYTES}")
            return parse_invoice(att.data, att.name)
        except EInvoiceError as e:
            error = EInvoiceError(f"{att.name}: {e}")
    if error is not None:
        raise error
    return None


# ------------------------------------------------------------------------------------------------
# Finding the values on the page
# ------------------------------------------------------------------------------------------------


def _compact(text: str) -> str:
    """Letters and digits only, case-folded: "Kunden AG, Mitte" and "KUNDEN AG MITTE" compare equal."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def _ascii(text: str) -> str:
    """Lower-case ASCII without trailing dots ("März." -> "marz"), the form ``MONTHS`` is keyed by."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().strip(".,")


_NUMERIC = AMOUNT_ENTITIES | PERCENT_ENTITIES
_EXACT = frozenset({"INVOICE_NUMBER", "PO_NUMBER", "SUPPLIER_TAX_ID", "BUYER_TAX_ID", "SUPPLIER_IBAN",
                    "SUPPLIER_EMAIL", "SUPPLIER_PHONE"})
"""String fields whose whole text must be found (names, addresses and descriptions may wrap)."""
_GROUPED = re.compile(r"\d{1,3}")
_GROUP_REST = re.compile(r"\d{3}(?:[.,]\d+)?")


@dataclass(frozen=True)
class Hit:
    """Words ``start:end`` of a page: where a value is printed."""

    page: int
    start: int
    end: int
    text: str
    bbox: BBox


class PageFinder:
    """Finds the printed text of known values in a document's words (reading order)."""

    def __init__(self, pages: Sequence[Page]) -> None:
        self.pages = pages
        self.ctx = DocumentContext.from_words([w.text for p in pages for w in p.words])
        self.compact = [[_compact(w.text) for w in p.words] for p in pages]
        self._numbers: list[tuple[Decimal, Hit]] | None = None
        self._dates: dict[str, list[Hit]] | None = None

    def hit(self, page: int, start: int, end: int) -> Hit:
        words = self.pages[page].words[start:end]
        box = (min(w.bbox[0] for w in words), min(w.bbox[1] for w in words),
               max(w.bbox[2] for w in words), max(w.bbox[3] for w in words))
        return Hit(page, start, end, " ".join(w.text for w in words).strip(",;:"), box)  # not the sentence's

    def _page_texts(self) -> Iterator[tuple[int, list[str], list[bool]]]:
        for p, page in enumerate(self.pages):
            texts = [w.text for w in page.words]
            yield p, texts, [any(ch.isdigit() for ch in t) for t in texts]

    def numbers(self) -> list[tuple[Decimal, Hit]]:
        """Every number printed as one word, or as two when thousands are grouped with a space."""
        if self._numbers is None:
            self._numbers = []
            for p, texts, digit in self._page_texts():
                for i in (i for i, d in enumerate(digit) if d):
                    grouped = i + 1 < len(texts) and _GROUPED.fullmatch(texts[i]) and _GROUP_REST.fullmatch(texts[i + 1])
                    for n in (1, 2) if grouped else (1,):
                        d = parse_amount(" ".join(texts[i:i + n]), self.ctx.number_convention)
                        if d is not None:
                            self._numbers.append((d, self.hit(p, i, i + n)))
        return self._numbers

    def dates(self) -> dict[str, list[Hit]]:
        """ISO date -> the shortest spans (up to 3 words: "5. Juni 2018") that print it."""
        if self._dates is None:
            self._dates = {}
            for p, texts, digit in self._page_texts():
                for i, text in enumerate(texts):
                    if not digit[i] and _ascii(text) not in MONTHS:
                        continue
                    for n in range(1, min(3, len(texts) - i) + 1):
                        span = " ".join(texts[i:i + n])
                        d = self._date(span) if any(digit[i:i + n]) else None
                        if d is not None:
                            if n == 1 or self._date(span.partition(" ")[2]) != d:  # else the date starts later
                                self._dates.setdefault(d, []).append(self.hit(p, i, i + n))
                            break
        return self._dates

    def _date(self, text: str) -> str | None:
        d = parse_date(text, list(self.ctx.languages), self.ctx.date_order, fallback=False)
        return d.isoformat() if d else None

    def strings(self, value: str, exact: bool) -> list[Hit]:
        """Runs of words that spell ``value`` (compared compactly); unless ``exact``, the longest
        runs spelling at least half of it when it is not printed whole (a wrapped description)."""
        target = _compact(value)
        if not target:
            return []
        full: list[Hit] = []
        best, partial = 0, []
        for p, words in enumerate(self.compact):
            for i, first in enumerate(words):
                if not first or not target.startswith(first):
                    continue
                acc, j = "", i
                while j < len(words) and target.startswith(acc + words[j]):
                    acc += words[j]
                    j += 1
                    if acc == target:
                        break
                if acc == target:
                    full.append(self.hit(p, i, j))
                elif len(acc) > best:
                    best, partial = len(acc), [self.hit(p, i, j)]
                elif len(acc) == best:
                    partial.append(self.hit(p, i, j))
        if full or exact or best < max(4, len(target) / 2):
            return full
        return partial

    def find(self, entity: str, value: str) -> list[Hit]:
        """Every place ``value`` (a normalised value of ``entity``) is printed, in reading order."""
        if entity in _NUMERIC:
            target = abs(Decimal(value))
            return [h for d, h in self.numbers() if abs(d) == target]
        if entity in DATE_ENTITIES:
            return self.dates().get(value, [])
        if entity == "CURRENCY":
            return [self.hit(p, i, i + 1) for p, texts, digit in self._page_texts() for i, t in enumerate(texts)
                    if not digit[i] and (_ascii(t) == value.lower() or not t.isalpha()) and parse_currency(t) == value]
        return self.strings(value, exact=entity in _EXACT)


def _field(value: Value, hit: Hit | None) -> FieldValue:
    raw, normalised = value
    if hit is None:
        return FieldValue(value=normalised, text=raw, confidence=1.0, page=0, bbox=NO_BOX)
    return FieldValue(value=normalised, text=hit.text, confidence=1.0, page=hit.page, bbox=hit.bbox)


def _union(a: BBox, b: BBox) -> BBox:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def locate(inv: EInvoice, pages: Sequence[Page]) -> tuple[dict[str, FieldValue], list[LineItem]]:
    """The invoice's values as result fields and line items, each with where it is printed.

    A field takes the first place its value is printed (amounts the last: totals come after the
    lines), preferring places no other field took. A line item is found by its description, after
    the previous item's, and spans to its amount printed nearest on the same row."""
    finder = PageFinder(pages)
    used: set[tuple[int, int]] = set()

    def pick(hits: list[Hit], last: bool = False) -> Hit | None:
        free = [h for h in hits if (h.page, h.start) not in used] or hits
        hit = (free[-1] if last else free[0]) if free else None
        if hit is not None:
            used.add((hit.page, hit.start))
        return hit

    fields: dict[str, FieldValue] = {}
    for key, value in inv.fields.items():
        entity = key.upper()
        fields[field_key(entity)] = _field(value, pick(finder.find(entity, value[1]), last=entity in _NUMERIC))
    items: list[LineItem] = []
    cursor = (0, 0)
    for item in inv.items:
        values = {col: v[1] for col, v in item.items()}
        desc = pick([h for h in finder.find("ITEM_DESCRIPTION", values.get("description", ""))
                     if (h.page, h.start) >= cursor])
        if desc is None:
            items.append(LineItem.model_validate({**values, "confidence": 1.0}))
            continue
        cursor = (desc.page, desc.end)
        box = desc.bbox
        amount = values.get("amount")
        height = max(desc.bbox[3] - desc.bbox[1], 1.0)
        row = [h for h in (finder.find("ITEM_AMOUNT", amount) if amount else [])
               if h.page == desc.page and h.bbox[0] > desc.bbox[0] and -height < h.bbox[1] - desc.bbox[1] < 4 * height]
        if row:
            box = _union(box, min(row, key=lambda h: abs(h.bbox[1] - desc.bbox[1])).bbox)
        items.append(LineItem.model_validate({**values, "confidence": 1.0, "page": desc.page, "bbox": box}))
    return fields, items


def extract_embedded(doc: LoadedDocument) -> tuple[EInvoice, dict[str, FieldValue], list[LineItem]] | None:
    """The embedded invoice's fields and line items, located on the pages; None when ``doc`` has
    no usable e-invoice XML (the reason is logged: the caller falls back to reading the page)."""
    try:
        inv = read_embedded(doc)
    except EInvoiceError as e:
        log.warning("embedded e-invoice XML of %s not used: %s", doc.document.filename, e)
        return None
    if inv is None:
        return None
    fields, items = locate(inv, doc.pages)
    return inv, fields, items
