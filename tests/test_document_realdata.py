"""Real born-digital PDFs read through their text layer agree with poppler's ``pdftotext -bbox``:
the same words (multiset per page) for >= 99 % of words, and overlapping boxes for matched words.
The files stay in the shared real-data folder; these tests skip when it is absent."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from invoicegen.document import load_document

pytestmark = pytest.mark.realdata

_WORD = re.compile(r'<word xMin="([-\d.]+)" yMin="([-\d.]+)" xMax="([-\d.]+)" yMax="([-\d.]+)">(.*?)</word>')


def pdftotext_pages(path: Path) -> list[list[tuple[str, tuple[float, ...]]]]:
    """Words per page from ``pdftotext -bbox -cropbox`` (points, top-left origin, crop box)."""
    out = subprocess.run(["pdftotext", "-q", "-bbox", "-cropbox", str(path), "-"], capture_output=True,
                         text=True, check=False, timeout=60).stdout
    return [[(html.unescape(m.group(5)), tuple(float(m.group(i)) for i in range(1, 5))) for m in _WORD.finditer(pg)]
            for pg in out.split("<page ")[1:]]


def born_digital_pdfs(realdata: Path) -> list[Path]:
    files = sorted((realdata / "zugferd_corpus").glob("*/*.pdf")) + sorted(
        (realdata / "fcc_adbuy_deepform" / "pdfs").glob("*.pdf"))
    if not files:
        pytest.skip("no PDFs in the real-data folder")
    return files


def compare(path: Path) -> tuple[int, int, int, int, int]:
    """(reference words, matched words, our words, matched unique words checked, boxes overlapping)."""
    ref_pages = pdftotext_pages(path)
    with load_document(path, ocr="none") as doc:
        ours = [[(w.text, w.bbox) for w in p.words] for p in doc.pages]
        assert all(p.source == "pdf-text" for p in doc.pages)
    assert len(ours) == len(ref_pages)
    n_ref = n_match = n_ours = checked = overlapping = 0
    for ref, mine in zip(ref_pages, ours, strict=True):
        cr, cm = Counter(t for t, _ in ref), Counter(t for t, _ in mine)
        n_ref += sum(cr.values())
        n_ours += sum(cm.values())
        n_match += sum((cr & cm).values())
        my_boxes = {t: b for t, b in mine if cm[t] == 1}
        for text, rb in ref:
            if cr[text] == 1 and text in my_boxes:
                mb = my_boxes[text]
                checked += 1
                overlapping += min(rb[2], mb[2]) > max(rb[0], mb[0]) and min(rb[3], mb[3]) > max(rb[1], mb[1])
    return n_ref, n_match, n_ours, checked, overlapping


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
def test_text_layer_words_match_pdftotext(realdata: Path) -> None:
    totals: dict[str, list[int]] = {}
    for path in born_digital_pdfs(realdata):
        group = path.parts[len(realdata.parts)]
        counts = compare(path)
        totals.setdefault(group, [0] * 5)
        totals[group] = [a + b for a, b in zip(totals[group], counts, strict=True)]
    all_counts = [sum(v[i] for v in totals.values()) for i in range(5)]
    n_ref, n_match, n_ours, checked, overlapping = all_counts
    report = {g: f"{v[1] / max(v[0], 1):.4f}" for g, v in totals.items()}
    # same words: matched share of the larger side (extra words of ours count as misses too)
    assert n_match / max(n_ref, n_ours) >= 0.99, report
    for group, v in totals.items():
        assert v[1] / max(v[0], v[2]) >= 0.98, (group, report)
    assert checked > 5000
    assert overlapping / checked >= 0.995


def test_rotated_pages_are_read_in_display_orientation(realdata: Path) -> None:
    """Pages with /Rotate 90 come out landscape-as-displayed, with boxes on the page and the same
    words as pdftotext."""
    import pypdfium2 as pdfium

    rotated = []
    for path in born_digital_pdfs(realdata):
        pdf = pdfium.PdfDocument(str(path))
        try:
            if pdf[0].get_rotation() in (90, 270):
                rotated.append(path)
        finally:
            pdf.close()
        if len(rotated) >= 2:
            break
    if not rotated:
        pytest.skip("no rotated page in the real data")
    for path in rotated:
        n_ref, n_match, n_ours, checked, overlapping = compare(path)
        assert n_match / max(n_ref, n_ours) >= 0.98
        assert overlapping == checked
        with load_document(path, ocr="none") as doc:
            page = doc.pages[0]
            image = doc.page_image(0, dpi=36)
            assert (page.width > page.height) == (image.width > image.height)
            assert all(0 <= w.bbox[0] <= w.bbox[2] <= page.width and 0 <= w.bbox[1] <= w.bbox[3] <= page.height
                       for w in page.words)


def test_text_layer_reading_is_fast(realdata: Path) -> None:
    """The bar is 40 pages/s on 2 shared cores (benchmarks/bench_read.py measures it properly);
    this only guards against an order-of-magnitude regression."""
    import time

    files = born_digital_pdfs(realdata)[:20]
    pages = 0
    start = time.perf_counter()
    for path in files:
        with load_document(path, ocr="none") as doc:
            pages += len(doc.pages)
    assert pages / (time.perf_counter() - start) > 10
