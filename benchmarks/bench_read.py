"""Benchmark of the reading stage (``load_document``): speed of the PDF text layer, speed of each
OCR engine, and OCR quality on the SROIE development receipts.

    .venv/bin/python benchmarks/bench_read.py            # everything, a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_read.py --receipts 10 --engines tesseract

Measures
* text layer: pages/s over the real born-digital PDFs (zugferd_corpus, fcc_adbuy_deepform), one
  process, files read from disk each time; the median of ``--runs`` passes (the bar: >= 40 pages/s).
* OCR speed: seconds per page for each engine on the bundled A4 scan (1241 x 1754 px, median of 3)
  and per SROIE receipt (median); engines are warmed up first so model loading is not counted.
* OCR quality on the SROIE receipts: ground-truth line recall and character error rate, as defined
  in ``invoicegen.ocr.quality`` (a GT line is found when the OCR words inside its box read the
  same text, or >= 0.9 similar, after whitespace normalisation and case folding; CER is the
  Levenshtein distance per GT line over the GT characters). Reported micro (all lines pooled) and
  as the median over receipts.

The real data is found via ``INVOICEGEN_REALDATA`` or ``<repo>/../shared/realdata``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

from invoicegen.document import load_document  # noqa: E402
from invoicegen.ocr import ENGINES, get_engine  # noqa: E402
from invoicegen.ocr.quality import LineScore, read_sroie_lines, score_lines, summarize  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SCAN = REPO / "src" / "invoicegen" / "samples" / "sample_invoice_scan.png"


def find_realdata() -> Path:
    env = os.environ.get("INVOICEGEN_REALDATA")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "realdata"]:
        if candidate.is_dir():
            return candidate
    sys.exit("real data not found: set INVOICEGEN_REALDATA or provide <repo>/../shared/realdata")


def bench_text_layer(realdata: Path, runs: int) -> dict[str, float]:
    files = sorted((realdata / "zugferd_corpus").glob("*/*.pdf")) + sorted(
        (realdata / "fcc_adbuy_deepform" / "pdfs").glob("*.pdf"))
    rates, pages = [], 0
    for _ in range(runs):
        pages = 0
        start = time.perf_counter()
        for path in files:
            with load_document(path, ocr="none") as doc:
                pages += len(doc.pages)
        rates.append(pages / (time.perf_counter() - start))
    return {"files": len(files), "pages": pages, "pages_per_s_median": statistics.median(rates),
            "pages_per_s_runs": [round(r, 1) for r in rates], "ms_per_page": 1000 / statistics.median(rates)}


def bench_scan_speed(engine: str, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        with load_document(SAMPLE_SCAN, ocr=engine):
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_sroie(realdata: Path, engine: str, limit: int) -> dict[str, object]:
    root = realdata / "sroie_zzzdavid_subset"
    images = sorted((root / "img").glob("*.jpg"))[:limit]
    all_scores: list[LineScore] = []
    per_receipt, seconds = [], []
    for img in images:
        start = time.perf_counter()
        with load_document(img, ocr=engine) as doc:
            seconds.append(time.perf_counter() - start)
            page = doc.pages[0]
            scale = doc.page_image(0).width / page.width
            words = [(w.text, (w.bbox[0] * scale, w.bbox[1] * scale, w.bbox[2] * scale, w.bbox[3] * scale))
                     for w in page.words]
        scores = score_lines(read_sroie_lines(root / "box" / f"{img.stem}.csv"), words)
        all_scores.extend(scores)
        per_receipt.append(summarize(scores))
    recall, cer = summarize(all_scores)
    return {
        "receipts": len(images),
        "gt_lines": sum(1 for s in all_scores if s.gt and not s.ignored),
        "line_recall": recall,
        "cer": cer,
        "line_recall_median": statistics.median(r for r, _ in per_receipt),
        "cer_median": statistics.median(c for _, c in per_receipt),
        "s_per_receipt_median": statistics.median(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="passes over the PDFs for the text-layer rate")
    parser.add_argument("--receipts", type=int, default=75, help="SROIE receipts to OCR per engine (0: speed only)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated OCR engines")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = parser.parse_args()
    realdata = find_realdata()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    results: dict[str, object] = {"cpus": os.cpu_count(), "load_avg_1min_at_start": os.getloadavg()[0]}

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work inflates times)")
    text = bench_text_layer(realdata, args.runs)
    results["text_layer"] = text
    print(f"text layer: {text['pages_per_s_median']:.1f} pages/s median of {args.runs} runs "
          f"({text['ms_per_page']:.1f} ms/page; {text['pages']} pages in {text['files']} PDFs; runs "
          f"{text['pages_per_s_runs']})  bar >= 40: {'ok' if text['pages_per_s_median'] >= 40 else 'MISSED'}")

    ocr: dict[str, dict[str, object]] = {}
    for engine in engines:
        get_engine(engine).read(load_document(SAMPLE_SCAN, ocr="none").page_image(0).crop((0, 0, 600, 300)))
        scan_s = bench_scan_speed(engine)
        if args.receipts <= 0:  # speed only
            ocr[engine] = {"s_per_a4_page_150dpi": scan_s}
            print(f"{engine:>10}: {scan_s:.2f} s/A4 page (150 dpi)")
            continue
        sroie = bench_sroie(realdata, engine, args.receipts)
        ocr[engine] = {"s_per_a4_page_150dpi": scan_s, **sroie}
        print(f"{engine:>10}: {scan_s:.2f} s/A4 page (150 dpi), {sroie['s_per_receipt_median']:.2f} s/receipt; "
              f"SROIE {sroie['receipts']} receipts, {sroie['gt_lines']} lines: line recall "
              f"{sroie['line_recall']:.3f} (median {sroie['line_recall_median']:.3f}), CER {sroie['cer']:.3f} "
              f"(median {sroie['cer_median']:.3f})")
    results["ocr"] = ocr
    if len(ocr) == 2 and args.receipts > 0:
        a, b = engines
        ra, rb = ocr[a], ocr[b]
        print(f"ratios {a}/{b}: speed (s/A4 page) {float(ra['s_per_a4_page_150dpi']) / float(rb['s_per_a4_page_150dpi']):.2f}x, "
              f"line recall {float(ra['line_recall']) / max(float(rb['line_recall']), 1e-9):.2f}x, "
              f"CER {float(ra['cer']) / max(float(rb['cer']), 1e-9):.2f}x")
        best = min(ocr, key=lambda e: float(ocr[e]["cer"]))  # type: ignore[arg-type]
        print(f"lowest CER: {best}")
        results["lowest_cer_engine"] = best
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
