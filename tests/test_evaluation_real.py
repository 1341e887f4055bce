"""Real-data scoring: hand-computed answers, and agreement with ../shared/realdata/score.py.

The reference scorer is run as a subprocess (``--json``) on the same gold and predictions; tests
that need it or the real gold file skip when the folder is absent."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from invoicegen.evaluation.realdata import Predicted, load_jsonl, write_jsonl
from invoicegen.evaluation.realscore import read_amount, read_currency, read_dates, score, token_set_ratio
from invoicegen.evaluation.report import analyse_real

REALDATA = Path(os.environ.get("INVOICEGEN_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))
SUMMARY_KEYS = ("datasets", "per_field", "micro", "line_items", "warnings")


def reference_score(tmp: Path, gold: list[dict[str, Any]], preds: list[Any]) -> tuple[dict[str, Any], list[dict]]:
    """score.py's JSON summary and details for these gold lines and predictions."""
    scorer = REALDATA / "score.py"
    if not scorer.exists():
        pytest.skip(f"no reference scorer at {scorer}")
    g = write_jsonl(tmp / "gold.jsonl", gold)
    p = tmp / "pred.jsonl"
    p.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in preds))
    run = subprocess.run([sys.executable, str(scorer), str(g), str(p), "--json", "--details", str(tmp / "d.jsonl")],
                         capture_output=True, text=True, check=True, timeout=120)
    return json.loads(run.stdout.strip().splitlines()[-1]), load_jsonl(tmp / "d.jsonl")


def assert_same_as_reference(tmp: Path, gold: list[dict[str, Any]], preds: list[Any]) -> dict[str, Any]:
    theirs, their_details = reference_score(tmp, gold, preds)
    ours = score(gold, preds)
    for key in SUMMARY_KEYS:
        assert ours.summary[key] == theirs[key], key
    assert [(d["doc"], d["field"], d.get("correct"), d.get("tp")) for d in ours.details] == \
        [(d["doc"], d["field"], d.get("correct"), d.get("tp")) for d in their_details]
    return ours.summary


# --------------------------------------------------------------------------------------------
# hand-made: two documents, every number worked out by hand
# --------------------------------------------------------------------------------------------

GOLD = [
    {"dataset": "ds1", "doc": "ds1/a.pdf", "kind": "pdf", "date_order": "DMY",
     "fields": {"invoice_number": "INV-001", "invoice_date": "2024-03-04", "due_date": "2024-04-03",
                "supplier_name": "Acme Trading GmbH", "subtotal": "1000.00", "total_amount": "1234.50",
                "currency": "EUR"},
     "line_items": [{"description": "Steel bolts M8", "amount": "100.00"},
                    {"description": "Copper wire", "amount": "50.00"},
                    {"description": "Service", "amount": None}]},
    {"dataset": "ds2", "doc": "ds2/b.jpg", "kind": "image",
     "fields": {"invoice_number": "77", "invoice_date": "2018-12-25", "total_amount": "19.00",
                "buyer_name": {"value": "Globex", "match": "contains"}}},
]
PREDS = [
    {"doc": "ds1/a.pdf", "source": "pdf-text",
     "fields": {"invoice_number": "# inv 001",        # right: case, spaces, punctuation ignored
                "invoice_date": "04/03/2024",         # right: DMY -> 4 March
                "due_date": "2024-03-04",             # wrong; its printed text reads right -> normalisation
                "supplier_name": "GmbH",              # wrong: covers none of "acme" -> wrong_boundary
                "subtotal": "1234.50",                # wrong: it is the total -> wrong_type
                "total_amount": "1.234,50 \u20ac",    # right
                "currency": "\u20ac"},                # right
     "text": {"due_date": "03.04.2024"},
     "line_items": [{"description": "steel bolts", "amount": "100,00"},      # match (subset of tokens)
                    {"description": "Copper wire", "amount": "55.00"},       # amount differs: no match
                    {"description": "Service fee", "amount": "20.00"}]},     # gold has no amount: match
    {"doc": "./ds2/b.jpg", "source": "ocr:rapidocr",
     "fields": {"invoice_date": "25.12.18",           # right: dotted dates are day-first
                "total_amount": "19.80",              # wrong, OCR near miss ("19 80" vs "19 00": 0.8)
                "buyer_name": "GLOBEX CORPORATION"}},  # right: contains
]


def test_realscore_by_hand() -> None:
    s = score(GOLD, PREDS).summary
    # ds1: 7 fields, 4 right; ds2: 4 fields (number missed), 2 right -> 6 / 11
    assert s["micro"] == {"n": 11, "correct": 6, "accuracy": round(6 / 11, 4)}
    assert s["datasets"]["ds1"]["micro"] == {"n": 7, "correct": 4, "accuracy": round(4 / 7, 4)}
    assert s["datasets"]["ds2"]["micro"] == {"n": 4, "correct": 2, "accuracy": 0.5}
    assert s["per_field"]["invoice_date"] == {"n": 2, "correct": 2, "accuracy": 1.0}
    assert s["per_field"]["total_amount"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert list(s["per_field"]) == ["invoice_number", "invoice_date", "due_date", "supplier_name", "buyer_name",
                                    "currency", "subtotal", "total_amount"]
    # line items: gold 3, predicted 3, matched 2 -> P = R = F1 = 2/3
    assert s["line_items"] == {"docs": 1, "gold": 3, "pred": 3, "matched": 2, "precision": 0.6667,
                               "recall": 0.6667, "f1": 0.6667}
    assert "line_items" not in s["datasets"]["ds2"]


def test_real_error_classes_by_hand() -> None:
    predicted = [Predicted(g, p, None, 0.1) for g, p in zip(GOLD, PREDS, strict=True)]
    rep = analyse_real(predicted).report
    assert rep["errors"]["counts"] == {  # classes with no error are left out
        "field": {"missed": 1, "wrong_type": 1, "wrong_boundary": 1, "normalisation": 1, "ocr": 1},
        "line_item": {"missed": 1, "spurious": 1},
    }
    classes = {(e["doc"], e["entity"], e["cls"]) for lst in rep["errors"]["examples"]["field"].values() for e in lst}
    assert classes == {("ds1/a.pdf", "DUE_DATE", "normalisation"), ("ds1/a.pdf", "SUPPLIER_NAME", "wrong_boundary"),
                       ("ds1/a.pdf", "SUBTOTAL", "wrong_type"), ("ds2/b.jpg", "TOTAL_AMOUNT", "ocr"),
                       ("ds2/b.jpg", "INVOICE_NUMBER", "missed")}
    missed_item = rep["errors"]["examples"]["line_item"]["missed"][0]
    assert missed_item["gold"] == "Copper wire = 50.00"
    docs = {d["doc"]: (d["wrong"], d["fields_correct"], d["fields"]) for d in rep["documents"]}
    assert docs == {"ds1/a.pdf": (3 + 2, 4, 7), "ds2/b.jpg": (2, 2, 4)}


def test_hand_made_predictions_agree_with_reference(tmp_path: Path) -> None:
    summary = assert_same_as_reference(tmp_path, GOLD, PREDS)
    assert summary["micro"]["correct"] == 6


# --------------------------------------------------------------------------------------------
# agreement on the whole real gold file, with predictions perturbed in every documented way
# --------------------------------------------------------------------------------------------

MONTHS_DE = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
             "November", "Dezember"]


def _amount(rng: random.Random, v: Any) -> Any:
    d = read_amount(v)
    if d is None:
        return v
    if rng.random() < 0.2:
        d += rng.choice([Decimal("0.01"), Decimal("1"), Decimal("-0.5")])
    q = f"{abs(d):,.2f}"
    de = q.replace(",", "X").replace(".", ",").replace("X", ".")
    sign = "-" if d < 0 else ""
    return rng.choice([f"{sign}{q}", f"${sign}{q}", f"{sign}{de} EUR", f"({q})" if sign else q, f"{q}-" if sign else q,
                       f"RM {sign}{q}", f"{sign}{abs(d)}", f"{sign}{de.replace('.', ' ')}", f"{sign}{de}",
                       f"{sign}{q.replace(',', chr(39))}", float(d), str(d.normalize()), f"{sign}{int(abs(d))},-"])


def _date(rng: random.Random, v: Any) -> Any:
    try:
        d = date.fromisoformat(str(v))
    except ValueError:
        return v
    if rng.random() < 0.15:
        d += timedelta(days=rng.choice([1, -1, 30]))
    return rng.choice([d.isoformat(), d.strftime("%d/%m/%Y"), d.strftime("%m/%d/%Y"), d.strftime("%d.%m.%y"),
                       d.strftime("%B %d, %Y"), d.strftime("%d %b %Y"), d.strftime("%Y%m%d"),
                       d.strftime("%d-%b-%y"), f"{d.day}. {MONTHS_DE[d.month - 1]} {d.year}",
                       d.strftime("%d %m %Y"), d.strftime("%d/%m/%Y 10:32"), d.strftime("%A, %d %B %Y"),
                       f"{d.day} de enero de {d.year}", d.strftime("%d%m%Y"), "n/a"])


def _name(rng: random.Random, v: Any, others: list[str]) -> Any:
    s = str(v.get("value") if isinstance(v, dict) else v)
    toks = s.split()
    return rng.choice([s, s.upper(), " ".join(toks[:-1]) or s, s + " GmbH", toks[-1], s.replace(" ", ""),
                       " ".join(toks[:1]), rng.choice(others), "The " + s.lower(), s[:-2], {"value": s}])


def _id(rng: random.Random, v: Any) -> Any:
    s = str(v)
    return rng.choice([s, "# " + s.lower(), s.replace("-", " "), s[:-1], s + "0", f"No. {s}", 12345])


def _currency(rng: random.Random, v: Any) -> Any:
    return rng.choice([v, str(v).lower(), "$", "US$", "\u20ac", "euros", "RM", "CA$", "kr", "EUR 12.00", "XYZ"])


def _perturb(rng: random.Random, g: dict[str, Any], names: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for k, v in (g.get("fields") or {}).items():
        if rng.random() < 0.12:
            continue
        if k in ("subtotal", "tax_amount", "total_amount"):
            fields[k] = _amount(rng, v)
        elif k in ("invoice_date", "due_date"):
            fields[k] = _date(rng, v.get("value") if isinstance(v, dict) else v)
        elif k in ("supplier_name", "buyer_name"):
            fields[k] = _name(rng, v, names)
        elif k == "invoice_number":
            fields[k] = _id(rng, v.get("value") if isinstance(v, dict) else v)
        elif k == "currency":
            fields[k] = _currency(rng, v)
        if k in fields and rng.random() < 0.1:
            fields[k] = {"value": fields[k]}
    items = []
    for it in g.get("line_items") or []:
        if rng.random() < 0.2:
            continue
        desc = str(it.get("description") or "")
        toks = desc.split()
        items.append({"description": rng.choice([desc, desc.lower(), " ".join(toks[:2]), desc + " extra", ""]),
                      "amount": _amount(rng, it.get("amount")) if it.get("amount") is not None else None})
    if rng.random() < 0.3:
        items.append({"description": rng.choice(names), "amount": "1.00"})
    rng.shuffle(items)
    pred: dict[str, Any] = {"doc": ("./" if rng.random() < 0.1 else "") + g["doc"], "line_items": items}
    if rng.random() < 0.1:
        pred.update(fields)  # flat predictions are tolerated
    else:
        pred["fields"] = fields
    return pred


@pytest.mark.realdata
def test_agrees_with_reference_on_perturbed_real_gold(tmp_path: Path) -> None:
    gold_path = REALDATA / "gold_dev.jsonl"
    if not gold_path.exists():
        pytest.skip(f"no real gold file at {gold_path}")
    gold = load_jsonl(gold_path)
    names = [str(v.get("value") if isinstance(v, dict) else v) for g in gold
             for k, v in (g.get("fields") or {}).items() if k.endswith("_name")]
    for seed in range(3):
        rng = random.Random(seed)
        preds: list[Any] = [_perturb(rng, g, names) for g in gold if rng.random() > 0.05]
        preds += [{"doc": "unknown/x.pdf", "fields": {}}, {"fields": {}}, dict(preds[0])]  # warnings too
        summary = assert_same_as_reference(tmp_path, gold, preds)
        assert 0 < summary["micro"]["correct"] < summary["micro"]["n"]


@pytest.mark.realdata
def test_readers_agree_with_reference_scorer_functions() -> None:
    """The building blocks on tricky inputs (imported from score.py only to compare)."""
    import importlib.util

    path = REALDATA / "score.py"
    if not path.exists():
        pytest.skip("no reference scorer")
    spec = importlib.util.spec_from_file_location("_reference_score", path)
    assert spec is not None and spec.loader is not None
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    for a in ["$1,234.50", "1.234,56 EUR", "1,269.12-", "(1,269.12)", "34,-", "-$5", "EUR -8,79", "1 234,56",
              "1'234.50", "5.200", "0,125", "1.234.56", "RM 9.00", "(RM 5.00)", "- 3.00", "3.00 -", "1.2.3", "x"]:
        assert read_amount(a) == ref.parse_amount(a), a
    for d in ["03/04/2018", "07.09.18", "Aug 3, 2014", "3. März 2024", "15 de enero de 2024", "15-Jan-24",
              "15012024", "01152024", "12 03 2019", "2018 3 August", "31/02/2020", "3 Mac 2019", "19 Okt. 2021"]:
        for order in (None, "DMY", "MDY"):
            assert read_dates(d, order) == ref.parse_date(d, order), (d, order)
    for c in ["$", "US$", "CA$ 5", "EUR", "RM", "eur", "Fr.", "Z\u0142", "k\u010d", "usd 5 eur", "abc", "Euro", "XAU"]:
        assert read_currency(c) == ref.norm_currency(c), c
    rng = random.Random(1)
    words = ["acme", "gmbh", "trading", "bolt", "bolts", "steel", "m8", "wire", "copper", "service", "a", "ab"]
    for _ in range(2000):
        a = " ".join(rng.sample(words, rng.randint(1, 4)))
        b = " ".join(rng.sample(words, rng.randint(1, 4)))
        assert token_set_ratio(a, b) == ref.token_set_ratio(a, b), (a, b)
