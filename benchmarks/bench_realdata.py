"""Extract every document of the real dev sets and score it with ../shared/realdata/score.py.

Usage: python benchmarks/bench_realdata.py [--model DIR] [--realdata DIR] [--out preds.jsonl]
         [--datasets zugferd_corpus,fcc_adbuy_deepform,...] [--ocr auto]
Writes predictions in score.py's format (through ``invoicegen.evaluation.realdata``, as
``invoicegen evaluate --real`` does) and prints the reference scorer's per-dataset / per-field
table, twice where it matters, each run labelled:

- MODEL ONLY: every selected document with embedded XML reading off (``--out``). These are the
  numbers ../shared/realdata/INDEX.md asks for: the model reading the page.
- EMBEDDED XML: the zugferd_corpus documents again with the default pipeline, which reads the
  e-invoice XML the PDFs carry (``<out>_embedded.jsonl``). Near-exact by construction; it measures
  the XML reader, not the model.
"""

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

ZUGFERD = "zugferd_corpus"
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
    run("MODEL ONLY (embedded XML off)", extractor, args.realdata, gold,
        ExtractOptions(ocr=args.ocr, embedded=False), args.out)
    zugferd = [g for g in gold if g["dataset"] == ZUGFERD]
    if zugferd:
        run(f"EMBEDDED XML ({ZUGFERD} read from its e-invoice XML)", extractor, args.realdata, zugferd,
            ExtractOptions(ocr=args.ocr, embedded=True), args.out.with_name(f"{args.out.stem}_embedded.jsonl"))


def run(label: str, extractor: Extractor, realdata: Path, gold: list[dict], options: ExtractOptions,
        out: Path) -> None:
    """Extract the gold documents with ``options``, write the predictions to ``out`` and score them."""
    print(f"\n===== {label}: {len(gold)} docs -> {out} =====", flush=True)
    seconds: dict[str, list[float]] = {}
    sources: dict[str, int] = {}

    def lines() -> Iterator[dict]:
        for p in predict_documents(extractor, realdata, gold, options, progress=True):
            seconds.setdefault(p.gold["dataset"], []).append(p.seconds)
            if p.result is not None:
                sources[p.result.source] = sources.get(p.result.source, 0) + 1
            yield p.line

    write_jsonl(out, lines())  # written as the documents come, so a long run keeps what it did
    for ds, s in seconds.items():
        print(f"{ds}: {len(s)} docs, median {statistics.median(s):.2f} s/doc")
    print("results from: " + ", ".join(f"{k} {v}" for k, v in sorted(sources.items())))
    gold_sub = write_jsonl(out.with_name(f"{out.stem}_gold.jsonl"), gold)
    subprocess.run([sys.executable, str(realdata / "score.py"), str(gold_sub), str(out),
                    "--details", str(out.with_name(f"{out.stem}_details.jsonl"))], check=True)

if __name__ == "__main__":
    main()
