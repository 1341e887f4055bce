"""OCR engines: both read the bundled scan with boxes where the words are printed, and real
receipts (SROIE) with a reasonable line recall. Kept to a few images: OCR costs seconds a page."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from invoicegen.document import load_document
from invoicegen.ocr import ENGINES, get_engine, resolve_engine_name
from invoicegen.ocr.base import split_line
from invoicegen.ocr.quality import levenshtein, read_sroie_lines, score_lines, summarize

SAMPLES = Path(__file__).resolve().parent.parent / "src" / "invoicegen" / "samples"


def test_engine_names_and_aliases() -> None:
    assert resolve_engine_name("paddleocr") == "rapidocr"  # the deployment guide's name
    assert resolve_engine_name("Tesseract") == "tesseract"
    with pytest.raises(ValueError, match="unknown OCR engine"):
        resolve_engine_name("easyocr")
    assert get_engine("tesseract") is get_engine("tesseract")  # models load once


def test_default_engine_follows_ocr_engine_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from invoicegen.ocr import default_engine_name

    monkeypatch.setenv("OCR_ENGINE", "tesseract")
    assert default_engine_name() == "tesseract"
    monkeypatch.delenv("OCR_ENGINE")
    assert default_engine_name() == "rapidocr"


def test_missing_tesseract_language_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCR_LANG", "eng+xxx")
    with pytest.raises(RuntimeError, match="xxx"):
        get_engine("tesseract")


def test_split_line_divides_the_box_by_characters() -> None:
    words = split_line("Total  12.00", (0, 0, 120, 10), 0.9)
    assert [w[0] for w in words] == ["Total", "12.00"]
    assert words[0][1] == (0, 0, 50, 10) and words[1][1] == (70, 0, 120, 10)
    assert split_line("   ", (0, 0, 10, 10), 1.0) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_reads_the_scanned_sample_where_the_words_are(engine: str) -> None:
    """Words OCRed from the scan land within a few points of the same words in the born-digital PDF
    (the scan is the PDF rendered at 150 dpi and tilted by 0.8 degrees)."""
    with load_document(SAMPLES / "sample_invoice.pdf") as pdf:
        truth = {w.text: w.bbox for w in pdf.pages[0].words}
    with load_document(SAMPLES / "sample_invoice_scan.png", ocr=engine) as scan:
        page = scan.pages[0]
        assert page.source == f"ocr:{engine}"
        found = {w.text: w for w in page.words}
    for token in ("Northwind", "15.03.2024", "PO-88213", "1,185.20", "1,410.39", "COBADEFFXXX"):
        assert token in found, f"{engine} missed {token!r}"
        x0, y0, x1, y1 = found[token].bbox
        tx0, ty0, tx1, ty1 = truth[token]
        assert abs((x0 + x1) / 2 - (tx0 + tx1) / 2) < 8 and abs((y0 + y1) / 2 - (ty0 + ty1) / 2) < 8, token
        assert 0 < found[token].confidence <= 1
    # boxes are axis-aligned and on the page
    assert all(0 <= w.bbox[0] <= w.bbox[2] <= page.width and 0 <= w.bbox[1] <= w.bbox[3] <= page.height
               for w in page.words)
    # no word holds a space: lines are split into words
    assert all(" " not in w.text for w in page.words)


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_on_a_blank_page_returns_no_words(engine: str) -> None:
    assert get_engine(engine).read(Image.new("RGB", (600, 400), "white")) == []


def test_quality_metrics() -> None:
    assert levenshtein("kitten", "sitting") == 3 and levenshtein("", "abc") == 3
    gt = [("TOTAL 9.00", (0, 0, 100, 10)), ("THANK YOU", (0, 40, 100, 50)), ("***", (0, 80, 100, 90))]
    words = [("9.00", (60, 1, 90, 9)), ("Total", (0, 1, 40, 9)), ("THANK", (0, 41, 50, 49)), ("异", (0, 81, 9, 89))]
    scores = score_lines(gt, words)
    assert [s.found for s in scores] == [True, False, False] and scores[2].ignored
    recall, cer = summarize(scores)
    assert recall == 0.5 and cer == pytest.approx(4 / 19)


@pytest.mark.realdata
@pytest.mark.parametrize(("engine", "min_recall"), [("rapidocr", 0.7), ("tesseract", 0.4)])
def test_sroie_receipts_line_recall(realdata: Path, engine: str, min_recall: float) -> None:
    """Real scanned receipts: share of ground-truth lines read (definition in ocr/quality.py).
    Thresholds sit ~0.1 under what each engine reaches on these three receipts."""
    root = realdata / "sroie_zzzdavid_subset"
    recalls = []
    for name in ("000", "001", "002"):
        with load_document(root / "img" / f"{name}.jpg", ocr=engine) as doc:
            page = doc.pages[0]
            scale = doc.page_image(0).width / page.width  # points -> the receipt's pixels
            words = [(w.text, tuple(v * scale for v in w.bbox)) for w in page.words]
        recall, _ = summarize(score_lines(read_sroie_lines(root / "box" / f"{name}.csv"), words))
        recalls.append(recall)
    assert sum(recalls) / len(recalls) >= min_recall, recalls
