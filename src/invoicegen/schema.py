"""The one source of truth for what InvoiceGen labels and returns.

Everything that names an entity, a BIO tag, a table/cell role or a result field imports it from
here: the factory writes these labels, the model predicts them, the decoder reads them back.

Coordinate convention (everywhere in the project): boxes are ``(x0, y0, x1, y1)`` in **PDF points**
(1/72 inch), origin at the **top-left** of the page, y growing downwards. Image inputs are converted
with their DPI (``points = pixels * 72 / dpi``); the page image for a page rendered at ``dpi`` maps
back with ``pixels = points * dpi / 72``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# --------------------------------------------------------------------------------------------
# Entities (BIO-tagged per word). The list may grow; it never forks into competing files.
# --------------------------------------------------------------------------------------------

DOCUMENT_ENTITIES: tuple[str, ...] = (
    "DOC_TYPE",
    "INVOICE_NUMBER",
    "PO_NUMBER",
    "INVOICE_DATE",
    "DUE_DATE",
    "PAYMENT_TERMS",
    "CURRENCY",
)
SUPPLIER_ENTITIES: tuple[str, ...] = (
    "SUPPLIER_NAME",
    "SUPPLIER_ADDRESS",
    "SUPPLIER_TAX_ID",
    "SUPPLIER_EMAIL",
    "SUPPLIER_PHONE",
    "SUPPLIER_IBAN",
)
BUYER_ENTITIES: tuple[str, ...] = ("BUYER_NAME", "BUYER_ADDRESS", "BUYER_TAX_ID", "SHIP_TO_ADDRESS")
TOTAL_ENTITIES: tuple[str, ...] = (
    "SUBTOTAL",
    "DISCOUNT",
    "SHIPPING",
    "TAX_RATE",
    "TAX_AMOUNT",
    "TOTAL_AMOUNT",
    "AMOUNT_DUE",
)
LINE_ITEM_ENTITIES: tuple[str, ...] = (
    "ITEM_DESCRIPTION",
    "ITEM_SKU",
    "ITEM_QUANTITY",
    "ITEM_UNIT",
    "ITEM_UNIT_PRICE",
    "ITEM_TAX_RATE",
    "ITEM_AMOUNT",
)

ENTITIES: tuple[str, ...] = (
    DOCUMENT_ENTITIES + SUPPLIER_ENTITIES + BUYER_ENTITIES + TOTAL_ENTITIES + LINE_ITEM_ENTITIES
)
"""Every entity type, in a fixed order (label ids depend on it)."""

HEADER_ENTITIES: tuple[str, ...] = tuple(e for e in ENTITIES if e not in LINE_ITEM_ENTITIES)
"""Entities that become top-level ``fields`` of a result (key = lower-case name)."""

LINE_ITEM_COLUMNS: dict[str, str] = {e: e.removeprefix("ITEM_").lower() for e in LINE_ITEM_ENTITIES}
"""ITEM_* entity -> line-item key / table column name (``ITEM_UNIT_PRICE`` -> ``unit_price``)."""
COLUMN_ENTITIES: dict[str, str] = {column: entity for entity, column in LINE_ITEM_COLUMNS.items()}
"""Line-item key -> its ITEM_* entity (``unit_price`` -> ``ITEM_UNIT_PRICE``)."""

AMOUNT_ENTITIES: frozenset[str] = frozenset(
    {"SUBTOTAL", "DISCOUNT", "SHIPPING", "TAX_AMOUNT", "TOTAL_AMOUNT", "AMOUNT_DUE", "ITEM_UNIT_PRICE",
     "ITEM_AMOUNT"}
)
DATE_ENTITIES: frozenset[str] = frozenset({"INVOICE_DATE", "DUE_DATE"})
PERCENT_ENTITIES: frozenset[str] = frozenset({"TAX_RATE", "ITEM_TAX_RATE"})


def field_key(entity: str) -> str:
    """Result key of an entity: its lower-case name (``INVOICE_NUMBER`` -> ``invoice_number``)."""
    return entity.lower()


# --------------------------------------------------------------------------------------------
# Label sets for the three per-word heads.
# --------------------------------------------------------------------------------------------

OUTSIDE = "O"

NER_LABELS: tuple[str, ...] = (OUTSIDE,) + tuple(f"{p}-{e}" for e in ENTITIES for p in ("B", "I"))
"""IOB2 tags: ``O`` then ``B-X``, ``I-X`` for every entity X."""

TABLE_LABELS: tuple[str, ...] = ("O", "HEADER", "ROW_B", "ROW_I")
"""Table role of a word: outside any table, table header, first word of a row, inside a row."""

CELL_LABELS: tuple[str, ...] = ("O", "CELL_B", "CELL_I")
"""Cell role of a word: not in a cell, first word of a cell, inside a cell."""

TableRole = Literal["O", "HEADER", "ROW_B", "ROW_I"]
CellRole = Literal["O", "CELL_B", "CELL_I"]

NER_LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(NER_LABELS)}
TABLE_LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(TABLE_LABELS)}
CELL_LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(CELL_LABELS)}

HEADS: dict[str, tuple[str, ...]] = {"ner": NER_LABELS, "table": TABLE_LABELS, "cell": CELL_LABELS}
"""The model's heads and their label sets, by head name."""

IGNORE_INDEX = -100
"""Label id for sub-tokens and padding that carry no loss (PyTorch's cross-entropy default)."""


def bio_entity(tag: str) -> str | None:
    """Entity type of an IOB2 tag (``B-TOTAL_AMOUNT`` -> ``TOTAL_AMOUNT``; ``O`` -> None)."""
    return None if tag == OUTSIDE else tag[2:]


def bio_tags(entity: str | None, n_words: int) -> list[str]:
    """IOB2 tags for ``n_words`` consecutive words of one entity (all ``O`` when entity is None)."""
    if entity is None:
        return [OUTSIDE] * n_words
    return [f"B-{entity}"] + [f"I-{entity}"] * (n_words - 1)


# --------------------------------------------------------------------------------------------
# Documents as read from a file.
# --------------------------------------------------------------------------------------------

BBox = tuple[float, float, float, float]

PageSource = str
"""Where a page's words came from: ``pdf-text`` or ``ocr:<engine>`` (``ocr:rapidocr``)."""


class Word(BaseModel):
    """One word and its box in PDF points (top-left origin)."""

    model_config = ConfigDict(frozen=True)

    text: str
    bbox: BBox
    confidence: float = 1.0


class Page(BaseModel):
    """One page: its size in points, its words in reading order and where they came from."""

    index: int
    width: float
    height: float
    words: list[Word] = Field(default_factory=list)
    source: PageSource = "pdf-text"


class Document(BaseModel):
    """A loaded input file (see ``invoicegen.document.load_document``)."""

    filename: str
    sha256: str
    media_type: str
    pages: list[Page] = Field(default_factory=list)

    @property
    def source(self) -> str:
        """One source label for the document (``pdf-text``, ``ocr:rapidocr`` or ``mixed``)."""
        kinds = {p.source for p in self.pages}
        return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "empty")


# --------------------------------------------------------------------------------------------
# The result contract (what extract, the API and the batch runner all return).
# --------------------------------------------------------------------------------------------


class DocumentInfo(BaseModel):
    filename: str
    sha256: str
    pages: int
    source: str


NO_BOX: BBox = (0.0, 0.0, 0.0, 0.0)
"""The box of a value that has no place on the page: a value read from an embedded e-invoice XML
whose printed text was not found in the text layer (``LineItem``'s default box, too)."""


class FieldValue(BaseModel):
    """One extracted field: normalised value, printed text, confidence and where it is
    (``bbox == NO_BOX`` when it was not found on the page)."""

    value: str | None
    text: str
    confidence: float
    page: int
    bbox: BBox


class LineItem(BaseModel):
    description: str | None = None
    sku: str | None = None
    quantity: str | None = None
    unit: str | None = None
    unit_price: str | None = None
    tax_rate: str | None = None
    amount: str | None = None
    confidence: float = 0.0
    page: int = 0
    bbox: BBox = NO_BOX


class Table(BaseModel):
    page: int
    bbox: BBox
    header: list[str] = Field(default_factory=list)
    rows: list[list[str]] = Field(default_factory=list)


class ValidationCheck(BaseModel):
    check: str
    passed: bool
    detail: str = ""


class ModelInfo(BaseModel):
    name: str
    version: str
    backend: Literal["torch", "onnx"] = "torch"
    quantized: bool = False


ResultSource = Literal["model", "embedded_xml"]
"""Where a result's values come from (``ExtractionResult.source``)."""


class ExtractionResult(BaseModel):
    """What InvoiceGen returns for one document (see ARCHITECTURE.md, "Result contract").

    ``source`` says where the values come from, because the two differ in kind:

    - ``"model"``: read from the page (text layer or OCR) by the model; confidences are the model's.
    - ``"embedded_xml"``: taken from the machine-readable invoice a born-digital e-invoice carries
      as a PDF attachment (ZUGFeRD / Factur-X / XRechnung: UN/CEFACT CII, or UBL). Those values are
      exact, so confidence is 1.0; ``text``, ``page`` and ``bbox`` are where the value's printed
      text was found on the page (``NO_BOX`` when it was not). ``tables`` stays empty, and
      ``model`` names the loaded model although it did not run.

    (``document.source`` is a different thing: where the page words came from.)
    """

    document: DocumentInfo
    source: ResultSource = "model"
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    line_items: list[LineItem] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    validation: list[ValidationCheck] = Field(default_factory=list)
    model: ModelInfo
    timings_ms: dict[str, float] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Labelled training data (what the factory writes, one JSON line per document, and what
# training and evaluation read).
# --------------------------------------------------------------------------------------------


class LabelledPage(BaseModel):
    """A page with one label per word for each head; all lists have one entry per word."""

    index: int
    width: float
    height: float
    image: str | None = None
    """Page PNG, relative to the dataset directory."""
    dpi: int | None = None
    words: list[str]
    bboxes: list[BBox]
    """Word boxes in PDF points, top-left origin (pixels = points * dpi / 72)."""
    ner: list[str]
    table: list[str]
    cell: list[str]
    row: list[int]
    """Line-item row index of the word within the document (-1 outside table rows)."""
    column: list[str | None]
    """Table column name of the word (a ``LINE_ITEM_COLUMNS`` value or another column name)."""


class LabelledDocument(BaseModel):
    """One generated (or weakly annotated) document with its exact labels and ground truth."""

    id: str
    kind: str
    locale: str
    layout: str
    pdf: str | None = None
    """The PDF, relative to the dataset directory."""
    augmented: bool = False
    pages: list[LabelledPage]
    record: dict = Field(default_factory=dict)
    """The ground-truth record the document was rendered from (normalised values)."""
