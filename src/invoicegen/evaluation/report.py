"""``invoicegen evaluate``: metrics, pictures and error analysis written as report.json + report.md.

Two inputs, one report layout:

* a factory dataset split (word-level gold): entity spans per type, table rows and cells, word
  confusion, fields after decoding, line items, breakdowns by kind/locale/layout, span-, field- and
  item-level error classes, overlays of gold vs predicted boxes for the worst documents;
* a folder of real documents with a gold JSONL: the real-data scoring rules (``realscore``) per
  dataset and field, line items, field- and item-level error classes, overlays of the predicted
  fields (right/wrong) for the worst documents.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from invoicegen.evaluation import plots
from invoicegen.evaluation.errors import (
    DEFINITIONS,
    ErrorCase,
    entity_errors,
    field_errors,
    item_errors,
    real_field_error,
    summarise,
)
from invoicegen.evaluation.factory import DocEval, field_outcomes, has_gold_rows, item_dicts
from invoicegen.evaluation.metrics import (
    Confusion,
    FieldOutcome,
    ItemTally,
    entity_scores,
    field_scores,
    structure_scores,
    word_confusion,
)
from invoicegen.evaluation.realdata import Predicted
from invoicegen.evaluation.realscore import match_line_items, score
from invoicegen.schema import HEADS

REPORT_JSON = "report.json"
REPORT_MD = "report.md"

# ============================================================================================
# factory datasets
# ============================================================================================


@dataclass
class DocSummary:
    """What one document contributes, kept so that any subset (a kind, a locale) can be re-scored."""

    doc: DocEval
    outcomes: list[FieldOutcome]
    items: tuple[int, int, int] | None
    """(matched, gold, predicted) line items; None when the document has no gold rows."""
    errors: list[ErrorCase]


@dataclass
class FactoryAnalysis:
    report: dict[str, Any]
    confusion: Confusion
    docs: list[DocSummary] = field(default_factory=list)


def _tags(docs: Sequence[DocSummary], which: str) -> dict[str, list[list[str]]]:
    return {h: [getattr(p, which)[h] for d in docs for p in d.doc.pages] for h in HEADS}


def _scores(docs: Sequence[DocSummary]) -> dict[str, Any]:
    """Headline numbers of a set of documents."""
    heads = structure_scores(_tags(docs, "gold"), _tags(docs, "pred"))
    fields = field_scores([o for d in docs for o in d.outcomes])
    counts = [d.items for d in docs if d.items is not None]
    tally = ItemTally(matched=sum(c[0] for c in counts), n_gold=sum(c[1] for c in counts),
                      n_pred=sum(c[2] for c in counts), docs=len(counts))
    items = tally.summary()
    return {"docs": len(docs), "entity_f1": heads["ner"]["f1"], "table_row_f1": heads["table_row"]["f1"],
            "cell_f1": heads["cell"]["f1"], "field_accuracy": fields["accuracy"],
            "line_item_f1": items["f1"] if counts else None}


def analyse_docs(evaluated: Sequence[DocEval], examples: int = 8) -> FactoryAnalysis:
    """Every metric, breakdown and error class of a set of evaluated factory documents."""
    docs: list[DocSummary] = []
    tally = ItemTally()
    for d in evaluated:
        outcomes = field_outcomes(d)
        errors = [e for p in d.pages for e in entity_errors(p)] + field_errors(d, outcomes)
        counts = None
        gold_items = d.record.get("line_items")
        if has_gold_rows(d) and isinstance(gold_items, list):
            pred_items = item_dicts(d)
            before = (tally.matched, tally.n_gold, tally.n_pred)
            pairs = tally.add(gold_items, pred_items)
            counts = (tally.matched - before[0], tally.n_gold - before[1], tally.n_pred - before[2])
            errors += item_errors(d.id, gold_items, pred_items, pairs)
        docs.append(DocSummary(d, outcomes, counts, errors))
    gold, pred = _tags(docs, "gold"), _tags(docs, "pred")
    confusion = word_confusion(gold["ner"], pred["ner"])
    per_doc = []
    for s in docs:
        sc = _scores([s])
        per_doc.append({"id": s.doc.id, "kind": s.doc.kind, "locale": s.doc.locale, "layout": s.doc.layout,
                        "errors": len(s.errors), **{k: v for k, v in sc.items() if k != "docs"}})
    breakdowns = {}
    for attr in ("kind", "locale", "layout"):
        groups: dict[str, list[DocSummary]] = {}
        for s in docs:
            groups.setdefault(getattr(s.doc, attr), []).append(s)
        breakdowns[attr] = {k: _scores(v) for k, v in sorted(groups.items())}
    decoded = structure_scores(gold, {**pred, "table": [p.pred["rows"] for s in docs for p in s.doc.pages]})
    report = {
        "entities": entity_scores(gold["ner"], pred["ner"]),
        "heads": {**structure_scores(gold, pred), "table_row_decoded": decoded["table_row"]},
        "fields": field_scores([o for s in docs for o in s.outcomes]),
        "line_items": tally.summary(),
        "confusion": {"labels": confusion.labels, "counts": confusion.counts,
                      "top_confused": confusion.top_confused(10)},
        "breakdowns": breakdowns,
        "errors": summarise([e for s in docs for e in s.errors], examples),
        "documents": per_doc,
    }
    return FactoryAnalysis(report, confusion, docs)


def _worst(docs: Sequence[DocSummary], n: int) -> list[DocSummary]:
    """Most errors first; lower entity F1 breaks ties."""
    ranked = sorted(docs, key=lambda s: (-len(s.errors), _scores([s])["entity_f1"], s.doc.id))
    return [s for s in ranked[:n] if s.errors]


def _page_image(data_dir: Path | None, rel: str | None) -> Any | None:
    if data_dir is None or not rel or not (data_dir / rel).exists():
        return None
    from PIL import Image

    with Image.open(data_dir / rel) as im:
        return im.convert("RGB")


def write_factory_report(analysis: FactoryAnalysis, out: str | Path, meta: Mapping[str, Any], *,
                         data_dir: Path | None = None, worst: int = 5) -> dict[str, Any]:
    """Plots, overlays, report.json and report.md in ``out``; returns the report dict."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = {"type": "factory", **meta, **analysis.report}
    images: dict[str, str] = {}
    images["confusion"] = plots.confusion_png(analysis.confusion, out / "confusion_matrix.png").name
    per_entity = rep["entities"]["per_entity"]
    if per_entity:
        images["entity_f1"] = plots.bar_png({k: v["f1"] for k, v in per_entity.items()}, out / "entity_f1.png",
                                            "Entity F1 (seqeval strict IOB2)", "F1",
                                            {k: f"n={v['support']}" for k, v in per_entity.items()}).name
    per_field = rep["fields"]["per_field"]
    if per_field:
        images["field_accuracy"] = plots.bar_png({k: v["accuracy"] for k, v in per_field.items()},
                                                 out / "field_accuracy.png", "Field exact match", "accuracy",
                                                 {k: f"n={v['n']}" for k, v in per_field.items()}).name
    worst_docs = []
    for s in _worst(analysis.docs, worst):
        pages = []
        for page in s.doc.pages:
            if not any(e.page == page.index and e.level == "entity" for e in s.errors) and len(s.doc.pages) > 1:
                continue
            path = plots.overlay_png(page, _page_image(data_dir, page.image),
                                     out / "overlays" / f"{_safe(s.doc.id)}.page{page.index + 1}.png",
                                     f"{s.doc.id} page {page.index + 1}: gold (green, dashed) vs predicted (red)")
            pages.append(str(path.relative_to(out)))
        worst_docs.append({"id": s.doc.id, "kind": s.doc.kind, "locale": s.doc.locale, "layout": s.doc.layout,
                           "errors": len(s.errors), "entity_f1": _scores([s])["entity_f1"], "overlays": pages})
    rep["worst_documents"] = worst_docs
    rep["images"] = images
    _write(out, rep, factory_markdown(rep))
    return rep


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# ============================================================================================
# real documents
# ============================================================================================


@dataclass
class RealAnalysis:
    report: dict[str, Any]
    predicted: list[Predicted]
    correct: dict[str, dict[str, bool]]
    """doc -> field -> correct (for overlays)."""


def analyse_real(predicted: Sequence[Predicted], examples: int = 8) -> RealAnalysis:
    """Scores (the real-data rules), error classes and per-document results."""
    gold = [p.gold for p in predicted]
    lines = [p.line for p in predicted]
    scored = score(gold, lines)
    by_doc = {p.gold["doc"]: p for p in predicted}
    errors: list[ErrorCase] = []
    correct: dict[str, dict[str, bool]] = {}
    wrong_per_doc: dict[str, int] = {}
    for d in scored.details:
        doc = d["doc"]
        p = by_doc.get(doc)
        if d["field"] == "line_items":
            g_items = p.gold.get("line_items") if p else None
            p_items = (p.line.get("line_items") or []) if p else []
            if isinstance(g_items, list):
                match = match_line_items(g_items, p_items)
                errs = item_errors(doc, g_items, p_items, match.pairs)
                errors += errs
                wrong_per_doc[doc] = wrong_per_doc.get(doc, 0) + len(errs)
            continue
        correct.setdefault(doc, {})[d["field"]] = d["correct"]
        if d["correct"]:
            continue
        wrong_per_doc[doc] = wrong_per_doc.get(doc, 0) + 1
        cls = real_field_error(d["field"], p.gold if p else {"fields": {}}, p.line if p else None)
        text = ((p.line.get("text") or {}).get(d["field"]) if p else None) or str(d["pred"] or "")
        found = p.result.fields.get(d["field"]) if p and p.result else None
        errors.append(ErrorCase("field", cls, doc, found.page if found else None, d["field"].upper(), text=text,
                                gold=json.dumps(d["gold"], ensure_ascii=False) if isinstance(d["gold"], dict)
                                else str(d["gold"]),
                                detail="" if d["pred_norm"] is None else f"read as {d['pred_norm']!r}"))
    seconds: dict[str, list[float]] = {}
    for p in predicted:
        seconds.setdefault(p.gold.get("dataset", "?"), []).append(p.seconds)
    report = {
        **scored.summary,
        "errors": summarise(errors, examples),
        "seconds_per_doc": {ds: round(statistics.median(s), 3) for ds, s in sorted(seconds.items())},
        "failed": [{"doc": p.gold["doc"], "error": p.line["error"]} for p in predicted if "error" in p.line],
        "documents": [{"doc": p.gold["doc"], "dataset": p.gold.get("dataset", "?"),
                       "wrong": wrong_per_doc.get(p.gold["doc"], 0),
                       "fields_correct": sum(correct.get(p.gold["doc"], {}).values()),
                       "fields": len(correct.get(p.gold["doc"], {}))} for p in predicted],
    }
    return RealAnalysis(report, list(predicted), correct)


def write_real_report(analysis: RealAnalysis, out: str | Path, meta: Mapping[str, Any], *, root: Path,
                      worst: int = 5) -> dict[str, Any]:
    """Plots, overlays of the worst documents, report.json and report.md in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = {"type": "real", **meta, **analysis.report}
    images: dict[str, str] = {}
    per_field = rep["per_field"]
    if per_field:
        images["field_accuracy"] = plots.bar_png({k: v["accuracy"] for k, v in per_field.items()},
                                                 out / "field_accuracy.png", "Field accuracy (real data)",
                                                 "accuracy", {k: f"n={v['n']}" for k, v in per_field.items()}).name
    ranked = sorted((d for d in rep["documents"] if d["wrong"]), key=lambda d: (-d["wrong"], d["doc"]))
    by_doc = {p.gold["doc"]: p for p in analysis.predicted}
    worst_docs = []
    for d in ranked[:worst]:
        p = by_doc[d["doc"]]
        overlays = _real_overlays(p, analysis.correct.get(d["doc"], {}), root, out) if p.result else []
        worst_docs.append({**d, "overlays": overlays})
    rep["worst_documents"] = worst_docs
    rep["images"] = images
    _write(out, rep, real_markdown(rep))
    return rep


def _real_overlays(p: Predicted, correct: Mapping[str, bool], root: Path, out: Path) -> list[str]:
    """First page of a real document with its predicted field boxes, right or wrong."""
    from invoicegen.document import load_document
    from invoicegen.errors import InvoiceGenError

    assert p.result is not None
    try:
        with load_document(root / p.gold["doc"], ocr="none") as doc:
            page = doc.pages[0]
            image = doc.page_image(0)
            boxes = [(k, f.bbox, correct.get(k)) for k, f in p.result.fields.items() if f.page == 0]
            path = plots.fields_overlay_png(image, page.width, page.height, boxes,
                                            out / "overlays" / f"{_safe(p.gold['doc'])}.page1.png",
                                            f"{p.gold['doc']}: predicted fields (green right, red wrong)")
    except (InvoiceGenError, OSError):
        return []
    return [str(path.relative_to(out))]


# ============================================================================================
# writing
# ============================================================================================


def _write(out: Path, rep: Mapping[str, Any], markdown: str) -> None:
    (out / REPORT_JSON).write_text(json.dumps(rep, indent=2, ensure_ascii=False, default=str) + "\n")
    (out / REPORT_MD).write_text(markdown)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _errors_md(errors: Mapping[str, Any]) -> str:
    parts = ["## Error analysis\n\n"]
    levels = list(errors["counts"])
    classes = [c for c in DEFINITIONS if any(c in errors["counts"][lvl] for lvl in levels)]
    if not levels:
        return "## Error analysis\n\nNo errors.\n"
    parts.append(_table(["level", *classes, "total"],
                        [[lvl, *(errors["counts"][lvl].get(c, 0) for c in classes), errors["total"][lvl]]
                         for lvl in levels]))
    parts.append("\nDefinitions:\n\n" + "\n".join(f"- **{c}**: {d}" for c, d in DEFINITIONS.items()) + "\n")
    for lvl in levels:
        for cls, cases in errors["examples"].get(lvl, {}).items():
            parts.append(f"\n### {lvl} / {cls} (first {len(cases)} of {errors['counts'][lvl][cls]})\n\n")
            parts.append(_table(["document", "page", "entity", "predicted text", "gold", "predicted as / detail"],
                                [[c["doc"], "–" if c["page"] is None else c["page"] + 1, c["entity"], c["text"],
                                  c["gold"], " ".join(x for x in (c["pred_entity"], c["detail"]) if x)]
                                 for c in cases]))
    return "".join(parts)


def _header_md(rep: Mapping[str, Any]) -> str:
    lines = [f"# Evaluation report: {rep.get('name', '')}\n",
             f"- model: `{rep.get('model', {}).get('path', '')}` ({rep.get('model', {}).get('name', '')} "
             f"{rep.get('model', {}).get('version', '')}, {rep.get('model', {}).get('backend', '')})",
             f"- data: `{rep.get('data', {}).get('path', '')}`" + (f", split `{rep['data']['split']}`"
                                                                   if rep.get("data", {}).get("split") else ""),
             f"- documents: {rep.get('data', {}).get('documents', '')}, created {rep.get('created', '')}, "
             f"{rep.get('seconds', 0):.1f} s", ""]
    return "\n".join(lines) + "\n"


def factory_markdown(rep: Mapping[str, Any]) -> str:
    ent, heads, fields, items = rep["entities"], rep["heads"], rep["fields"], rep["line_items"]
    img = rep.get("images", {})
    md = [_header_md(rep), "## Summary\n\n",
          _table(["metric", "precision", "recall", "F1 / accuracy", "n"], [
              ["entities (spans)", ent["micro"]["precision"], ent["micro"]["recall"], ent["micro"]["f1"],
               ent["micro"]["support"]],
              ["table rows (spans)", heads["table_row"]["precision"], heads["table_row"]["recall"],
               heads["table_row"]["f1"], None],
              ["table rows after decoding", heads["table_row_decoded"]["precision"],
               heads["table_row_decoded"]["recall"], heads["table_row_decoded"]["f1"], None],
              ["cells (spans)", heads["cell"]["precision"], heads["cell"]["recall"], heads["cell"]["f1"], None],
              ["fields (exact match)", fields["precision"], fields["accuracy"], fields["accuracy"], fields["n"]],
              ["line items", items["precision"], items["recall"], items["f1"], items["gold"]]]),
          "\nEntities, rows and cells are seqeval strict IOB2 spans over the words in reading order, from the "
          "model's own tags (entities: argmax with one-word holes closed, `model/bio.py: fill_islands`, as the "
          "extractor reads them; rows and cells: argmax); rows after decoding are the rows the extractor uses "
          "(holes closed, row starts repaired by line geometry and item amounts, `snap_row_starts`). "
          "Fields are the decoded, normalised values compared with the record the document was made from "
          "(recall = accuracy over gold fields; precision also counts fields the document does not have). "
          "Line items match when the amounts agree to the cent and the descriptions are >= 0.6 similar.\n",
          "\n## Entities\n\n"]
    if "entity_f1" in img:
        md.append(f"![per-entity F1]({img['entity_f1']})\n\n")
    md.append(_table(["entity", "precision", "recall", "F1", "support", "predicted"],
                     [[k, v["precision"], v["recall"], v["f1"], v["support"], v["predicted"]]
                      for k, v in ent["per_entity"].items()]))
    md.append(f"\n## Confusion (word level)\n\n![confusion matrix]({img.get('confusion', '')})\n\n"
              "Most confused (gold read as predicted, share of the gold type's words):\n\n")
    md.append(_table(["gold", "predicted", "words", "rate"],
                     [[c["gold"], c["pred"], c["words"], c["rate"]] for c in rep["confusion"]["top_confused"]]))
    md.append("\n## Fields\n\n")
    if "field_accuracy" in img:
        md.append(f"![field accuracy]({img['field_accuracy']})\n\n")
    md.append(_table(["field", "n", "correct", "accuracy"],
                     [[k, v["n"], v["correct"], v["accuracy"]] for k, v in fields["per_field"].items()]))
    md.append(f"\nPredicted fields the documents do not have: {fields['spurious']}.\n")
    md.append(f"\n## Line items\n\n{items['docs']} documents, gold {items['gold']}, predicted {items['pred']}, "
              f"matched {items['matched']}: P {items['precision']:.4f} R {items['recall']:.4f} "
              f"F1 {items['f1']:.4f}.\n\nColumns of the matched items:\n\n")
    md.append(_table(["column", "n", "correct", "accuracy"],
                     [[k, v["n"], v["correct"], v["accuracy"]] for k, v in items["columns"].items()]))
    md.append("\n## Breakdowns\n")
    for attr, groups in rep["breakdowns"].items():
        md.append(f"\n### by {attr}\n\n")
        md.append(_table([attr, "docs", "entity F1", "row F1", "cell F1", "field acc.", "line-item F1"],
                         [[k, v["docs"], v["entity_f1"], v["table_row_f1"], v["cell_f1"], v["field_accuracy"],
                           v["line_item_f1"]] for k, v in groups.items()]))
    md.append("\n" + _errors_md(rep["errors"]))
    md.append(_worst_md(rep["worst_documents"], ["id", "kind", "locale", "layout", "errors", "entity_f1"]))
    return "".join(md)


def real_markdown(rep: Mapping[str, Any]) -> str:
    img = rep.get("images", {})
    md = [_header_md(rep), "## Summary\n\n"]
    li = rep.get("line_items")
    md.append(_table(["metric", "value", "n"], [
        ["field accuracy (micro)", rep["micro"]["accuracy"], rep["micro"]["n"]],
        *([["line items P / R / F1", f"{li['precision']:.4f} / {li['recall']:.4f} / {li['f1']:.4f}", li["gold"]]]
          if li else [])]))
    md.append("\nScored with the real-data rules (`evaluation/realscore.py`, same numbers as "
              "`realdata/score.py`).\n\n## Fields\n\n")
    if "field_accuracy" in img:
        md.append(f"![field accuracy]({img['field_accuracy']})\n\n")
    md.append(_table(["field", "n", "correct", "accuracy"],
                     [[k, v["n"], v["correct"], v["accuracy"]] for k, v in rep["per_field"].items()]))
    md.append("\n## Datasets\n\n")
    fields = list(rep["per_field"])
    md.append(_table(["dataset", "docs", *fields, "micro", "line-item F1", "s/doc"],
                     [[ds, e["docs"], *((e["fields"][f]["accuracy"] if f in e["fields"] else None) for f in fields),
                       e["micro"]["accuracy"], e["line_items"]["f1"] if e.get("line_items") else None,
                       rep["seconds_per_doc"].get(ds)] for ds, e in rep["datasets"].items()]))
    if rep["failed"]:
        md.append(f"\n{len(rep['failed'])} documents could not be read:\n\n")
        md.append(_table(["document", "error"], [[f["doc"], f["error"]] for f in rep["failed"][:20]]))
    md.append("\n" + _errors_md(rep["errors"]))
    md.append(_worst_md(rep["worst_documents"], ["doc", "dataset", "wrong", "fields_correct", "fields"]))
    return "".join(md)


def _worst_md(worst: Sequence[Mapping[str, Any]], cols: Sequence[str]) -> str:
    if not worst:
        return ""
    md = ["\n## Worst documents\n\n", _table(cols, [[w[c] for c in cols] for w in worst])]
    for w in worst:
        for path in w.get("overlays", []):
            md.append(f"\n![{w[cols[0]]}]({path})\n")
    return "".join(md)


# ============================================================================================
# entry points
# ============================================================================================


def _meta(name: str, model: Path, runtime: Any, data: dict[str, Any], started: float) -> dict[str, Any]:
    return {"name": name,
            "model": {"path": str(model), "name": runtime.name, "version": runtime.version,
                      "backend": runtime.backend, "quantized": runtime.quantized},
            "data": data, "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 2)}


def evaluate_factory(model: Path, data: Path, out: Path, *, split: str = "test", max_docs: int | None = None,
                     worst: int = 5, batch_size: int = 8, progress: bool = False,
                     backend: str | None = None) -> tuple[dict[str, Any], str]:
    """Evaluate a checkpoint on a factory dataset split; returns (report, one-line summary)."""
    from invoicegen.evaluation.factory import run_dataset
    from invoicegen.model.runtime import load_runtime

    started = time.perf_counter()
    runtime = load_runtime(model, backend=backend)
    evaluated = list(run_dataset(runtime, data, split, max_docs=max_docs, batch_size=batch_size,
                                 progress=progress))
    if not evaluated:
        raise ValueError(f"split {split!r} of {data} has no documents")
    analysis = analyse_docs(evaluated)
    n_pages = sum(len(d.pages) for d in evaluated)
    meta = _meta(out.name, model, runtime, {"path": str(data), "split": split, "documents": len(evaluated),
                                            "pages": n_pages,
                                            "words": sum(len(p.words) for d in evaluated for p in d.pages)},
                 started)
    rep = write_factory_report(analysis, out, meta, data_dir=data, worst=worst)
    return rep, summary_line(rep, out)


def evaluate_real(model: Path, real: Path, out: Path, *, gold: Path | None = None, datasets: Sequence[str] = (),
                  max_docs: int | None = None, worst: int = 5, ocr: str = "auto", progress: bool = False,
                  backend: str | None = None,
                  on_prediction: Callable[[Predicted], None] | None = None) -> tuple[dict[str, Any], str]:
    """Extract and score a folder of real documents; writes predictions.jsonl next to the report."""
    from invoicegen.evaluation.realdata import GOLD_FILE, load_jsonl, predict_documents, write_jsonl
    from invoicegen.extract.pipeline import ExtractOptions, Extractor
    from invoicegen.model.runtime import load_runtime

    started = time.perf_counter()
    gold_path = gold or real / GOLD_FILE
    gold_docs = load_jsonl(gold_path)
    if datasets:
        gold_docs = [g for g in gold_docs if g.get("dataset") in set(datasets)]
    if max_docs is not None:
        gold_docs = gold_docs[:max_docs]
    runtime = load_runtime(model, backend=backend)
    predicted = []
    # the model is what is evaluated: embedded e-invoice XML (zugferd) would score the XML reader
    options = ExtractOptions(ocr=ocr, embedded=False)
    for p in predict_documents(Extractor(runtime), real, gold_docs, options, progress=progress):
        predicted.append(p)
        if on_prediction is not None:
            on_prediction(p)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "predictions.jsonl", [p.line for p in predicted])
    analysis = analyse_real(predicted)
    meta = _meta(out.name, model, runtime, {"path": str(real), "gold": str(gold_path), "documents": len(predicted)},
                 started)
    rep = write_real_report(analysis, out, meta, root=real, worst=worst)
    return rep, summary_line(rep, out)


def summary_line(rep: Mapping[str, Any], out: Path) -> str:
    """The one line ``invoicegen evaluate`` prints."""
    if rep["type"] == "factory":
        ent, heads, f, li = rep["entities"]["micro"], rep["heads"], rep["fields"], rep["line_items"]
        acc = "–" if f["accuracy"] is None else f"{f['accuracy']:.4f}"
        return (f"{rep['name']}: {rep['data']['documents']} docs ({rep['data']['split']}) | entity F1 {ent['f1']:.4f} "
                f"| rows F1 {heads['table_row']['f1']:.4f} (decoded {heads['table_row_decoded']['f1']:.4f}) | cells F1 {heads['cell']['f1']:.4f} | fields {acc} "
                f"| line items F1 {li['f1']:.4f} | report {out / REPORT_MD}")
    li = rep.get("line_items")
    acc = rep["micro"]["accuracy"]
    return (f"{rep['name']}: {rep['data']['documents']} real docs | fields "
            f"{'–' if acc is None else f'{acc:.4f}'} ({rep['micro']['correct']}/{rep['micro']['n']})"
            + (f" | line items F1 {li['f1']:.4f}" if li else "") + f" | report {out / REPORT_MD}")
