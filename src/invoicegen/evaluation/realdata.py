"""Extracting a folder of real documents listed in a gold JSONL, into prediction lines.

A prediction line is what ``realscore`` and ``../shared/realdata/score.py`` read
(``{"doc", "fields", "line_items"}``) plus what error analysis needs: the printed ``text`` of
every field and the pages' ``source`` (text layer or OCR). The benchmark and ``invoicegen evaluate
--real`` both write predictions through here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from invoicegen.errors import InvoiceGenError
from invoicegen.extract.pipeline import ExtractOptions, Extractor
from invoicegen.schema import ExtractionResult

GOLD_FILE = "gold_dev.jsonl"
ITEM_KEYS: tuple[str, ...] = ("description", "quantity", "unit_price", "amount")


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def prediction(doc: str, result: ExtractionResult) -> dict[str, Any]:
    """One prediction line: normalised values (printed text where a value could not be read)."""
    fields = {k: (f.value if f.value is not None else f.text) for k, f in result.fields.items()}
    items = [{k: getattr(it, k) for k in ITEM_KEYS} for it in result.line_items]
    return {"doc": doc, "fields": fields, "line_items": items,
            "text": {k: f.text for k, f in result.fields.items()}, "source": result.document.source}


@dataclass
class Predicted:
    """One gold document, its prediction line, the full result (None on error) and the time taken."""

    gold: dict[str, Any]
    line: dict[str, Any]
    result: ExtractionResult | None
    seconds: float


def predict_documents(extractor: Extractor, root: str | Path, gold: Iterable[dict[str, Any]],
                      options: ExtractOptions | None = None, progress: bool = False) -> Iterator[Predicted]:
    """Extract ``root / gold["doc"]`` for every gold line; a document that cannot be read gives an
    empty prediction with its ``error`` (it still counts against the scores)."""
    gold = list(gold)
    root = Path(root)
    options = options or ExtractOptions()
    iterable: Iterable[dict[str, Any]] = gold
    if progress:
        from tqdm import tqdm

        iterable = tqdm(gold, desc="extract", unit="doc")
    for g in iterable:
        t = time.perf_counter()
        result: ExtractionResult | None = None
        try:
            result = extractor.extract(root / g["doc"], options=options)
            line = prediction(g["doc"], result)
        except (InvoiceGenError, OSError) as exc:
            line = {"doc": g["doc"], "fields": {}, "line_items": [], "error": str(exc)}
        yield Predicted(g, line, result, time.perf_counter() - t)
