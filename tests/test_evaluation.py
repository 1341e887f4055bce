"""Evaluation metrics and error classes on two hand-made documents with hand-made predictions.

Every expected number below is worked out by hand in the comments (no model involved: the
predicted tags go through the production decoder as one-hot probabilities)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from invoicegen.evaluation.errors import entity_errors
from invoicegen.evaluation.factory import DocEval, evaluate_tags, field_outcomes, page_view
from invoicegen.evaluation.metrics import entity_scores, spans, values_equal, word_confusion
from invoicegen.evaluation.report import analyse_docs, summary_line, write_factory_report
from invoicegen.model.metrics import head_scores
from invoicegen.schema import LabelledDocument, LabelledPage

# (text, ner, table, cell, row, column) per word; one list per printed line
Word = tuple[str, str, str, str, int, str | None]


def _page(lines: list[list[Word]]) -> LabelledPage:
    words, boxes, ner, table, cell, row, column = [], [], [], [], [], [], []
    for k, line in enumerate(lines):
        x, y = 40.0, 40.0 + 20.0 * k
        for text, n, t, c, r, col in line:
            w = 6.0 * len(text)
            words.append(text)
            boxes.append((x, y, x + w, y + 10.0))
            ner.append(n)
            table.append(t)
            cell.append(c)
            row.append(r)
            column.append(col)
            x += w + 12.0
    return LabelledPage(index=0, width=595, height=842, words=words, bboxes=boxes, ner=ner, table=table, cell=cell,
                        row=row, column=column)


def _o(text: str, ner: str = "O") -> Word:
    return (text, ner, "O", "O", -1, None)


# Document A: an invoice with a two-row table.
DOC_A = LabelledDocument(
    id="A", kind="invoice", locale="en_US", layout="L1",
    pages=[_page([
        [_o("INVOICE", "B-DOC_TYPE"), _o("Id"), _o("INV-1", "B-INVOICE_NUMBER")],  # "Id": no caption
        [_o("Date"), _o("2024-01-15", "B-INVOICE_DATE")],
        [_o("Acme", "B-SUPPLIER_NAME"), _o("e.K.", "I-SUPPLIER_NAME")],
        [("Item", "O", "HEADER", "CELL_B", -1, "description"), ("Amount", "O", "HEADER", "CELL_B", -1, "amount")],
        [("Bolt", "B-ITEM_DESCRIPTION", "ROW_B", "CELL_B", 0, "description"),
         ("Widget", "I-ITEM_DESCRIPTION", "ROW_I", "CELL_I", 0, "description"),
         ("10.00", "B-ITEM_AMOUNT", "ROW_I", "CELL_B", 0, "amount")],
        [("Cable", "B-ITEM_DESCRIPTION", "ROW_B", "CELL_B", 1, "description"),
         ("5.00", "B-ITEM_AMOUNT", "ROW_I", "CELL_B", 1, "amount")],
        [_o("Total"), _o("15.00", "B-TOTAL_AMOUNT")],
    ])],
    record={"doc_type": "invoice", "invoice_number": "INV-1", "invoice_date": "2024-01-15",
            "supplier_name": "Acme e.K.", "total_amount": "15.00",
            "line_items": [{"description": "Bolt Widget", "quantity": None, "amount": "10.00"},
                           {"description": "Cable", "quantity": None, "amount": "5.00"}]},
)
# Predictions for A, word by word (16 words):
PRED_A = {
    "ner": ["B-DOC_TYPE", "O", "O",                          # INV-1 missed
            "O", "B-DUE_DATE",                               # invoice date read as due date (wrong type)
            "B-SUPPLIER_NAME", "O",                          # "Acme" without "e.K." (wrong boundary)
            "O", "O",
            "B-ITEM_DESCRIPTION", "I-ITEM_DESCRIPTION", "B-ITEM_AMOUNT",
            "B-ITEM_DESCRIPTION", "B-ITEM_QUANTITY",         # 5.00 as a quantity (wrong type)
            "B-SUBTOTAL", "B-TOTAL_AMOUNT"],                 # "Total" as a subtotal (spurious)
    "table": ["O"] * 7 + ["HEADER", "HEADER", "ROW_B", "ROW_I", "ROW_I", "ROW_B", "ROW_I", "O", "O"],
    "cell": ["O"] * 7 + ["CELL_B", "CELL_B", "CELL_B", "CELL_B", "CELL_B", "CELL_B", "CELL_B", "O", "O"],
}                                                            # "Widget" opens its own cell

# Document B: a German receipt after scan-look augmentation (OCR noise in the number).
DOC_B = LabelledDocument(
    id="B", kind="receipt", locale="de_DE", layout="L2", augmented=True,
    pages=[_page([
        [_o("Beleg", "B-DOC_TYPE")],
        [_o("Nr"), _o("R-7l", "B-INVOICE_NUMBER")],          # printed R-71, OCR read "l"
        [_o("Datum"), _o("03.04.2024", "B-INVOICE_DATE")],
        [_o("Summe"), _o("1.234", "B-TOTAL_AMOUNT")],         # 1234 in German; read as 1.234 without locale
    ])],
    record={"doc_type": "receipt", "invoice_number": "R-71", "invoice_date": "2024-04-03",
            "total_amount": "1234.00", "line_items": []},
)
PRED_B = {"ner": list(DOC_B.pages[0].ner), "table": list(DOC_B.pages[0].table), "cell": list(DOC_B.pages[0].cell)}


@pytest.fixture(scope="module")
def evaluated() -> list[DocEval]:
    return [evaluate_tags(DOC_A, [PRED_A]), evaluate_tags(DOC_B, [PRED_B])]


def test_hand_made_pages_keep_their_word_order() -> None:
    for doc in (DOC_A, DOC_B):
        view = page_view(doc.id, doc.pages[0])
        assert view.words == doc.pages[0].words
        assert view.gold["ner"] == doc.pages[0].ner


def test_entity_scores_by_hand(evaluated: list[DocEval]) -> None:
    gold = [p.gold["ner"] for d in evaluated for p in d.pages]
    pred = [p.pred["ner"] for d in evaluated for p in d.pages]
    scores = entity_scores(gold, pred)
    # gold spans: A 9 (doc type, number, date, supplier, 2 descriptions, 2 amounts, total), B 4 -> 13
    # predicted: A 9, B 4 -> 13; exact: A 5 (doc type, 2 descriptions, 10.00, total), B 4 -> 9
    micro = scores["micro"]
    assert (micro["support"], micro["predicted"], micro["correct"]) == (13, 13, 9)
    assert micro["precision"] == micro["recall"] == micro["f1"] == round(9 / 13, 4)
    # the micro numbers are seqeval's (model.metrics), per-entity counts add up to them
    assert micro["f1"] == round(head_scores({"ner": gold, "table": gold, "cell": gold},
                                            {"ner": pred, "table": pred, "cell": pred})["ner"]["f1"], 4)
    per = scores["per_entity"]
    assert per["DOC_TYPE"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2, "predicted": 2, "correct": 2}
    assert per["INVOICE_NUMBER"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2, "predicted": 1,
                                     "correct": 1}
    assert per["INVOICE_DATE"]["f1"] == 0.6667
    assert per["ITEM_AMOUNT"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2, "predicted": 1,
                                  "correct": 1}
    assert per["SUPPLIER_NAME"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "predicted": 1,
                                    "correct": 0}
    for ghost in ("DUE_DATE", "SUBTOTAL", "ITEM_QUANTITY"):  # predicted, never gold
        assert per[ghost] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 1, "correct": 0}
    assert per["ITEM_DESCRIPTION"]["f1"] == per["TOTAL_AMOUNT"]["f1"] == 1.0
    assert "PO_NUMBER" not in per


def test_spans_follow_seqeval_strict() -> None:
    # an I- that does not continue its type belongs to no span under strict IOB2
    assert spans(["B-A", "I-A", "O", "I-A", "B-B"]) == [("A", 0, 2), ("B", 4, 5)]


def test_confusion_by_hand(evaluated: list[DocEval]) -> None:
    conf = word_confusion([p.gold["ner"] for d in evaluated for p in d.pages],
                          [p.pred["ner"] for d in evaluated for p in d.pages])
    assert conf.labels == ["DOC_TYPE", "INVOICE_NUMBER", "INVOICE_DATE", "DUE_DATE", "SUPPLIER_NAME", "SUBTOTAL",
                           "TOTAL_AMOUNT", "ITEM_DESCRIPTION", "ITEM_QUANTITY", "ITEM_AMOUNT", "O"]
    c = {(conf.labels[i], conf.labels[j]): n for i, row in enumerate(conf.counts) for j, n in enumerate(row) if n}
    assert c == {("DOC_TYPE", "DOC_TYPE"): 2, ("INVOICE_NUMBER", "O"): 1, ("INVOICE_NUMBER", "INVOICE_NUMBER"): 1,
                 ("INVOICE_DATE", "DUE_DATE"): 1, ("INVOICE_DATE", "INVOICE_DATE"): 1,
                 ("SUPPLIER_NAME", "SUPPLIER_NAME"): 1, ("SUPPLIER_NAME", "O"): 1, ("TOTAL_AMOUNT", "TOTAL_AMOUNT"): 2,
                 ("ITEM_DESCRIPTION", "ITEM_DESCRIPTION"): 3, ("ITEM_AMOUNT", "ITEM_AMOUNT"): 1,
                 ("ITEM_AMOUNT", "ITEM_QUANTITY"): 1, ("O", "O"): 7, ("O", "SUBTOTAL"): 1}
    assert sum(map(sum, conf.counts)) == 16 + 7
    assert conf.top_confused(3) == [
        {"gold": "INVOICE_NUMBER", "pred": "O", "words": 1, "rate": 0.5},
        {"gold": "INVOICE_DATE", "pred": "DUE_DATE", "words": 1, "rate": 0.5},
        {"gold": "SUPPLIER_NAME", "pred": "O", "words": 1, "rate": 0.5}]
    assert conf.top_confused()[-1] == {"gold": "O", "pred": "SUBTOTAL", "words": 1, "rate": 0.125}  # 1 of 8 O words


def test_entity_error_classes_by_hand(evaluated: list[DocEval]) -> None:
    errors = [(e.cls, e.entity, e.gold, e.text) for p in evaluated[0].pages for e in entity_errors(p)]
    assert sorted(errors) == sorted([
        ("missed", "INVOICE_NUMBER", "INV-1", ""),
        ("wrong_type", "INVOICE_DATE", "2024-01-15", "2024-01-15"),
        ("wrong_boundary", "SUPPLIER_NAME", "Acme e.K.", "Acme"),
        ("wrong_type", "ITEM_AMOUNT", "5.00", "5.00"),
        ("spurious", "SUBTOTAL", "", "Total"),
    ])
    assert entity_errors(evaluated[1].pages[0]) == []


def test_fields_by_hand(evaluated: list[DocEval]) -> None:
    a, b = (field_outcomes(d) for d in evaluated)
    got = {(o.key, o.gold, o.pred, o.correct) for o in a}
    assert got == {
        ("doc_type", "INVOICE", "INVOICE", True),          # gold = printed text (the record holds a kind code)
        ("invoice_number", "INV-1", None, False),          # missed
        ("invoice_date", "2024-01-15", "2024-01-15", True),  # tagged as due date; read beside its caption
        ("supplier_name", "Acme e.K.", "Acme", False),
        ("total_amount", "15.00", "15.00", True),
        ("due_date", None, "2024-01-15", False),           # a field A does not print
        ("subtotal", None, None, False),                   # "Total" is not an amount: unreadable
    }
    assert {(o.key, o.gold, o.pred, o.correct) for o in b} == {
        ("doc_type", "Beleg", "Beleg", True),
        ("invoice_number", "R-71", "R-7l", False),
        ("invoice_date", "2024-04-03", "2024-04-03", True),
        ("total_amount", "1234.00", "1.234", False),
    }


def test_values_equal_rules() -> None:
    assert values_equal("TOTAL_AMOUNT", "12.5", "12.50")
    assert not values_equal("TOTAL_AMOUNT", "12.51", "12.50")
    assert values_equal("SUPPLIER_TAX_ID", "de 123-456", "DE123456")
    assert values_equal("SUPPLIER_ADDRESS", "Main St. 1, Berlin", "Main St. 1\nberlin")
    assert values_equal("SUPPLIER_ADDRESS", "Lucsingel 8 \u00b7 6091 LM", "Lucsingel 8\n6091 LM")
    assert not values_equal("SUPPLIER_ADDRESS", "Castell\u00f3n", "Castellon")
    assert values_equal("INVOICE_DATE", "2024-01-15", "2024-01-15")
    assert not values_equal("INVOICE_DATE", "2024-01-16", "2024-01-15")
    assert values_equal("CURRENCY", "eur", "EUR")
    assert not values_equal("TOTAL_AMOUNT", None, "1.00")


def test_report_by_hand(evaluated: list[DocEval], tmp_path: Path) -> None:
    analysis = analyse_docs(evaluated)
    rep = analysis.report
    # fields: gold A 5 (3 right: the invoice date tagged as a due date is read beside its caption
    # "Date"), B 4 (2 right) -> 5/9; predicted A 6 (incl. due date, subtotal) + B 4 = 10
    f = rep["fields"]
    assert (f["n"], f["correct"], f["accuracy"], f["predicted"], f["precision"], f["spurious"]) == \
        (9, 5, round(5 / 9, 4), 10, round(5 / 10, 4), 2)
    assert f["per_field"]["total_amount"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert f["per_field"]["doc_type"] == {"n": 2, "correct": 2, "accuracy": 1.0}
    assert list(f["per_field"]) == ["doc_type", "invoice_number", "invoice_date", "supplier_name", "total_amount"]
    # line items (A only: B has no table): gold 2, predicted 2 (row 2 has no amount), matched 1
    li = rep["line_items"]
    assert (li["docs"], li["gold"], li["pred"], li["matched"]) == (1, 2, 2, 1)
    assert li["precision"] == li["recall"] == li["f1"] == 0.5
    assert li["columns"] == {"description": {"n": 1, "correct": 1, "accuracy": 1.0},
                             "amount": {"n": 1, "correct": 1, "accuracy": 1.0}}
    # rows: both of A's rows exact -> 1.0; cells: gold 6, predicted 7 ("Widget" alone), exact 5
    assert rep["heads"]["table_row"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert rep["heads"]["cell"] == {"precision": round(5 / 7, 4), "recall": round(5 / 6, 4), "f1": round(10 / 13, 4)}
    # error classes per level
    assert rep["errors"]["counts"] == {
        "entity": {"missed": 1, "spurious": 1, "wrong_type": 2, "wrong_boundary": 1},
        "field": {"missed": 1, "spurious": 1, "wrong_type": 1, "wrong_boundary": 1, "normalisation": 1, "ocr": 1},
        "line_item": {"missed": 1, "spurious": 1},
    }
    fields = {(e["doc"], e["entity"], e["pred_entity"], e["cls"]) for e in
              [x for lst in rep["errors"]["examples"]["field"].values() for x in lst]}
    assert fields == {("A", "INVOICE_NUMBER", "", "missed"),
                      ("A", "INVOICE_DATE", "DUE_DATE", "wrong_type"),  # due date read from the invoice date
                      ("A", "SUPPLIER_NAME", "", "wrong_boundary"),
                      ("A", "SUBTOTAL", "SUBTOTAL", "spurious"),       # from "Total", no gold entity
                      ("B", "INVOICE_NUMBER", "", "ocr"),              # exact words, noisy text
                      ("B", "TOTAL_AMOUNT", "", "normalisation")}      # exact words, "1.234" read without locale
    ocr = rep["errors"]["examples"]["field"]["ocr"][0]
    assert (ocr["page"], ocr["text"], ocr["gold"]) == (0, "R-7l", "R-71")
    # breakdowns: A alone (invoice) has 5 of 9 spans right both ways; B (receipt) all
    kind = rep["breakdowns"]["kind"]
    assert kind["invoice"] == {"docs": 1, "entity_f1": round(5 / 9, 4), "table_row_f1": 1.0,
                               "cell_f1": round(10 / 13, 4), "field_accuracy": 0.6, "line_item_f1": 0.5}
    assert kind["receipt"]["entity_f1"] == 1.0 and kind["receipt"]["field_accuracy"] == 0.5
    assert kind["receipt"]["line_item_f1"] is None
    assert set(rep["breakdowns"]["locale"]) == {"en_US", "de_DE"} and set(rep["breakdowns"]["layout"]) == {"L1", "L2"}

    out = tmp_path / "hand"
    written = write_factory_report(analysis, out, {"name": "hand", "data": {"path": "-", "split": "test",
                                                                          "documents": 2}}, worst=1)
    for name in ("report.json", "report.md", "confusion_matrix.png", "entity_f1.png", "field_accuracy.png"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "report.json").read_text())["fields"]["correct"] == 5
    assert written["worst_documents"][0]["id"] == "A"           # 5 entity + 5 field + 2 item errors
    overlay = written["worst_documents"][0]["overlays"][0]
    assert (out / overlay).exists()
    md = (out / "report.md").read_text()
    for link in ("(confusion_matrix.png)", "(entity_f1.png)", "(field_accuracy.png)", f"({overlay})"):
        assert link in md
    assert "### field / ocr" in md and "R-7l" in md
    line = summary_line(written, out)
    assert "\n" not in line and "entity F1 0.6923" in line and "fields 0.5556" in line and "line items F1 0.5000" in line


def test_gold_tags_as_predictions_score_perfectly() -> None:
    view = page_view("A", DOC_A.pages[0])
    rep = analyse_docs([evaluate_tags(DOC_A, [view.gold])]).report
    assert rep["entities"]["micro"]["f1"] == rep["heads"]["table_row"]["f1"] == rep["heads"]["cell"]["f1"] == 1.0
    assert (rep["fields"]["n"], rep["fields"]["correct"], rep["fields"]["spurious"]) == (5, 5, 0)
    assert (rep["line_items"]["matched"], rep["line_items"]["pred"], rep["line_items"]["f1"]) == (2, 2, 1.0)
    assert rep["errors"]["counts"] == {} and rep["confusion"]["top_confused"] == []
