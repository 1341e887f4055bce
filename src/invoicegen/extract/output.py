"""Writing extraction results as JSON files, JSON lines or a CSV of key fields."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from invoicegen.schema import HEADER_ENTITIES, ExtractionResult, field_key

CSV_FIELDS = [field_key(e) for e in HEADER_ENTITIES]


def summary_row(name: str, result: ExtractionResult) -> dict[str, str]:
    """One CSV row: the file, each header field's value, the line-item count and failed checks."""
    row = {"file": name, "pages": str(result.document.pages)}
    for key in CSV_FIELDS:
        f = result.fields.get(key)
        row[key] = "" if f is None or f.value is None else f.value
    row["line_items"] = str(len(result.line_items))
    row["failed_checks"] = ";".join(c.check for c in result.validation if not c.passed)
    return row


def csv_text(rows: Sequence[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["file", "pages", *CSV_FIELDS, "line_items", "failed_checks"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_results(results: Sequence[tuple[Path, ExtractionResult]], out: str, fmt: str) -> None:
    """``out`` is a directory (one file per document for json; one file for jsonl/csv) or ``-``."""
    if fmt == "csv":
        text = csv_text([summary_row(str(p), r) for p, r in results])
        _emit(text, out, "results.csv")
    elif fmt == "jsonl":
        _emit("".join(r.model_dump_json() + "\n" for _, r in results), out, "results.jsonl")
    elif out == "-":
        for _, r in results:
            sys.stdout.write(r.model_dump_json(indent=2) + "\n")
    else:
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        for p, r in results:
            (directory / f"{Path(p).stem}.json").write_text(r.model_dump_json(indent=2) + "\n")


def _emit(text: str, out: str, default_name: str) -> None:
    if out == "-":
        sys.stdout.write(text)
        return
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / default_name).write_text(text)
