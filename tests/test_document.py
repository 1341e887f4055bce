"""load_document: bad input fails fast with a typed error; good input gives words with boxes in
PDF points (top-left origin), page images on demand. Only bundled or generated files here; the
real-data comparisons live in test_document_realdata.py."""

from __future__ import annotations

import io
import random
import time
from pathlib import Path

import pytest
from PIL import Image

from invoicegen.document import (
    Limits,
    LoadedDocument,
    load_document,
    sniff_type,
)
from invoicegen.errors import (
    CorruptFileError,
    EmptyFileError,
    EncryptedPDFError,
    FileTooLargeError,
    ImageTooLargeError,
    InvoiceGenError,
    PageTimeoutError,
    TooManyPagesError,
    UnsupportedFileType,
)
from pdf_factory import blank_pdf, encrypted_pdf, no_unicode_pdf, png_bomb, scanned_pdf

SAMPLES = Path(__file__).resolve().parent.parent / "src" / "invoicegen" / "samples"
SAMPLE_PDF = SAMPLES / "sample_invoice.pdf"
SAMPLE_SCAN = SAMPLES / "sample_invoice_scan.png"


def _png(image: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), "white").save(buf, format="GIF")
    return buf.getvalue()


def _tiff_frames(n: int) -> bytes:
    buf = io.BytesIO()
    frames = [Image.new("L", (50, 40), 255) for _ in range(n)]
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _texts(doc: LoadedDocument, page: int = 0) -> list[str]:
    return [w.text for w in doc.pages[page].words]


# ------------------------------------------------------------------------------------------------
# Bad input: one typed error each, with a message that says what is wrong
# ------------------------------------------------------------------------------------------------

BAD_INPUTS = [
    # id, bytes factory, load kwargs, error type, words the message must contain, http status
    ("empty", lambda: b"", {}, EmptyFileError, ["empty"], 422),
    ("random-bytes", lambda: random.Random(1).randbytes(4096), {}, UnsupportedFileType, ["unsupported"], 415),
    ("gif", _gif, {}, UnsupportedFileType, ["GIF"], 415),
    ("html", lambda: b"<!doctype html><html><body>Invoice</body></html>", {}, UnsupportedFileType, ["HTML"], 415),
    ("truncated-pdf", lambda: SAMPLE_PDF.read_bytes()[: SAMPLE_PDF.stat().st_size // 2], {}, CorruptFileError,
     ["truncated"], 422),
    ("garbage-pdf", lambda: b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage\n%%EOF\n", {}, CorruptFileError,
     ["corrupt"], 422),
    ("truncated-png", lambda: _png(Image.new("RGB", (300, 300), "red"))[:200], {"ocr": "none"}, CorruptFileError,
     ["corrupt"], 422),
    ("encrypted-no-password", lambda: encrypted_pdf("s3cret"), {}, EncryptedPDFError, ["password"], 422),
    ("encrypted-wrong-password", lambda: encrypted_pdf("s3cret"), {"password": "nope"}, EncryptedPDFError,
     ["wrong"], 422),
    ("too-many-pages", lambda: blank_pdf(6), {"limits": Limits(max_pages=5)}, TooManyPagesError,
     ["6 pages", "limit of 5"], 413),
    ("too-many-bytes", lambda: b"%PDF-1.4\n" + bytes(20_471), {"limits": Limits(max_bytes=10_240)},
     FileTooLargeError, ["20.0 KB", "limit of 10.0 KB"], 413),
    ("tiff-too-many-frames", lambda: _tiff_frames(3), {"ocr": "none", "limits": Limits(max_pages=2)},
     TooManyPagesError, ["3 pages"], 413),
    ("png-bomb-30000x30000", png_bomb, {"ocr": "none"}, ImageTooLargeError, ["megapixels"], 413),
    ("over-pixel-limit", lambda: _png(Image.new("1", (2000, 1000))), {"ocr": "none",
     "limits": Limits(max_pixels=1_000_000)}, ImageTooLargeError, ["2000x1000", "2.0 megapixels"], 413),
]


@pytest.mark.parametrize(("data", "kwargs", "error", "words", "status"),
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS])
def test_bad_input_raises_typed_error(data, kwargs, error, words, status) -> None:
    with pytest.raises(error) as info:
        load_document(data(), filename="upload.bin", **kwargs)
    err = info.value
    assert isinstance(err, InvoiceGenError) and isinstance(err, ValueError)
    assert err.http_status == status
    message = str(err)
    assert message.startswith("upload.bin"), message  # says which file
    for word in words:
        assert word in message, message
    assert "\n" not in message


def test_bomb_is_refused_quickly_without_decoding() -> None:
    data = png_bomb()
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError):
        load_document(data, ocr="none")
    assert time.perf_counter() - start < 1.0  # decoding 900 megapixels would take far longer


def test_size_limit_checked_before_reading_a_path(tmp_path: Path) -> None:
    big = tmp_path / "big.pdf"
    big.write_bytes(SAMPLE_PDF.read_bytes())
    with pytest.raises(FileTooLargeError):
        load_document(big, limits=Limits(max_bytes=1000))


def test_missing_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_document(tmp_path / "nope.pdf")


def test_unknown_ocr_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="ocr must be one of"):
        load_document(SAMPLE_PDF, ocr="easyocr")


def test_errors_survive_pickling() -> None:
    import pickle

    err = TooManyPagesError("a.pdf", 60, 50)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is TooManyPagesError and str(back) == str(err) and back.http_status == 413


# ------------------------------------------------------------------------------------------------
# Good input
# ------------------------------------------------------------------------------------------------


def test_sample_pdf_words_and_boxes() -> None:
    with load_document(SAMPLE_PDF) as doc:
        d = doc.document
        assert d.media_type == "application/pdf" and d.source == "pdf-text" and len(d.pages) == 1
        page = d.pages[0]
        assert page.width == pytest.approx(595.28, abs=0.01) and page.height == pytest.approx(841.89, abs=0.01)
        words = {w.text: w for w in page.words}
        for token in ("INV-2024-0117", "15.03.2024", "1,410.39", "COBADEFFXXX", "Northwind"):
            assert token in words
        # top-left origin: the title is near the top, the footer near the bottom
        assert words["INVOICE"].bbox[1] < 100 and words["Petersen"].bbox[1] > 700
        for w in page.words:
            x0, y0, x1, y1 = w.bbox
            assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height
        # reading order: label before value on a line, lines top to bottom
        texts = [w.text for w in page.words]
        assert texts.index("Subtotal") < texts.index("1,185.20") < texts.index("Total") < texts.index("1,410.39")
        assert " ".join(texts).count("Invoice No. INV-2024-0117") == 1


def test_word_boxes_cover_the_ink_in_the_rendered_page() -> None:
    """Boxes in points map to the page image with dpi/72 and land on the printed word."""
    with load_document(SAMPLE_PDF, dpi=100) as doc:
        page = doc.pages[0]
        image = doc.page_image(0).convert("L")
        scale = image.width / page.width
        assert scale == pytest.approx(100 / 72, rel=0.01)
        for w in page.words[:40]:
            x0, y0, x1, y1 = (round(v * scale) for v in w.bbox)
            crop = image.crop((x0, y0, x1 + 1, y1 + 1))
            assert crop.getextrema()[0] < 160, f"no ink under {w.text!r} at {w.bbox}"


def test_wrong_extension_with_right_bytes_still_loads(tmp_path: Path) -> None:
    disguised_pdf = tmp_path / "invoice.png"
    disguised_pdf.write_bytes(SAMPLE_PDF.read_bytes())
    disguised_png = tmp_path / "scan.pdf"
    disguised_png.write_bytes(SAMPLE_SCAN.read_bytes())
    with load_document(disguised_pdf) as doc:
        assert doc.document.media_type == "application/pdf" and "INV-2024-0117" in _texts(doc)
    with load_document(disguised_png, ocr="none") as doc:
        assert doc.document.media_type == "image/png" and doc.pages[0].source == "none"


def test_password_protected_pdf_loads_with_the_right_password() -> None:
    with load_document(encrypted_pdf("s3cret"), password="s3cret") as doc:
        assert _texts(doc) == ["Secret", "invoice", "42"]
        assert doc.pages[0].source == "pdf-text"


def test_sniffing_ignores_names_and_knows_the_formats() -> None:
    assert sniff_type(SAMPLE_PDF.read_bytes()) == "pdf"
    assert sniff_type(SAMPLE_SCAN.read_bytes()) == "png"
    assert sniff_type(b"  junk before header %PDF-1.4 ...") == "pdf"
    for fmt, kind in (("JPEG", "jpeg"), ("TIFF", "tiff"), ("WEBP", "webp"), ("BMP", "bmp")):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, format=fmt)
        assert sniff_type(buf.getvalue()) == kind
    assert sniff_type(_gif()) is None


def test_exif_orientation_is_applied_before_ocr(tmp_path: Path) -> None:
    """A phone photo stored sideways with an EXIF 'rotate 90' tag is read upright."""
    scan = Image.open(SAMPLE_SCAN).convert("L")
    sideways = scan.transpose(Image.Transpose.ROTATE_90)  # what the camera stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "photo.jpg"
    sideways.save(path, format="JPEG", quality=90, exif=exif, dpi=(150, 150))
    with load_document(path, ocr="tesseract") as doc:
        page = doc.pages[0]
        assert page.height > page.width  # portrait again
        assert doc.page_image(0).size == scan.size
        text = " ".join(_texts(doc))
        assert "INVOICE" in text and "INV-2024-0117" in text


def test_multipage_tiff_gives_one_page_per_frame() -> None:
    scan = Image.open(SAMPLE_SCAN).convert("L")
    top = scan.crop((0, 0, scan.width, 700))
    bottom = scan.crop((0, 900, scan.width, 1300))
    buf = io.BytesIO()
    top.save(buf, format="TIFF", save_all=True, append_images=[bottom], compression="tiff_deflate",
             dpi=(150, 150))
    with load_document(buf.getvalue(), filename="two.tif", ocr="tesseract") as doc:
        assert doc.document.media_type == "image/tiff"
        assert [p.index for p in doc.pages] == [0, 1]
        assert doc.page_image(1).size == bottom.size
        assert doc.pages[1].height == pytest.approx(400 * 72 / 150, abs=0.5)
        assert "INVOICE" in _texts(doc, 0) and "INVOICE" not in _texts(doc, 1)
        assert "1,410.39" in _texts(doc, 1)


@pytest.mark.parametrize(("fmt", "media_type"), [("WEBP", "image/webp"), ("BMP", "image/bmp"),
                                                  ("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_every_image_format_loads(fmt: str, media_type: str) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buf, format=fmt)
    with load_document(buf.getvalue(), ocr="none", dpi=100) as doc:
        assert doc.document.media_type == media_type
        assert doc.page_image(0).size == (300, 200)
        assert doc.pages[0].width == pytest.approx(300 * 72 / 100, abs=0.01)  # no dpi stated: the given one


def test_images_without_ocr_have_pages_but_no_words() -> None:
    with load_document(SAMPLE_SCAN, ocr="none") as doc:
        page = doc.pages[0]
        assert page.words == [] and page.source == "none"
        assert page.width == pytest.approx(1241 * 72 / 150, abs=0.5)  # the PNG states 150 dpi


def test_transparent_png_is_put_on_white_paper() -> None:
    rgba = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # fully transparent black
    with load_document(_png(rgba), ocr="none") as doc:
        assert doc.page_image(0).getpixel((5, 5)) == (255, 255, 255)


def test_page_images_are_lazy_cached_and_freed_on_close() -> None:
    doc = load_document(SAMPLE_PDF, dpi=100)
    first = doc.page_image(0)
    assert doc.page_image(0) is first  # cached
    assert first.size == (827, 1170) and first.mode == "RGB" and first.info["dpi"] == (100, 100)
    small = doc.page_image(0, dpi=50)
    assert small.size == (414, 585)
    with pytest.raises(IndexError):
        doc.page_image(1)
    doc.close()
    doc.close()  # idempotent
    with pytest.raises(RuntimeError):
        doc.page_image(0)


def test_forced_ocr_on_a_pdf_with_text(monkeypatch: pytest.MonkeyPatch) -> None:
    with load_document(SAMPLE_PDF, ocr="tesseract") as doc:
        page = doc.pages[0]
        assert page.source == "ocr:tesseract"
        assert page.width == pytest.approx(595.28, abs=0.5)
        assert "INV-2024-0117" in " ".join(_texts(doc))


@pytest.mark.parametrize("stamp", [None, "Received 2024-03-18"])
def test_scanned_pdf_goes_to_ocr_in_auto_mode(monkeypatch: pytest.MonkeyPatch, stamp: str | None) -> None:
    """A PDF page that is one big image, with no text or only a small stamp, is OCRed; with
    ocr="none" it keeps its (empty or tiny) text layer."""
    monkeypatch.setenv("OCR_ENGINE", "tesseract")  # the default engine, made fast for the test
    data = scanned_pdf(str(SAMPLE_SCAN), stamp=stamp)
    with load_document(data, filename="scan.pdf") as doc:
        page = doc.pages[0]
        assert page.source == "ocr:tesseract"
        assert page.width == pytest.approx(595.7, abs=0.5)
        text = " ".join(_texts(doc))
        assert "INVOICE" in text and "1,410.39" in text
    with load_document(data, ocr="none") as doc:
        assert doc.pages[0].source == "pdf-text"
        assert " ".join(_texts(doc)) == (stamp or "")


def test_garbage_text_layer_goes_to_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Characters without a Unicode mapping are not text a model can use: OCR the page instead."""
    monkeypatch.setenv("OCR_ENGINE", "tesseract")
    with load_document(no_unicode_pdf()) as doc:
        assert doc.pages[0].source == "ocr:tesseract"
    with load_document(no_unicode_pdf(), ocr="none") as doc:
        assert doc.pages[0].source == "pdf-text" and doc.pages[0].words  # kept when OCR is off


def test_text_layer_pages_are_timed_too() -> None:
    with pytest.raises(PageTimeoutError, match="text layer"):
        load_document(SAMPLE_PDF, limits=Limits(page_timeout_s=0.0))


def test_rendering_respects_the_pixel_limit() -> None:
    with pytest.raises(ImageTooLargeError):
        load_document(SAMPLE_PDF, ocr="tesseract", limits=Limits(max_pixels=500_000))


class _SlowEngine:
    name = "slow"

    def read(self, image: Image.Image, *, timeout_s: float | None = None) -> list:
        time.sleep(0.3)
        return []


def test_slow_ocr_page_raises_page_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import invoicegen.document as document

    monkeypatch.setattr(document, "_engine_for", lambda name: _SlowEngine())
    with pytest.raises(PageTimeoutError) as info:
        load_document(SAMPLE_SCAN, limits=Limits(page_timeout_s=0.1))
    assert info.value.http_status == 504 and "page 1" in str(info.value)


def test_tesseract_stops_at_its_deadline() -> None:
    from invoicegen.ocr.tesseract import TesseractEngine

    engine = TesseractEngine()
    image = Image.open(SAMPLE_SCAN).convert("RGB")
    start = time.perf_counter()
    with pytest.raises(TimeoutError):
        engine.read(image, timeout_s=0.01)
    assert time.perf_counter() - start < 1.0
    assert engine.read(image.crop((0, 0, 700, 300)), timeout_s=30)  # still usable afterwards


# ------------------------------------------------------------------------------------------------
# Threads
# ------------------------------------------------------------------------------------------------


def test_concurrent_loads_from_threads_agree() -> None:
    """PDFium is not thread-safe; the module lock makes parallel requests (API threads) safe."""
    from concurrent.futures import ThreadPoolExecutor

    def job(_: int) -> tuple[tuple[str, ...], tuple[int, int]]:
        with load_document(SAMPLE_PDF) as doc:
            return tuple(_texts(doc)), doc.page_image(0, dpi=40).size

    with ThreadPoolExecutor(4) as pool:
        results = set(pool.map(job, range(12)))
    assert len(results) == 1


def test_unclosed_document_releases_the_pdf_when_collected() -> None:
    import gc

    doc = load_document(SAMPLE_PDF)
    backend = doc._backend
    del doc
    gc.collect()
    assert backend._pdf is None


def test_truncated_image_is_refused_even_after_weasyprint_was_imported() -> None:
    """WeasyPrint flips Pillow's LOAD_TRUNCATED_IMAGES on import; uploads must not be affected."""
    import io

    import weasyprint  # noqa: F401
    from PIL import Image

    from invoicegen.document import load_document
    from invoicegen.errors import CorruptFileError

    buf = io.BytesIO()
    Image.new("RGB", (400, 300), "white").save(buf, "PNG")
    with pytest.raises(CorruptFileError):
        load_document(buf.getvalue()[:-200], ocr="none")
