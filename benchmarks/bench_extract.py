"""End-to-end extraction speed: p50/p95 latency of one born-digital page and one scanned page, and
pages/s for a batch of born-digital documents through ``Extractor.extract_many``.

Usage: python benchmarks/bench_extract.py [--model DIR] [--repeats 30] [--batch-dir DIR] [--backend auto]
The bar for a one-page born-digital PDF is <= 150 ms p50 on 2 cores."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from invoicegen.document import load_document
from invoicegen.extract.pipeline import Extractor, default_model_path
from invoicegen.model.runtime import load_runtime

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "invoicegen" / "samples"


def percentiles(values: list[float]) -> tuple[float, float]:
    s = sorted(values)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--backend", default=None)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--scan-repeats", type=int, default=5)
    ap.add_argument("--batch-dir", type=Path, default=None, help="Directory of PDFs for the batch figure.")
    ap.add_argument("--batch-docs", type=int, default=40)
    args = ap.parse_args()
    extractor = Extractor(load_runtime(args.model or default_model_path(), backend=args.backend))
    print(f"model {extractor.runtime.name}, backend {extractor.runtime.backend}"
          f"{' int8' if extractor.runtime.quantized else ''}")

    for label, path, repeats in (("born-digital page", SAMPLES / "sample_invoice.pdf", args.repeats),
                                 ("scanned page (OCR)", SAMPLES / "sample_invoice_scan.png", args.scan_repeats)):
        extractor.extract(path)
        times, stages = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            r = extractor.extract(path)
            times.append((time.perf_counter() - t) * 1000)
            stages.append(r.timings_ms)
        p50, p95 = percentiles(times)
        stage = {k: statistics.median(s.get(k, 0.0) for s in stages) for k in ("load", "ocr", "model", "postprocess")}
        print(f"{label}: p50 {p50:.0f} ms, p95 {p95:.0f} ms  (median stages ms: "
              + ", ".join(f"{k} {v:.0f}" for k, v in stage.items()) + ")")

    if args.batch_dir:
        files = sorted(args.batch_dir.rglob("*.pdf"))[: args.batch_docs]
        t = time.perf_counter()
        pages = 0
        for s in range(0, len(files), 8):
            docs = [load_document(f) for f in files[s:s + 8]]
            pages += sum(len(d) for d in docs)
            extractor.extract_many(docs)
            for d in docs:
                d.close()
        secs = time.perf_counter() - t
        print(f"batch: {len(files)} documents, {pages} pages in {secs:.1f} s = {pages / secs:.1f} pages/s, "
              f"{len(files) / secs:.1f} docs/s")


if __name__ == "__main__":
    main()
