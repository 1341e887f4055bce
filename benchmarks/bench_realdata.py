"""Extract every document of the real dev sets and score it with ../shared/realdata/score.py.

Usage: python benchmarks/bench_realdata.py [--model DIR] [--realdata DIR] [--out preds.jsonl]
         [--datasets zugferd_corpus,fcc_adbuy_deepform,...] [--ocr auto]
Writes predictions in score.py's format and prints its per-dataset / per-field table. The model
never reads the XML embedded in ZUGFeRD PDFs, so its zugferd numbers are model-only."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

from invoicegen.errors import InvoiceGenError
from invoicegen.extract.pipeline import ExtractOptions, Extractor

DEFAULT_REALDATA = Path(os.environ.get("INVOICEGEN_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))


def prediction(doc: str, result) -> dict:  # type: ignore[no-untyped-def]
    fields = {k: (f.value if f.value is not None else f.text) for k, f in result.fields.items()}
    items = [{k: getattr(it, k) for k in ("description", "quantity", "unit_price", "amount")}
             for it in result.line_items]
    return {"doc": doc, "fields": fields, "line_items": items}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model")
    ap.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    ap.add_argument("--out", type=Path, default=Path("reports/realdata/predictions.jsonl"))
    ap.add_argument("--datasets", default="")
    ap.add_argument("--ocr", default="auto")
    args = ap.parse_args()
    gold_path = args.realdata / "gold_dev.jsonl"
    if not gold_path.exists():
        sys.exit(f"no real data at {args.realdata}")
    gold = [json.loads(line) for line in gold_path.read_text().splitlines() if line.strip()]
    wanted = set(filter(None, args.datasets.split(",")))
    if wanted:
        gold = [g for g in gold if g["dataset"] in wanted]
    extractor = Extractor.load(args.model)
    options = ExtractOptions(ocr=args.ocr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, list[float]] = {}
    with open(args.out, "w") as fh:
        for g in tqdm(gold, desc="extract"):
            t = time.perf_counter()
            try:
                pred = prediction(g["doc"], extractor.extract(args.realdata / g["doc"], options=options))
            except InvoiceGenError as exc:
                pred = {"doc": g["doc"], "fields": {}, "line_items": [], "error": str(exc)}
            seconds.setdefault(g["dataset"], []).append(time.perf_counter() - t)
            fh.write(json.dumps(pred) + "\n")
    for ds, s in seconds.items():
        print(f"{ds}: {len(s)} docs, median {statistics.median(s):.2f} s/doc")
    gold_sub = args.out.with_name("gold_subset.jsonl")
    gold_sub.write_text("".join(json.dumps(g) + "\n" for g in gold))
    subprocess.run([sys.executable, str(args.realdata / "score.py"), str(gold_sub), str(args.out),
                    "--details", str(args.out.with_name("details.jsonl"))], check=True)


if __name__ == "__main__":
    main()
