"""``Extractor``: from a file (or bytes) to a validated ``ExtractionResult``.

load (text layer or OCR) -> encode -> model -> decode -> normalise -> validate, one direction.
Several documents can be extracted together (``extract_many``: shared model calls for an fp32 model, one
call per document for an INT8 one), which is what the batch runner and the API's micro-batching use.

A PDF that carries its invoice as embedded XML (ZUGFeRD / Factur-X / XRechnung) is read from that
XML instead of by the model (``ExtractOptions.embedded``, on by default; see ``extract.einvoice``):
the XML is exact. Its values are located on the page and validated like the model's; an XML that
cannot be used is logged and the document goes through the model."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoicegen.document import Limits, LoadedDocument, load_document
from invoicegen.extract.captions import (
    caption_values,
    fill_from_captions,
    legal_name,
    sums_from_captions,
    wanted_fields,
)
from invoicegen.extract.decode import (
    Candidate,
    PagePrediction,
    RawTable,
    align_to_header,
    best_candidates,
    entity_candidates,
    join_tables,
    page_tables,
)
from invoicegen.extract.einvoice import extract_embedded
from invoicegen.extract.normalize import DocumentContext, normalize_field
from invoicegen.extract.validate import (
    CASH_ROUNDING,
    dominant_tax_rate,
    fill_missing_totals,
    repair,
    repair_item_quantity,
    round_cash_total,
    run_checks,
    sum_tax_lines,
)
from invoicegen.model.data import ModelPage, prepare_page
from invoicegen.model.predict import predict_pages, softmax
from invoicegen.model.runtime import Runtime, load_runtime
from invoicegen.schema import (
    COLUMN_ENTITIES,
    DocumentInfo,
    ExtractionResult,
    FieldValue,
    LineItem,
    ModelInfo,
    ResultSource,
    Table,
    ValidationCheck,
    field_key,
)

DEFAULT_MODEL_NAME = "invoicegen-small"


def default_model_path() -> Path:
    """MODEL_PATH if set, else the model shipped in the repository's ``models/`` directory."""
    env = os.environ.get("MODEL_PATH")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models" / DEFAULT_MODEL_NAME




@dataclass(frozen=True)
class ExtractOptions:
    ocr: str = "auto"
    dpi: int = 150
    password: str | None = None
    constrained: bool = False
    limits: Limits = Limits()
    embedded: bool = True
    """Read a PDF's embedded e-invoice XML when it has a usable one, instead of running the model."""


class Extractor:
    """Loads a model once; extracts any number of documents with it (thread-safe for reading)."""

    def __init__(self, runtime: Runtime, batch_size: int = 8) -> None:
        self.runtime = runtime
        self.batch_size = batch_size

    @classmethod
    def load(cls, model_path: str | Path | None = None, device: str = "cpu") -> Extractor:
        path = Path(model_path) if model_path else default_model_path()
        if not path.exists():
            raise FileNotFoundError(f"model directory {path} does not exist (set MODEL_PATH or pass model_path)")
        return cls(load_runtime(path, device=device))

    @property
    def model_info(self) -> ModelInfo:
        rt = self.runtime
        return ModelInfo(name=rt.name, version=rt.version, backend=rt.backend,  # type: ignore[arg-type]
                         quantized=rt.quantized)

    # -- public API ---------------------------------------------------------------------------

    def extract(self, source: str | Path | bytes, *, filename: str | None = None,
                options: ExtractOptions | None = None) -> ExtractionResult:
        """Extract one document from a path or bytes."""
        opts = options or ExtractOptions()
        t0 = time.perf_counter()
        with load_document(source, filename=filename, ocr=opts.ocr, dpi=opts.dpi, password=opts.password,
                           limits=opts.limits) as doc:
            load_ms = (time.perf_counter() - t0) * 1000
            return self.extract_many([doc], options=opts, load_ms=[load_ms])[0]

    def extract_many(self, docs: Sequence[LoadedDocument], *, options: ExtractOptions | None = None,
                     load_ms: Sequence[float] | None = None) -> list[ExtractionResult]:
        """Extract already-loaded documents, their windows batched together (documents read from their
        embedded e-invoice XML skip the model)."""
        opts = options or ExtractOptions()
        results: list[ExtractionResult | None] = []
        for i, doc in enumerate(docs):
            t1 = time.perf_counter()
            result = self._embedded(doc) if opts.embedded else None
            if result is not None:
                result.timings_ms = _timings(doc, load_ms[i] if load_ms else None, 0.0, t1)
            results.append(result)
        todo = [i for i, r in enumerate(results) if r is None]
        t0 = time.perf_counter()
        pages_per_doc = [self._encode(docs[i]) for i in todo]
        flat = [p for pages in pages_per_doc for p in pages]
        # windows of all the documents in shared model calls (a quantised runtime runs each window on its
        # own inside: model.runtime.run_each), so a document's result does not depend on its neighbours
        logits = predict_pages(flat, self.runtime.run, batch_size=self.batch_size) if flat else []
        model_ms = (time.perf_counter() - t0) * 1000
        k = 0
        for i, pages in zip(todo, pages_per_doc, strict=True):
            doc = docs[i]
            t1 = time.perf_counter()
            preds = []
            for p in pages:
                lg = logits[k]
                k += 1
                preds.append(PagePrediction(p.page, p.words, p.boxes, softmax(lg["ner"] / self.runtime.temperature),
                                            softmax(lg["table"]),
                                            softmax(lg["cell"])))
            result = self._decode(doc, preds, opts)
            result.timings_ms = _timings(doc, load_ms[i] if load_ms else None,
                                         model_ms * len(pages) / max(1, len(flat)), t1)
            results[i] = result
        return [r for r in results if r is not None]

    # -- steps ----------------------------------------------------------------------------------

    def _embedded(self, doc: LoadedDocument) -> ExtractionResult | None:
        """The result read from the document's embedded e-invoice XML, or None (no usable XML)."""
        found = extract_embedded(doc)
        if found is None:
            return None
        _, fields, items = found
        return self._result(doc, fields, items, [], run_checks(fields, items), "embedded_xml")

    def _result(self, doc: LoadedDocument, fields: dict[str, FieldValue], items: list[LineItem],
                tables: list[Table], checks: list[ValidationCheck], source: ResultSource) -> ExtractionResult:
        d = doc.document
        return ExtractionResult(
            document=DocumentInfo(filename=d.filename, sha256=d.sha256, pages=len(d.pages), source=d.source),
            source=source, fields=fields, line_items=items, tables=tables, validation=checks,
            model=self.model_info)

    def _encode(self, doc: LoadedDocument) -> list[ModelPage]:
        rt = self.runtime
        pages = []
        for page in doc.pages:
            words = [w.text for w in page.words]
            boxes = [w.bbox for w in page.words]
            image = doc.page_image(page.index) if rt.recipe.visual_embed else None
            mp = prepare_page(words, boxes, page.width, page.height, rt.tokenizer, rt.recipe, image=image,
                              order=range(len(words)))  # the loader gives a page's words in reading order
            mp.page = page.index
            pages.append(mp)
        return pages

    def _decode(self, doc: LoadedDocument, preds: list[PagePrediction], opts: ExtractOptions) -> ExtractionResult:
        ctx = DocumentContext.from_words([w for p in preds for w in p.words])
        cands: list[Candidate] = [c for p in preds for c in entity_candidates(p, opts.constrained)]
        per_entity = best_candidates(cands)

        def field_value(c: Candidate) -> FieldValue:
            return FieldValue(value=normalize_field(c.entity, c.text, ctx), text=c.text,
                              confidence=round(c.confidence, 4), page=c.page, bbox=_round_box(c.bbox))

        fields: dict[str, FieldValue] = {}
        alternatives: dict[str, list[FieldValue]] = {}
        for e, lst in per_entity.items():
            # a candidate that reads as a value of its type beats a more confident one that does not
            values = sorted((field_value(c) for c in lst), key=lambda f: (f.value is None, -f.confidence))
            fields[field_key(e)], alternatives[field_key(e)] = values[0], values[1:]
        if "currency" not in fields and ctx.currency and "total_amount" in fields:
            total = fields["total_amount"]
            fields["currency"] = FieldValue(value=ctx.currency, text=total.text, confidence=total.confidence,
                                            page=total.page, bbox=total.bbox)
        raw_tables = join_tables([t for p in preds for t in page_tables(p)])
        items: list[LineItem] = []
        item_notes: list[ValidationCheck] = []
        for row in (r for t in raw_tables for r in t.rows):
            item, note = repair_item_quantity(len(items), self._line_item(row, ctx), [c[0] for c in row.cells],
                                              lambda text: normalize_field("ITEM_QUANTITY", text, ctx))
            if not _has_numbers(item):
                continue  # a note or heading line the table took in: it stays a row of `tables`
            items.append(item)
            item_notes += [note] if note else []
        tables = [_table(t) for t in raw_tables]
        found = caption_values(preds, ctx, wanted_fields(fields))
        fields, captioned = fill_from_captions(fields, found)
        fields, named = legal_name(fields, preds, ctx)
        fields, alternatives, rates = dominant_tax_rate(fields, alternatives)  # before the tax lines are summed
        fields, sums = sum_tax_lines(fields, alternatives)
        fields, captioned_sums = sums_from_captions(fields, found)
        repairs = [ValidationCheck(check="repair", passed=True, detail=d) for d in captioned + named + captioned_sums]
        repairs += rates + sums
        fields, swaps = repair(fields, alternatives, items)
        repairs += swaps
        printed: list[FieldValue] | None = None  # read only when a repair needs it (every word is parsed)
        if any(fields.get(k) is None or fields[k].value is None for k in ("subtotal", "total_amount", "tax_amount")):
            printed = _printed_amounts(preds, ctx)
            fields, fills = fill_missing_totals(fields, items, printed)
            repairs += fills
        if ctx.currency in CASH_ROUNDING:
            if printed is None:
                printed = _printed_amounts(preds, ctx)
            fields, rounding = round_cash_total(fields, ctx.currency, printed)
            repairs += rounding
        return self._result(doc, fields, items, tables, item_notes + repairs + run_checks(fields, items), "model")

    @staticmethod
    def _line_item(row: Any, ctx: DocumentContext) -> LineItem:
        values: dict[str, Any] = {}
        for column, text in row.columns.items():
            values[column] = normalize_field(COLUMN_ENTITIES[column], text, ctx)
        return LineItem(**values, confidence=round(row.confidence, 4), page=row.page, bbox=_round_box(row.bbox))


def _has_numbers(item: LineItem) -> bool:
    """An item has an amount, a quantity or a unit price. Rows without any are notes, headings or
    continuation lines ("Ort: Frankfurt a. M. km:"): as items they only cost precision (real dev
    e-invoices: items F1 0.378 -> 0.431; factory val 0.979 -> 0.981)."""
    return item.amount is not None or item.quantity is not None or item.unit_price is not None


def _printed_amounts(preds: Sequence[PagePrediction], ctx: DocumentContext) -> list[FieldValue]:
    """Every word of the pages that reads as an amount, in reading order (for ``fill_missing_totals``
    and ``round_cash_total``)."""
    out = []
    for p in preds:
        for word, box in zip(p.words, p.boxes, strict=True):
            value = normalize_field("TOTAL_AMOUNT", word, ctx) if any(ch.isdigit() for ch in word) else None
            if value is not None:
                out.append(FieldValue(value=value, text=word, confidence=1.0, page=p.page, bbox=_round_box(box)))
    return out


def _timings(doc: LoadedDocument, load_ms: float | None, model_ms: float, t_post: float) -> dict[str, float]:
    """The document's load timings plus model time and the post-processing started at ``t_post``."""
    timings = dict(doc.timings_ms)
    timings.update(load=round(load_ms if load_ms is not None else timings.get("load", 0.0), 2),
                   model=round(model_ms, 2), postprocess=round((time.perf_counter() - t_post) * 1000, 2))
    timings["total"] = round(timings["load"] + timings["model"] + timings["postprocess"], 2)
    return timings


def _round_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    return (round(box[0], 2), round(box[1], 2), round(box[2], 2), round(box[3], 2))


def _table(t: RawTable) -> Table:
    return Table(page=t.page, bbox=_round_box(t.bbox), header=[h[0] for h in t.header],
                 rows=[align_to_header(r, t.header) for r in t.rows])
