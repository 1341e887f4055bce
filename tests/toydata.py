"""Small hand-built labelled documents for model tests (no rendering needed)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from invoicegen.schema import LabelledDocument, LabelledPage, bio_tags

WORDS = ["Widget", "Bolt", "Service", "Cable", "Hours", "Design", "Paper", "Lamp", "Screen", "Chair"]


def toy_document(i: int, n_rows: int = 3) -> LabelledDocument:
    """One page: title, number, date, supplier, a table of ``n_rows`` rows and a total."""
    rng = random.Random(i)
    words: list[str] = []
    boxes: list[tuple[float, float, float, float]] = []
    ner: list[str] = []
    table: list[str] = []
    cell: list[str] = []
    row: list[int] = []
    column: list[str | None] = []

    def put(texts, x, y, entity=None, trole="O", in_cell=False, r=-1, col=None):
        tags = bio_tags(entity, len(texts))
        for k, t in enumerate(texts):
            w = 6.0 * len(t)
            words.append(t)
            boxes.append((x, y, x + w, y + 10))
            ner.append(tags[k])
            table.append(trole if trole == "O" or trole == "HEADER" else ("ROW_B" if trole == "ROW" and
                         col == "description" and k == 0 else "ROW_I"))
            cell.append(("CELL_B" if k == 0 else "CELL_I") if in_cell else "O")
            row.append(r)
            column.append(col)
            x += w + 4

    put(["INVOICE"], 40, 40, "DOC_TYPE")
    put(["Invoice", "No:"], 300, 40)
    put([f"INV-{rng.randint(100, 999)}"], 400, 40, "INVOICE_NUMBER")
    put(["Date:"], 300, 60)
    put([f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"], 400, 60, "INVOICE_DATE")
    put([rng.choice(["Acme", "Globex", "Initech"]), rng.choice(["GmbH", "Ltd", "Inc"])], 40, 80, "SUPPLIER_NAME")
    put(["Description"], 40, 150, None, "HEADER", True, -1, "description")
    put(["Qty"], 300, 150, None, "HEADER", True, -1, "quantity")
    put(["Amount"], 400, 150, None, "HEADER", True, -1, "amount")
    total = 0
    for r in range(n_rows):
        y = 170 + 20 * r
        amount = rng.randint(1, 99)
        total += amount
        put(rng.sample(WORDS, 2), 40, y, "ITEM_DESCRIPTION", "ROW", True, r, "description")
        put([str(rng.randint(1, 9))], 300, y, "ITEM_QUANTITY", "ROW", True, r, "quantity")
        put([f"{amount}.00"], 400, y, "ITEM_AMOUNT", "ROW", True, r, "amount")
    put(["Total:"], 300, 190 + 20 * n_rows)
    put([f"{total}.00"], 400, 190 + 20 * n_rows, "TOTAL_AMOUNT")
    page = LabelledPage(index=0, width=595, height=842, words=words, bboxes=boxes, ner=ner, table=table,
                        cell=cell, row=row, column=column)
    return LabelledDocument(id=f"toy-{i:04d}", kind="invoice", locale="en_US", layout=f"toy{i % 4}",
                            pages=[page], record={"total_amount": f"{total}.00"})


def write_toy_dataset(out: Path, n: int = 12, n_rows: int = 3) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    docs = [toy_document(i, n_rows) for i in range(n)]
    with open(out / "documents.jsonl", "w") as fh:
        for d in docs:
            fh.write(d.model_dump_json() + "\n")
    ids = [d.id for d in docs]
    (out / "manifest.json").write_text(json.dumps({"splits": {"train": ids, "val": ids[:2], "test": ids[:2]}}))
    return out
