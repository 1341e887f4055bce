"""``invoicegen evaluate`` end to end with a tiny trained model: factory split and real documents."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from invoicegen.cli import app
from invoicegen.evaluation.realdata import load_jsonl, write_jsonl
from invoicegen.model.checkpoint import load_checkpoint
from invoicegen.model.data import prepare_labelled
from invoicegen.model.recipes import get_recipe
from invoicegen.model.train import TrainConfig, evaluate_pages, train
from invoicegen.schema import LabelledDocument
from toydata import toy_document

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
SAMPLE = REPO / "src" / "invoicegen" / "samples" / "sample_invoice.pdf"


def _with_record(doc: LabelledDocument) -> LabelledDocument:
    """A toy document whose record holds every printed field and its line items (read off the labels)."""
    page = doc.pages[0]
    text: dict[str, list[str]] = {}
    rows: dict[int, dict[str, list[str]]] = {}
    for w, tag, r, col in zip(page.words, page.ner, page.row, page.column, strict=True):
        if tag != "O" and r < 0:
            text.setdefault(tag[2:].lower(), []).append(w)
        if r >= 0 and col:
            rows.setdefault(r, {}).setdefault(col, []).append(w)
    record: dict[str, Any] = {k: " ".join(v) for k, v in text.items()}
    record["doc_type"] = "invoice"
    record["line_items"] = [{k: " ".join(v) for k, v in rows[r].items()} for r in sorted(rows)]
    return doc.model_copy(update={"record": record})


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[LabelledDocument]]:
    """A toy dataset with full records and a tiny model trained on it for 10 epochs (seconds; the
    numbers only need to be consistent, not good)."""
    root = tmp_path_factory.mktemp("eval")
    data = root / "data"
    data.mkdir()
    docs = [_with_record(toy_document(i)) for i in range(4)]
    (data / "documents.jsonl").write_text("".join(d.model_dump_json() + "\n" for d in docs))
    ids = [d.id for d in docs]
    (data / "manifest.json").write_text(json.dumps({"splits": {"train": ids, "val": ids[:2], "test": ids[2:4]}}))
    model = root / "model"
    train(TrainConfig(data=data, out=model, recipe=get_recipe("tiny").with_overrides(epochs=10), progress=False))
    return data, model, docs


def test_evaluate_factory_split(setup: tuple[Path, Path, list[LabelledDocument]], tmp_path: Path) -> None:
    data, model, docs = setup
    out = tmp_path / "reports" / "toy"
    res = CliRunner().invoke(app, ["evaluate", "--model", str(model), "--data", str(data), "--split", "test",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    line = res.stdout.strip().splitlines()[-1]
    assert line.startswith("toy: 2 docs (test) | entity F1 ") and str(out / "report.md") in line
    rep = json.loads((out / "report.json").read_text())
    for name in ("report.md", "confusion_matrix.png", "entity_f1.png", "field_accuracy.png"):
        assert (out / name).stat().st_size > 0
    # word-tag numbers are the training loop's own evaluation of the same pages
    ckpt = load_checkpoint(model)
    test_docs = [d for d in docs if d.id in ("toy-0002", "toy-0003")]
    pages = [p for d in test_docs for p in prepare_labelled(d, ckpt.tokenizer, ckpt.recipe)]
    expected = evaluate_pages(ckpt.model, pages, ckpt.tokenizer.pad_id)
    for head in ("ner", "table_row", "cell"):
        assert rep["heads"][head] == {k: round(v, 4) for k, v in expected[head].items()}, head
    assert rep["entities"]["micro"]["f1"] == rep["heads"]["ner"]["f1"]
    # each toy page prints 5 header fields and 3 line items, and has 14 entity spans
    assert rep["fields"]["n"] == 10 and rep["line_items"]["gold"] == 6
    assert rep["entities"]["micro"]["support"] == 2 * 14
    assert sum(v["support"] for v in rep["entities"]["per_entity"].values()) == 28
    assert rep["data"] == {"path": str(data), "split": "test", "documents": 2, "pages": 2,
                           "words": sum(len(d.pages[0].words) for d in test_docs)}
    assert set(rep["breakdowns"]) == {"kind", "locale", "layout"}
    md = (out / "report.md").read_text()
    assert "![confusion matrix](confusion_matrix.png)" in md
    for w in rep["worst_documents"]:
        for overlay in w["overlays"]:
            assert (out / overlay).exists() and f"]({overlay})" in md


def _reference(gold: Path, pred: Path) -> dict[str, Any]:
    run = subprocess.run([sys.executable, str(REALDATA / "score.py"), str(gold), str(pred), "--json"],
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_evaluate_real_documents(setup: tuple[Path, Path, list[LabelledDocument]], tmp_path: Path) -> None:
    _, model, _ = setup
    real = tmp_path / "real"
    (real / "samples").mkdir(parents=True)
    shutil.copy(SAMPLE, real / "samples" / "a.pdf")
    (real / "samples" / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    write_jsonl(real / "gold_dev.jsonl", [
        {"dataset": "samples", "doc": "samples/a.pdf", "kind": "pdf", "date_order": "DMY",
         "fields": {"invoice_number": "INV-2024-0117", "invoice_date": "2024-03-15",
                    "supplier_name": "Northwind Office Supplies GmbH"},
         "line_items": [{"description": "Copy paper", "amount": "10.00"}]},
        {"dataset": "samples", "doc": "samples/broken.pdf", "kind": "pdf", "fields": {"total_amount": "1.00"}},
    ])
    out = tmp_path / "reports" / "real"
    res = CliRunner().invoke(app, ["evaluate", "--model", str(model), "--real", str(real), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1].startswith("real: 2 real docs | fields ")
    rep = json.loads((out / "report.json").read_text())
    assert rep["micro"]["n"] == 4 and rep["datasets"]["samples"]["docs"] == 2
    assert [f["doc"] for f in rep["failed"]] == ["samples/broken.pdf"]
    assert rep["errors"]["counts"]["field"].get("missed", 0) >= 1  # the broken document's total
    preds = load_jsonl(out / "predictions.jsonl")
    assert [p["doc"] for p in preds] == ["samples/a.pdf", "samples/broken.pdf"]
    assert (out / "report.md").exists()
    if not (REALDATA / "score.py").exists():
        pytest.skip("reference scorer absent: agreement not checked")
    theirs = _reference(real / "gold_dev.jsonl", out / "predictions.jsonl")
    for key in ("datasets", "per_field", "micro", "line_items"):
        assert rep[key] == theirs[key], key


@pytest.mark.realdata
def test_evaluate_real_subset_agrees_with_reference(setup: tuple[Path, Path, list[LabelledDocument]],
                                                    tmp_path: Path) -> None:
    """A few born-digital real documents (no OCR, so it stays fast) through the model, scored by both."""
    _, model, _ = setup
    if not (REALDATA / "gold_dev.jsonl").exists():
        pytest.skip("no real data")
    picked: dict[str, dict[str, Any]] = {}  # the first PDF of two datasets with short documents
    for g in load_jsonl(REALDATA / "gold_dev.jsonl"):
        if g["doc"].endswith(".pdf") and g["dataset"] in ("docile_sample", "zugferd_corpus"):
            picked.setdefault(g["dataset"], g)
    if not picked:
        pytest.skip("no born-digital documents of the expected datasets")
    gold_file = write_jsonl(tmp_path / "gold.jsonl", list(picked.values()))
    out = tmp_path / "reports" / "subset"
    res = CliRunner().invoke(app, ["evaluate", "--model", str(model), "--real", str(REALDATA), "--gold",
                                   str(gold_file), "--out", str(out), "--ocr", "none", "--worst", "0"])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    theirs = _reference(gold_file, out / "predictions.jsonl")
    for key in ("datasets", "per_field", "micro", "line_items"):
        assert rep[key] == theirs[key], key
    assert rep["worst_documents"] == []
