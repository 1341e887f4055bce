"""Running a model over a factory dataset split, keeping what the report needs per document.

Word tags come from the model on the gold pages' words (``prepare_labelled`` + ``predict_pages``);
fields and line items come from the production decoder (``Extractor``'s decoding, normalisation and
validation) applied to the same probabilities, so the field numbers are what ``extract`` would
return on these words. Hand-made tag predictions go through the same path (``one_hot``), which is
how the tests pin every metric to a number computed by hand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from invoicegen.document import LoadedDocument, _Backend
from invoicegen.evaluation.metrics import FieldOutcome, values_equal
from invoicegen.extract.decode import PagePrediction, entity_candidates, ner_tags, table_tags
from invoicegen.extract.normalize import DocumentContext, normalize_field
from invoicegen.extract.pipeline import ExtractOptions, Extractor
from invoicegen.model.data import gold_roles, iter_documents, load_split_ids, prepare_labelled
from invoicegen.model.predict import predict_pages, softmax
from invoicegen.model.runtime import Runtime
from invoicegen.reading import reading_order
from invoicegen.schema import (
    CELL_LABELS,
    HEADER_ENTITIES,
    HEADS,
    NER_LABELS,
    OUTSIDE,
    TABLE_LABELS,
    BBox,
    Document,
    ExtractionResult,
    LabelledDocument,
    LabelledPage,
    Page,
    field_key,
)

Instance = tuple[str, list[int]]
"""A gold entity instance: its type and its words (model positions, ascending)."""


@dataclass
class PageEval:
    """One page in model (reading) order: words, boxes, gold and predicted tags per head."""

    doc_id: str
    index: int
    width: float
    height: float
    words: list[str]
    boxes: list[BBox]
    gold: dict[str, list[str]]
    pred: dict[str, list[str]] = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)
    """True gold entity instances (a multi-line address is one instance even where reading order
    interleaves it with other words)."""
    image: str | None = None
    dpi: int | None = None

    def text(self, positions: Sequence[int]) -> str:
        return " ".join(self.words[i] for i in sorted(positions))


@dataclass
class DocEval:
    """One evaluated document: its pages, the decoded result and where each predicted field came from."""

    id: str
    kind: str
    locale: str
    layout: str
    augmented: bool
    record: dict[str, Any]
    pages: list[PageEval]
    result: ExtractionResult
    field_words: dict[str, tuple[int, list[int]]] = field(default_factory=dict)
    """Field key -> (position in ``pages``, model positions of its words); absent for fields the
    decoder derived rather than read (currency from the page's symbols)."""


def gold_instances(page: LabelledPage, order: Sequence[int]) -> list[Instance]:
    """Entity instances in the page's source order (runs of one type, a ``B-`` starting a new one),
    expressed in model positions."""
    position = {src: k for k, src in enumerate(order)}
    out: list[Instance] = []
    prev = OUTSIDE
    for i, tag in enumerate(page.ner):
        if tag != OUTSIDE:
            if tag.startswith("B-") or prev == OUTSIDE or prev[2:] != tag[2:]:
                out.append((tag[2:], []))
            out[-1][1].append(position[i])
        prev = tag
    return [(ent, sorted(words)) for ent, words in out]


def page_view(doc_id: str, page: LabelledPage, order: Sequence[int] | None = None) -> PageEval:
    """A labelled page in model order (``order`` as the model's encoder chose it; by default the
    same ``reading_order`` the encoder uses)."""
    order = list(order) if order is not None else reading_order(page.bboxes)
    return PageEval(doc_id=doc_id, index=page.index, width=page.width, height=page.height,
                    words=[page.words[i] for i in order], boxes=[tuple(page.bboxes[i]) for i in order],  # type: ignore[misc]
                    gold=gold_roles(page, order), instances=gold_instances(page, order), image=page.image,
                    dpi=page.dpi)


def one_hot(tags: dict[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """Probabilities that put all mass on the given tags (hand-made predictions)."""
    out = {}
    for head, labels in (("ner", NER_LABELS), ("table", TABLE_LABELS), ("cell", CELL_LABELS)):
        seq = tags[head]
        probs = np.zeros((len(seq), len(labels)), dtype=np.float32)
        for i, t in enumerate(seq):
            probs[i, labels.index(t)] = 1.0
        out[head] = probs
    return out


class _NoModel:
    """Stands in for a runtime when only decoding is needed (hand-made predictions)."""

    name = "hand-made"
    version = "0"
    backend = "torch"
    quantized = False
    temperature = 1.0
    tokenizer: Any = None
    recipe: Any = None

    def run(self, windows: Sequence[Any]) -> dict[str, np.ndarray]:  # pragma: no cover - never called
        raise RuntimeError("no model")


def decoder(runtime: Runtime | None = None) -> Extractor:
    """An Extractor to decode with (its model is only used for the result's ``model`` info)."""
    return Extractor(runtime if runtime is not None else _NoModel())


def _stand_in(doc: LabelledDocument) -> LoadedDocument:
    """A LoadedDocument shell carrying only what the decoder reads (name, page count, source)."""
    source = "ocr:synthetic" if doc.augmented else "pdf-text"
    pages = [Page(index=p.index, width=p.width, height=p.height, source=source) for p in doc.pages]
    document = Document(filename=doc.pdf or doc.id, sha256="", media_type="application/x-invoicegen-labelled",
                        pages=pages)
    return LoadedDocument(document, _Backend(), dpi=72)


def evaluate_document(doc: LabelledDocument, views: Sequence[PageEval], probs: Sequence[dict[str, np.ndarray]],
                      extractor: Extractor, constrained: bool = False) -> DocEval:
    """Predicted tags, decoded result and field provenance of one document from per-word
    probabilities (``ner``/``table``/``cell``, model order, one dict per page)."""
    preds = [PagePrediction(v.index, v.words, v.boxes, p["ner"], p["table"], p["cell"])
             for v, p in zip(views, probs, strict=True)]
    for v, pp in zip(views, preds, strict=True):
        v.pred = {"ner": ner_tags(pp, constrained), "table": [TABLE_LABELS[i] for i in pp.table.argmax(-1)],
                  "rows": table_tags(pp),
                  "cell": [CELL_LABELS[i] for i in pp.cell.argmax(-1)]}
    result = extractor._decode(_stand_in(doc), preds, ExtractOptions(constrained=constrained))
    by_index = {v.index: k for k, v in enumerate(views)}
    cands = [c for pp in preds for c in entity_candidates(pp, constrained)]
    field_words: dict[str, tuple[int, list[int]]] = {}
    for key, fv in result.fields.items():
        same = [c for c in cands if field_key(c.entity) == key and c.page == fv.page and c.text == fv.text]
        if same:
            best = min(same, key=lambda c: sum(abs(a - b) for a, b in zip(c.bbox, fv.bbox, strict=True)))
            field_words[key] = (by_index[best.page], sorted(best.words))
    return DocEval(id=doc.id, kind=doc.kind, locale=doc.locale, layout=doc.layout, augmented=doc.augmented,
                   record=dict(doc.record), pages=list(views), result=result, field_words=field_words)


def evaluate_tags(doc: LabelledDocument, pred_tags: Sequence[dict[str, Sequence[str]]],
                  extractor: Extractor | None = None) -> DocEval:
    """A DocEval from hand-made predicted tags (model order, one dict of heads per page)."""
    views = [page_view(doc.id, p) for p in doc.pages]
    return evaluate_document(doc, views, [one_hot(t) for t in pred_tags], extractor or decoder())


def run_dataset(runtime: Runtime, data_dir: str | Path, split: str = "test", *, max_docs: int | None = None,
                batch_size: int = 8, chunk_docs: int = 16, progress: bool = False) -> Iterator[DocEval]:
    """Evaluate every document of ``split`` with the model, a few documents at a time."""
    data_dir = Path(data_dir)
    splits = load_split_ids(data_dir)
    if split not in splits:
        raise ValueError(f"split {split!r} not in {data_dir}/manifest.json (has {', '.join(sorted(splits))})")
    wanted = splits[split]
    extractor = decoder(runtime)
    docs = (d for d in iter_documents(data_dir) if d.id in wanted)
    total = min(len(wanted), max_docs) if max_docs else len(wanted)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="evaluate", unit="doc")
    done = 0
    chunk: list[LabelledDocument] = []
    for doc in docs:
        if max_docs is not None and done + len(chunk) >= max_docs:
            break
        chunk.append(doc)
        if len(chunk) == chunk_docs:
            yield from _run_chunk(chunk, runtime, extractor, data_dir, batch_size)
            done += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
            chunk = []
    if chunk:
        yield from _run_chunk(chunk, runtime, extractor, data_dir, batch_size)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()


def _run_chunk(docs: Sequence[LabelledDocument], runtime: Runtime, extractor: Extractor, data_dir: Path,
               batch_size: int) -> Iterator[DocEval]:
    encoded = [prepare_labelled(d, runtime.tokenizer, runtime.recipe, data_dir) for d in docs]
    flat = [p for pages in encoded for p in pages]
    logits = predict_pages(flat, runtime.run, batch_size=batch_size) if flat else []
    k = 0
    for doc, pages in zip(docs, encoded, strict=True):
        views = [page_view(doc.id, lp, mp.order) for lp, mp in zip(doc.pages, pages, strict=True)]
        probs = [{h: softmax(logits[k + i][h]) for h in HEADS} for i in range(len(pages))]
        k += len(pages)
        yield evaluate_document(doc, views, probs, extractor)


# --------------------------------------------------------------------------------------------
# fields of one document
# --------------------------------------------------------------------------------------------


def gold_fields(doc: DocEval) -> dict[str, tuple[str | None, list[tuple[int, list[int]]]]]:
    """Header fields the document prints: key -> (gold value, its instances as (page, words)).

    The value is the record's (the truth the document was rendered from); the document type's
    record value is a kind code rather than printed text, so it (and any field the record lacks)
    is the printed gold text, normalised with the document's locale."""
    instances: dict[str, list[tuple[int, list[int]]]] = {}
    for k, page in enumerate(doc.pages):
        for ent, words in page.instances:
            if ent in HEADER_ENTITIES:
                instances.setdefault(ent, []).append((k, words))
    ctx: DocumentContext | None = None
    out: dict[str, tuple[str | None, list[tuple[int, list[int]]]]] = {}
    for ent, found in instances.items():
        key = field_key(ent)
        value = doc.record.get(key) if key != "doc_type" else None
        if value is None:
            if ctx is None:
                ctx = DocumentContext.from_words([w for pg in doc.pages for w in pg.words], locale_hint=doc.locale)
            k, words = found[0]
            value = normalize_field(ent, doc.pages[k].text(words), ctx)
        out[key] = (None if value is None else str(value), found)
    return out


def field_outcomes(doc: DocEval) -> list[FieldOutcome]:
    """Every gold field with its prediction, then predicted fields the document does not print
    (a value that still equals the record's, e.g. a currency inferred from symbols, is left out)."""
    gold = gold_fields(doc)
    out = []
    for key, (value, found) in gold.items():
        fv = doc.result.fields.get(key)
        ent = key.upper()
        page, words = found[0]
        out.append(FieldOutcome(doc=doc.id, key=key, entity=ent, gold=value, pred=fv.value if fv else None,
                                correct=fv is not None and values_equal(ent, fv.value, value),
                                predicted=fv is not None, pred_text=fv.text if fv else "",
                                gold_text=doc.pages[page].text(words)))
    for key, fv in doc.result.fields.items():
        if key in gold:
            continue
        record_value = doc.record.get(key)
        if record_value is not None and key != "doc_type" and values_equal(key.upper(), fv.value, str(record_value)):
            continue
        out.append(FieldOutcome(doc=doc.id, key=key, entity=key.upper(), gold=None, pred=fv.value, correct=False,
                                pred_text=fv.text))
    return out


def has_gold_rows(doc: DocEval) -> bool:
    return any(t in ("ROW_B", "ROW_I") for p in doc.pages for t in p.gold["table"])


def item_dicts(doc: DocEval) -> list[dict[str, Any]]:
    """The predicted line items as plain dicts (the keys the matcher reads)."""
    return [it.model_dump(exclude={"confidence", "page", "bbox"}) for it in doc.result.line_items]
