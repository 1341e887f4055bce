"""Extract every document of the real dev sets and score it with ../shared/realdata/score.py.

Usage: python benchmarks/bench_realdata.py [--model DIR] [--realdata DIR] [--out preds.jsonl]
         [--datasets zugferd_corpus,fcc_adbuy_deepform,...] [--ocr auto]
Writes predictions in score.py's format (through ``invoicegen.evaluation.realdata``, as
``invoicegen evaluate --real`` does) and prints the reference scorer's per-dataset / per-field
table. The model never reads the XML embedded in ZUGFeRD PDFs, so its zugferd numbers are model-only."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from invoicegen.evaluation.realdata import GOLD_FILE, load_jsonl, predict_documents, write_jsonl
from invoicegen.extract.pipeline import ExtractOptions, Extractor

DEFAULT_REALDATA = Path(os.environ.get("INVOICEGEN_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model")
    ap.add_argument("--realdata", type=Path, default=DEFAULT_REALDATA)
    ap.add_argument("--out", type=Path, default=Path("reports/realdata/predictions.jsonl"))
    ap.add_argument("--datasets", default="")
    ap.add_argument("--ocr", default="auto")
    args = ap.parse_args()
    gold_path = args.realdata / GOLD_FILE
    if not gold_path.exists():
        sys.exit(f"no real data at {args.realdata}")
    gold = load_jsonl(gold_path)
    wanted = set(filter(None, args.datasets.split(",")))
    if wanted:
        gold = [g for g in gold if g["dataset"] in wanted]
    extractor = Extractor.load(args.model)
    seconds: dict[str, list[float]] = {}

    def lines() -> Iterator[dict]:
        for p in predict_documents(extractor, args.realdata, gold, ExtractOptions(ocr=args.ocr), progress=True):
            seconds.setdefault(p.gold["dataset"], []).append(p.seconds)
            yield p.line

    write_jsonl(args.out, lines())  # written as the documents come, so a long run keeps what it did
    for ds, s in seconds.items():
        print(f"{ds}: {len(s)} docs, median {statistics.median(s):.2f} s/doc")
    gold_sub = write_jsonl(args.out.with_name("gold_subset.jsonl"), gold)
    subprocess.run([sys.executable, str(args.realdata / "score.py"), str(gold_sub), str(args.out),
                    "--details", str(args.out.with_name("details.jsonl"))], check=True)


if __name__ == "__main__":
    main()
