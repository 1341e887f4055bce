"""Load an input file (PDF or image) into a :class:`invoicegen.schema.Document`.

Why this module exists: every later stage (model, extraction, API) needs the same thing, words with
boxes in one coordinate system (PDF points, top-left origin, y down; see ``schema.py``) and, on
demand, the page image. PDFs with a usable text layer are read directly (exact text, ~ms per page);
scanned PDFs and images go through OCR. Bad input fails early with a typed error from
:mod:`invoicegen.errors` (checked in this order: size, emptiness, type, structure, pages, pixels).

pypdfium2 (PDFium) is not thread-safe, not even across documents: every call into it holds
``PDFIUM_LOCK``. OCR runs outside the lock.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from PIL import Image, ImageFile, ImageOps

from invoicegen.errors import (
    CorruptFileError,
    EmptyFileError,
    EncryptedPDFError,
    FileTooLargeError,
    ImageTooLargeError,
    PageTimeoutError,
    TooManyPagesError,
    UnsupportedFileType,
)
from invoicegen.reading import reading_order
from invoicegen.schema import BBox, Document, Page, Word

PDFIUM_LOCK = threading.RLock()
"""Held around every PDFium call in the process (PDFium has global state and no locking)."""

MEDIA_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "webp": "image/webp",
    "bmp": "image/bmp",
}
_PIL_FORMATS: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "webp": "WEBP", "bmp": "BMP"}

OCR_MODES: tuple[str, ...] = ("auto", "none", "rapidocr", "tesseract", "paddleocr")


@dataclass(frozen=True)
class Limits:
    """Bounds on what one input may cost; exceeding one raises a typed 4xx/5xx error."""

    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 50
    max_pixels: int = 60_000_000
    """Per page image (an image file's frame, or a PDF page rendered at the requested dpi)."""
    page_timeout_s: float = 60.0
    """Per page: text extraction, or rendering plus OCR."""


# ------------------------------------------------------------------------------------------------
# Type sniffing
# ------------------------------------------------------------------------------------------------


def sniff_type(data: bytes) -> str | None:
    """Type of ``data`` from its first bytes: ``pdf png jpeg tiff webp bmp``, or None.

    The extension is never trusted: uploads are often misnamed, and the decoder must match the bytes.
    PDF readers accept the ``%PDF-`` header anywhere in the first 1024 bytes, so this does too.
    """
    head = data[:1024]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if b"%PDF-" in head:
        return "pdf"
    return None


def describe_unknown(data: bytes) -> str | None:
    """A human name for common unsupported content, for the error message."""
    head = data[:512]
    known = (
        (b"GIF8", "a GIF image"),
        (b"PK\x03\x04", "a ZIP archive (DOCX/XLSX/ODT?)"),
        (b"\xd0\xcf\x11\xe0", "an old Microsoft Office file"),
        (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
        (b"8BPS", "a Photoshop file"),
        (b"%!PS", "a PostScript file"),
        (b"\x1f\x8b", "a gzip archive"),
    )
    for magic, name in known:
        if head.startswith(magic):
            return name
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF image"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<"):
        return "XML/markup text"
    try:
        head.decode("utf-8")
        return "plain text"
    except UnicodeDecodeError:
        return None


# ------------------------------------------------------------------------------------------------
# The loaded document
# ------------------------------------------------------------------------------------------------


class PageBackend:
    """Renders page images for a :class:`LoadedDocument` (a bare instance renders nothing: enough
    for documents that only carry words, such as labelled factory pages)."""

    def render(self, index: int, dpi: float | None) -> Image.Image:  # pragma: no cover - interface
        raise NotImplementedError

    def native_dpi(self, index: int) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def page_count(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release native resources (idempotent)."""

    @contextmanager
    def pdf(self) -> Iterator[Any | None]:
        """The open pypdfium2 ``PdfDocument`` while ``PDFIUM_LOCK`` is held, or None for input that
        is not a PDF: for readers of what a PDF carries besides its pages (embedded e-invoice XML)."""
        yield None


class LoadedDocument:
    """A :class:`schema.Document` plus its page images, rendered lazily and cached.

    Use it as a context manager (or call :meth:`close`): a PDF stays open so pages can be rendered
    later (the model's visual input, overlays) without parsing the file again.
    """

    CACHE_PAGES = 8
    """Page images kept in memory; bounded because a 50-page document at 150 dpi is ~300 MB."""

    def __init__(self, document: Document, backend: PageBackend, dpi: int,
                 timings_ms: dict[str, float] | None = None) -> None:
        self.document = document
        self.dpi = dpi
        self.timings_ms: dict[str, float] = timings_ms or {}
        self._backend = backend
        self._cache: OrderedDict[tuple[int, float], Image.Image] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        # A document dropped without close() still releases PDFium under the lock (PDFium's own
        # finalizers would run in whatever thread the garbage collector happens to use).
        self._finalizer = weakref.finalize(self, backend.close)

    @property
    def pages(self) -> list[Page]:
        return self.document.pages

    @property
    def source(self) -> str:
        return self.document.source

    def __len__(self) -> int:
        return len(self.document.pages)

    def page_dpi(self, index: int) -> float:
        """Resolution of ``page_image(index)`` without a dpi: the load dpi for PDFs, the image's own."""
        return self._backend.native_dpi(index)

    def page_image(self, index: int, dpi: float | None = None) -> Image.Image:
        """RGB image of page ``index`` at ``dpi`` (default: :meth:`page_dpi`), rendered once and cached.

        Boxes map to its pixels with ``px = pt * image.width / page.width`` (= ``pt * dpi / 72``).
        The returned image is shared with the cache: copy it before drawing on it.
        """
        if self._closed:
            raise RuntimeError("the document is closed")
        count = self._backend.page_count()
        if not 0 <= index < count:
            raise IndexError(f"page {index} out of range (the document has {count} pages)")
        key = (index, float(dpi) if dpi else self._backend.native_dpi(index))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        image = self._backend.render(index, dpi)
        with self._lock:
            self._cache[key] = image
            while len(self._cache) > self.CACHE_PAGES:
                self._cache.popitem(last=False)
        return image

    def pdf(self) -> AbstractContextManager[Any | None]:
        """``with doc.pdf() as pdf:`` the open pypdfium2 document under the lock (None if not a PDF)."""
        if self._closed:
            raise RuntimeError("the document is closed")
        return self._backend.pdf()

    def close(self) -> None:
        """Free the page images and the PDF handle (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._cache.clear()
        self._finalizer()  # backend.close(), once

    def __enter__(self) -> LoadedDocument:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        d = self.document
        return f"LoadedDocument({d.filename!r}, {d.media_type}, pages={len(d.pages)}, source={d.source!r})"


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------


def load_document(
    source: str | Path | bytes,
    *,
    filename: str | None = None,
    ocr: str = "auto",
    dpi: int = 150,
    password: str | None = None,
    limits: Limits = Limits(),  # noqa: B008 - frozen dataclass, safe as a default
) -> LoadedDocument:
    """Read a PDF or image into words with boxes (PDF points, top-left origin).

    ``ocr``: ``auto`` uses a PDF's text layer when it is usable and OCR (default engine, see
    :func:`invoicegen.ocr.default_engine_name`) otherwise; ``none`` never runs OCR; an engine name
    (``rapidocr``, ``tesseract``, alias ``paddleocr``) forces OCR with it on every page.
    ``dpi``: resolution for rendering PDF pages (and the assumed resolution of image files that do
    not state a plausible one). Raises :class:`invoicegen.errors.InvoiceGenError` subclasses for bad
    input, ``FileNotFoundError`` for a missing path, ``ValueError`` for bad arguments.
    """
    t0 = time.perf_counter()
    engine_name = _check_ocr_mode(ocr)
    if dpi <= 0 or dpi > 1200:
        raise ValueError(f"dpi must be in 1..1200, got {dpi}")
    data, name = _read_source(source, filename, limits)
    kind = sniff_type(data)
    if kind is None:
        raise UnsupportedFileType(name, describe_unknown(data))
    sha = hashlib.sha256(data).hexdigest()
    if kind == "pdf":
        return _load_pdf(data, name, sha, engine_name, ocr, dpi, password, limits, t0)
    return _load_image(data, kind, name, sha, engine_name, ocr, dpi, limits, t0)


def _check_ocr_mode(ocr: str) -> str | None:
    """Engine name forced by ``ocr`` (None for auto/none); ValueError for unknown modes."""
    mode = ocr.strip().lower()
    if mode in ("auto", "none"):
        return None
    from invoicegen.ocr.base import resolve_engine_name

    try:
        return resolve_engine_name(mode)
    except ValueError:
        raise ValueError(f"ocr must be one of {', '.join(OCR_MODES)}; got {ocr!r}") from None


def _read_source(source: str | Path | bytes, filename: str | None, limits: Limits) -> tuple[bytes, str]:
    """The bytes and a display name; the size limit is checked before reading a file."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = filename or "document"
        if len(data) > limits.max_bytes:
            raise FileTooLargeError(name, len(data), limits.max_bytes)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        name = filename or path.name
        size = path.stat().st_size  # FileNotFoundError for a missing path, as Python users expect
        if size > limits.max_bytes:
            raise FileTooLargeError(name, size, limits.max_bytes)
        data = path.read_bytes()
    else:
        raise TypeError(f"source must be a path or bytes, not {type(source).__name__}")
    if not data:
        raise EmptyFileError(name)
    return data, name


def _engine_for(engine_name: str | None) -> Any:
    from invoicegen.ocr.base import get_engine

    return get_engine(engine_name)


# ------------------------------------------------------------------------------------------------
# Words: grouping characters and reading order
# ------------------------------------------------------------------------------------------------


_LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
              "\ufb05": "st", "\ufb06": "st"}

WORD_GAP = 0.1
"""A horizontal gap wider than this fraction of the line height ends a word (poppler's pdftotext
uses 0.1 of the font size; PDFs often place words without any space character)."""
SIZE_CHANGE = 0.03
"""A change of font size by more than this fraction ends a word, as in pdftotext."""
BASELINE_SHIFT = 0.05
"""A baseline shift by more than this fraction of the font size ends a word (super/subscripts)."""


def _to_text_frame(d: int, box: BBox) -> BBox:
    """Rotate a page box so text of direction ``d`` (0 left-to-right, 1 top-down, 2 upside down,
    3 bottom-up; clockwise quarter turns) reads left to right; grouping then needs one rule."""
    x0, y0, x1, y1 = box
    if d == 1:
        return (y0, -x1, y1, -x0)
    if d == 2:
        return (-x1, -y1, -x0, -y0)
    if d == 3:
        return (-y1, x0, -y0, x1)
    return box


def _from_text_frame(d: int, box: BBox) -> BBox:
    """Inverse of :func:`_to_text_frame`."""
    u0, v0, u1, v1 = box
    if d == 1:
        return (-v1, u0, -v0, u1)
    if d == 2:
        return (-u1, -v1, -u0, -v0)
    if d == 3:
        return (v0, -u1, v1, -u0)
    return box


def _make_word(parts: list[str], d: int, box: BBox) -> tuple[str, BBox]:
    text = "".join(parts)
    if any("\ud800" <= ch <= "\udfff" for ch in text):  # a surrogate pair given as two chars
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text, (_from_text_frame(d, box) if d else box)


def in_reading_order(words: Sequence[Word]) -> list[Word]:
    """The words sorted into reading order, a tilted page straightened (:mod:`invoicegen.reading`)."""
    return [words[i] for i in reading_order([w.bbox for w in words])]


def _clip_box(box: BBox, width: float, height: float) -> BBox:
    x0, y0, x1, y1 = box
    x0, x1 = max(0.0, min(x0, width)), max(0.0, min(x1, width))
    y0, y1 = max(0.0, min(y0, height)), max(0.0, min(y1, height))
    return (round(x0, 2), round(y0, 2), round(max(x0, x1), 2), round(max(y0, y1), 2))


# ------------------------------------------------------------------------------------------------
# PDFs
# ------------------------------------------------------------------------------------------------


MIN_TEXT_CHARS = 3
"""Fewer visible characters than this: the page has no text layer worth using."""
SPARSE_TEXT_CHARS = 50
"""Fewer than this and a big image on the page: a scan with a stamp or page number, so OCR it."""
MAX_BAD_CHAR_RATIO = 0.25
"""More than this share of unmapped/replacement/private-use characters: a garbage text layer."""


@dataclass
class _PageText:
    words: list[Word]
    good_chars: int
    bad_chars: int
    width: float
    height: float
    image_cover: float = 0.0
    usable: bool = field(default=True)


class _PdfBackend(PageBackend):
    """Owns the PDFium document; renders pages at any dpi under the module lock."""

    def __init__(self, pdf: Any, name: str, dpi: int, limits: Limits) -> None:
        self._pdf = pdf
        self._name = name
        self._dpi = dpi
        self._limits = limits

    def native_dpi(self, index: int) -> float:
        return float(self._dpi)

    def page_count(self) -> int:
        with PDFIUM_LOCK:
            return len(self._pdf) if self._pdf is not None else 0

    def render(self, index: int, dpi: float | None) -> Image.Image:
        scale = (dpi or self._dpi) / 72.0
        with PDFIUM_LOCK:
            if self._pdf is None:
                raise RuntimeError("the document is closed")
            page = self._pdf[index]
            try:
                w, h = page.get_size()
                px_w, px_h = math.ceil(w * scale), math.ceil(h * scale)
                if px_w * px_h > self._limits.max_pixels:
                    raise ImageTooLargeError(self._name, px_w * px_h, self._limits.max_pixels,
                                             (px_w, px_h), page=index)
                bitmap = page.render(scale=scale)
                try:
                    image = bitmap.to_pil().convert("RGB")
                finally:
                    bitmap.close()
            finally:
                page.close()
        image.info["dpi"] = (dpi or self._dpi, dpi or self._dpi)
        return image

    @contextmanager
    def pdf(self) -> Iterator[Any | None]:
        with PDFIUM_LOCK:
            yield self._pdf

    def close(self) -> None:
        with PDFIUM_LOCK:
            if self._pdf is not None:
                self._pdf.close()
                self._pdf = None


def _open_pdf(data: bytes, name: str, password: str | None) -> Any:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    if not _has_eof_marker(data):
        raise CorruptFileError(name, "no end-of-file marker: the PDF is truncated")
    with PDFIUM_LOCK:
        try:
            return pdfium.PdfDocument(data, password=password)
        except pdfium.PdfiumError as e:
            code = getattr(e, "err_code", None)
            if code == pdfium_c.FPDF_ERR_PASSWORD:
                raise EncryptedPDFError(name, password_given=password is not None) from None
            if code == pdfium_c.FPDF_ERR_SECURITY:
                raise EncryptedPDFError(name, detail="unsupported security handler") from None
            raise CorruptFileError(name, f"PDFium: {e}") from None


def _has_eof_marker(data: bytes) -> bool:
    """True if ``%%EOF`` is near the end: readers look for it in the last 1024 bytes, and a file
    cut short (an interrupted upload) has none. PDFium would silently "repair" such a file and
    return partial pages; refusing tells the user to send the whole file."""
    tail = data[-2048:].rstrip(b"\x00\r\n\t \x0c")
    return b"%%EOF" in tail[-1024:]


def _load_pdf(data: bytes, name: str, sha: str, engine_name: str | None, mode: str, dpi: int,
              password: str | None, limits: Limits, t0: float) -> LoadedDocument:
    pdf = _open_pdf(data, name, password)
    backend = _PdfBackend(pdf, name, dpi, limits)
    doc = LoadedDocument(Document(filename=name, sha256=sha, media_type=MEDIA_TYPES["pdf"]), backend, dpi)
    try:
        with PDFIUM_LOCK:
            n_pages = len(pdf)
        if n_pages == 0:
            raise CorruptFileError(name, "the PDF has no pages")
        if n_pages > limits.max_pages:
            raise TooManyPagesError(name, n_pages, limits.max_pages)
        ocr_ms = 0.0
        mode = mode.strip().lower()
        for i in range(n_pages):
            start = time.perf_counter()
            text = None
            if engine_name is None:  # auto / none: the text layer first
                with PDFIUM_LOCK:
                    text = _pdf_page_text(pdf, i, name, need_images=(mode == "auto"))
                _check_time(name, i, start, limits, "reading the text layer")
            if text is not None and (mode == "none" or text.usable):
                doc.document.pages.append(Page(index=i, width=text.width, height=text.height,
                                               words=text.words, source="pdf-text"))
                continue
            engine = _engine_for(engine_name)
            t_ocr = time.perf_counter()
            page = _ocr_page(doc, i, engine, name, limits, start)
            ocr_ms += (time.perf_counter() - t_ocr) * 1000
            if not page.words and text is not None and text.words:
                # OCR found nothing (blank scan?) but the PDF had a few characters: keep those.
                page = Page(index=i, width=text.width, height=text.height, words=text.words,
                            source="pdf-text")
            doc.document.pages.append(page)
    except BaseException:
        doc.close()
        raise
    total = (time.perf_counter() - t0) * 1000
    doc.timings_ms = {"load": round(total - ocr_ms, 2), "ocr": round(ocr_ms, 2)}
    return doc


def _check_time(name: str, index: int, start: float, limits: Limits, step: str) -> None:
    elapsed = time.perf_counter() - start
    if elapsed > limits.page_timeout_s:
        raise PageTimeoutError(name, index, elapsed, limits.page_timeout_s, step)


def _page_transform(page: Any) -> tuple[Callable[[float, float, float, float], BBox], float, float]:
    """Map PDF user-space boxes (origin bottom-left) to the displayed page (origin top-left, y down),
    honouring the crop box and the page's /Rotate; also returns the displayed width and height."""
    import ctypes

    import pypdfium2.raw as c

    # The effective crop box (inherited from the page tree, clipped to the media box); the
    # per-page getters of pypdfium2 fall back to US Letter when a page has no box of its own.
    r = c.FS_RECTF()
    if c.FPDF_GetPageBoundingBox(page.raw, ctypes.byref(r)):
        left, bottom, right, top = r.left, min(r.bottom, r.top), r.right, max(r.bottom, r.top)
    else:
        left, bottom, right, top = page.get_cropbox()
    rot = page.get_rotation() % 360
    w, h = right - left, top - bottom
    tf: Callable[[float, float, float, float], BBox]
    if rot == 90:
        tf = lambda x0, y0, x1, y1: (y0 - bottom, x0 - left, y1 - bottom, x1 - left)  # noqa: E731
        return tf, h, w
    if rot == 180:
        tf = lambda x0, y0, x1, y1: (right - x1, y0 - bottom, right - x0, y1 - bottom)  # noqa: E731
        return tf, w, h
    if rot == 270:
        tf = lambda x0, y0, x1, y1: (top - y1, right - x1, top - y0, right - x0)  # noqa: E731
        return tf, h, w
    tf = lambda x0, y0, x1, y1: (x0 - left, top - y1, x1 - left, top - y0)  # noqa: E731
    return tf, w, h


def _is_bad_char(cp: int) -> bool:
    """Replacement, private-use, control and non-character code points: signs of a broken text layer."""
    return (cp == 0xFFFD or 0xE000 <= cp <= 0xF8FF or cp < 0x20 or 0xFFF0 <= cp <= 0xFFFF
            or 0x7F <= cp < 0xA0)


_SPACES = frozenset({0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0xA0, 0x2028, 0x2029})


def _page_text_string(tp: Any, n: int) -> str | None:
    """All characters of the text page in one call (~10x faster than one call per character);
    None when the UTF-16 result does not line up with character indices (surrogate pairs)."""
    import ctypes

    import pypdfium2.raw as c

    buf = ctypes.create_string_buffer((n + 1) * 2)
    got = c.FPDFText_GetText(tp, 0, n, ctypes.cast(buf, ctypes.POINTER(ctypes.c_ushort)))
    text = buf.raw[: max(got - 1, 0) * 2].decode("utf-16-le", "surrogatepass")
    return text if len(text) == n else None


def _page_words(tp: Any, tf: Callable[[float, float, float, float], BBox], rot_q: int
                ) -> tuple[list[tuple[str, BBox]], int, int, float]:
    """Words of a text page in content order with boxes on the displayed page; and the counts of
    visible and bad characters plus the sampled share of characters without a Unicode mapping.

    A word ends at whitespace (also PDFium's generated spaces and line breaks) and, as in poppler's
    ``pdftotext``, where the next character changes direction, is on another line, jumps back
    left, leaves a gap wider than ``WORD_GAP`` of the height, changes font size or shifts its
    baseline. This is the hot loop (~2000 characters a page): one PDFium call per character for
    its box, the text direction only where a word starts, font metrics only where boxes disagree.
    """
    import ctypes

    import pypdfium2.raw as c

    n = c.FPDFText_CountChars(tp)
    text = _page_text_string(tp, n) if n > 0 else ""
    rect = c.FS_RECTF()
    rect_ref = ctypes.byref(rect)
    get_unicode, get_box, get_angle = c.FPDFText_GetUnicode, c.FPDFText_GetLooseCharBox, c.FPDFText_GetCharAngle
    map_error = c.FPDFText_HasUnicodeMapError
    quarter = math.pi / 2
    ligatures = _LIGATURES
    spaces = _SPACES

    words: list[tuple[str, BBox]] = []
    parts: list[str] = []
    # the current word: direction, box (in its text frame), last character's box and index
    d = 0
    wx0 = wy0 = wx1 = wy1 = 0.0
    px0 = py0 = px1 = py1 = 0.0
    pi = -1
    visible = bad = sampled = unmapped = 0

    def flush() -> None:
        words.append(_make_word(parts, d, (wx0, wy0, wx1, wy1)))

    for i in range(n):
        cp = ord(text[i]) if text is not None else get_unicode(tp, i)
        if cp in spaces or (cp > 0x7F and chr(cp).isspace()):
            if parts:
                flush()
                parts = []
            continue
        visible += 1
        if _is_bad_char(cp):
            bad += 1
            if cp < 0x20 or cp >= 0xFFFE:
                continue
        if visible % 4 == 1:  # sampled: this call costs as much as reading the box
            sampled += 1
            unmapped += map_error(tp, i) == 1
        if not get_box(tp, i, rect_ref):
            continue
        box = tf(rect.left, rect.bottom, rect.right, rect.top)
        if box[2] - box[0] <= 0 and box[3] - box[1] <= 0:
            continue
        ch = chr(cp)
        ch = ligatures.get(ch, ch)
        if parts:
            x0, y0, x1, y1 = _to_text_frame(d, box) if d else box
            hp, hc = py1 - py0, y1 - y0
            h = max(min(hp, hc), 1e-3)
            overlap = (py1 if py1 < y1 else y1) - (py0 if py0 > y0 else y0)
            new_word = overlap < 0.5 * h or x0 - px1 > WORD_GAP * h or x0 < px0 - 0.5 * h
            if new_word:
                d_new = get_angle(tp, i)
                d_new = (round(d_new / quarter) + rot_q) % 4 if d_new >= 0 else rot_q
                if d_new != d:
                    x0, y0, x1, y1 = _to_text_frame(d_new, box) if d_new else box
            elif ((abs(hp - hc) > SIZE_CHANGE * (hp if hp > hc else hc) or abs(py1 - y1) > BASELINE_SHIFT * h)
                  and _metrics_differ(tp, tf, d, pi, i)):
                new_word, d_new = True, d
            if new_word:
                flush()
                parts = [ch]
                d = d_new
                wx0, wy0, wx1, wy1 = x0, y0, x1, y1
            else:
                parts.append(ch)
                if x0 < wx0:
                    wx0 = x0
                if y0 < wy0:
                    wy0 = y0
                if x1 > wx1:
                    wx1 = x1
                if y1 > wy1:
                    wy1 = y1
        else:
            angle = get_angle(tp, i)  # clockwise as displayed, in [0, 2pi); -1 on error
            d = (round(angle / quarter) + rot_q) % 4 if angle >= 0 else rot_q
            x0, y0, x1, y1 = _to_text_frame(d, box) if d else box
            parts = [ch]
            wx0, wy0, wx1, wy1 = x0, y0, x1, y1
        px0, py0, px1, py1, pi = x0, y0, x1, y1, i
    if parts:
        flush()
    return words, visible, bad, (unmapped / sampled if sampled else 0.0)


def _metrics_differ(tp: Any, tf: Callable[[float, float, float, float], BBox], d: int, a: int, b: int) -> bool:
    """True font size (size x text-matrix scale) or baseline differ between characters ``a`` and
    ``b``; loose boxes alone cannot tell a size change from another font's ascent and descent."""
    import ctypes

    import pypdfium2.raw as c

    def metrics(i: int) -> tuple[float, float]:
        m = c.FS_MATRIX()
        size = c.FPDFText_GetFontSize(tp, i)
        if c.FPDFText_GetMatrix(tp, i, ctypes.byref(m)):
            size *= math.hypot(m.c, m.d) or 1.0
        x, y = ctypes.c_double(), ctypes.c_double()
        c.FPDFText_GetCharOrigin(tp, i, ctypes.byref(x), ctypes.byref(y))
        p = tf(x.value, y.value, x.value, y.value)
        return size, _to_text_frame(d, p)[3]

    sa, ba = metrics(a)
    sb, bb = metrics(b)
    return abs(sa - sb) > SIZE_CHANGE * max(sa, sb) or abs(ba - bb) > BASELINE_SHIFT * max(min(sa, sb), 1e-3)


def _pdf_page_text(pdf: Any, index: int, name: str, need_images: bool) -> _PageText:
    """Words of one page from its text layer (caller holds PDFIUM_LOCK)."""
    import pypdfium2.raw as c

    try:
        page = pdf[index]
    except Exception as e:  # PDFium raises a bare PdfiumError for a page it cannot load
        raise CorruptFileError(name, f"page {index + 1} cannot be loaded: {e}") from None
    try:
        # Filled form fields and free-text annotations are not page text: flatten them into the
        # page (in memory only) so their visible text is read too, then reload the page.
        if (c.FPDFPage_GetAnnotCount(page.raw) > 0
                and c.FPDFPage_Flatten(page.raw, c.FLAT_NORMALDISPLAY) == c.FLATTEN_SUCCESS):
            page.close()
            page = pdf[index]
        tf, width, height = _page_transform(page)
        rot_q = (page.get_rotation() // 90) % 4
        textpage = page.get_textpage()
        try:
            raw_words, visible, bad, unmapped = _page_words(textpage.raw, tf, rot_q)
        finally:
            textpage.close()
        words = []
        for text, box in raw_words:
            clipped = _clip_box(box, width, height)
            if clipped[2] > clipped[0] or clipped[3] > clipped[1]:  # else outside the crop box
                words.append(Word.model_construct(text=text, bbox=clipped, confidence=1.0))
        good = visible - bad
        result = _PageText(in_reading_order(words), good, bad, round(width, 2), round(height, 2))
        result.usable = (good >= MIN_TEXT_CHARS and bad <= MAX_BAD_CHAR_RATIO * visible
                         and unmapped <= MAX_BAD_CHAR_RATIO)
        if result.usable and need_images and good < SPARSE_TEXT_CHARS:
            result.image_cover = _image_cover(page, width * height)
            result.usable = result.image_cover < 0.5
        return result
    finally:
        page.close()


def _image_cover(page: Any, page_area: float) -> float:
    """Largest share of the page covered by one image object (a scan covers ~all of it)."""
    import pypdfium2.raw as c

    best = 0.0
    for obj in page.get_objects(filter=[c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        try:
            left, bottom, right, top = obj.get_bounds()
        except Exception:
            continue
        best = max(best, (right - left) * (top - bottom) / max(page_area, 1e-6))
    return best


def _ocr_page(doc: LoadedDocument, index: int, engine: Any, name: str, limits: Limits,
              start: float) -> Page:
    """OCR one page of ``doc`` (rendered or decoded image) into a Page with boxes in points."""
    image = doc.page_image(index)
    _check_time(name, index, start, limits, "rendering")
    width_pt = image.width * 72.0 / doc.page_dpi(index)
    height_pt = image.height * 72.0 / doc.page_dpi(index)
    words = _ocr_words(image, engine, name, index, width_pt, height_pt, limits, start)
    return Page(index=index, width=round(width_pt, 2), height=round(height_pt, 2), words=words,
                source=f"ocr:{engine.name}")


def _ocr_words(image: Image.Image, engine: Any, name: str, index: int, width_pt: float,
               height_pt: float, limits: Limits, start: float) -> list[Word]:
    remaining = max(0.1, limits.page_timeout_s - (time.perf_counter() - start))
    try:
        raw = engine.read(image, timeout_s=remaining)
    except TimeoutError:
        raise PageTimeoutError(name, index, time.perf_counter() - start, limits.page_timeout_s,
                               f"OCR ({engine.name})") from None
    _check_time(name, index, start, limits, f"OCR ({engine.name})")
    sx, sy = width_pt / image.width, height_pt / image.height
    words = []
    for text, (x0, y0, x1, y1), conf in raw:
        if not text.strip():
            continue
        box = _clip_box((x0 * sx, y0 * sy, x1 * sx, y1 * sy), width_pt, height_pt)
        words.append(Word(text=text.strip(), bbox=box, confidence=round(float(conf), 4)))
    return in_reading_order(words)


# ------------------------------------------------------------------------------------------------
# Images
# ------------------------------------------------------------------------------------------------


PLAUSIBLE_DPI = (100.0, 1200.0)
"""An image's own dpi is used when within this range; outside it (72 dpi phone photos, 1 dpi
junk metadata) the requested dpi is assumed instead."""


class _ImageBackend(PageBackend):
    """Decoded frames of an image file; other dpis are resampled from the frame."""

    def __init__(self, frames: list[Image.Image], dpis: list[float], name: str, limits: Limits) -> None:
        self._frames = frames
        self._dpis = dpis
        self._name = name
        self._limits = limits

    def native_dpi(self, index: int) -> float:
        return self._dpis[index]

    def page_count(self) -> int:
        return len(self._frames)

    def render(self, index: int, dpi: float | None) -> Image.Image:
        frame = self._frames[index]
        native = self._dpis[index]
        if not dpi or abs(dpi - native) < 1e-6:
            return frame
        f = dpi / native
        size = (max(1, round(frame.width * f)), max(1, round(frame.height * f)))
        if size[0] * size[1] > self._limits.max_pixels:
            raise ImageTooLargeError(self._name, size[0] * size[1], self._limits.max_pixels, size, index)
        image = frame.resize(size, Image.Resampling.LANCZOS)
        image.info["dpi"] = (dpi, dpi)
        return image

    def close(self) -> None:
        self._frames = []


_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def _decode_images(data: bytes, kind: str, name: str, dpi: int, limits: Limits
                   ) -> tuple[list[Image.Image], list[float]]:
    """Decode all frames as upright RGB images, checking the pixel limit before decoding each."""
    frames: list[Image.Image] = []
    dpis: list[float] = []
    # PIL flags huge images through a global warning (and raises past twice its limit), at open
    # and again when some formats decode tiles or frames: make both errors, inside the whole decode.
    # (PIL's own ceiling, Image.MAX_IMAGE_PIXELS, stays a hard limit above ours.)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[kind]])
            n_frames = getattr(im, "n_frames", 1)
            if n_frames > limits.max_pages:
                raise TooManyPagesError(name, n_frames, limits.max_pages)
            for i in range(n_frames):
                if i:
                    im.seek(i)
                w, h = im.size  # from the header: nothing is decoded yet
                if w * h > limits.max_pixels:
                    raise ImageTooLargeError(name, w * h, limits.max_pixels, (w, h),
                                             page=i if n_frames > 1 else None)
                if w == 0 or h == 0:
                    raise CorruptFileError(name, f"image of size {w}x{h}")
                frame_dpi = _plausible_dpi(im.info.get("dpi"), dpi)
                frame = _to_rgb(ImageOps.exif_transpose(im))
                frame.info["dpi"] = (frame_dpi, frame_dpi)
                frames.append(frame)
                dpis.append(frame_dpi)
        except (ImageTooLargeError, TooManyPagesError, CorruptFileError):
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            m = _BOMB_PIXELS.search(str(e))
            pixels = int(m.group(1)) if m else limits.max_pixels + 1
            raise ImageTooLargeError(name, pixels, limits.max_pixels) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError) as e:
            # Pillow signals broken files with any of these (truncated data: OSError "image file is
            # truncated"; bad headers: SyntaxError/ValueError; short reads: EOFError).
            raise CorruptFileError(name, f"{type(e).__name__}: {e}") from None
    return frames, dpis


def _plausible_dpi(info_dpi: Any, default: float) -> float:
    """The image's own resolution when it is within ``PLAUSIBLE_DPI``, else ``default``."""
    try:
        d = float(info_dpi[0])
    except (TypeError, ValueError, IndexError):
        return float(default)
    return d if PLAUSIBLE_DPI[0] <= d <= PLAUSIBLE_DPI[1] else float(default)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Decode and convert to RGB; transparency goes on white (as on paper), 16-bit is rescaled."""
    im.load()
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(im, dtype=np.float32)
        top = float(arr.max()) or 1.0
        return Image.fromarray((arr * (255.0 / top)).clip(0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def _load_image(data: bytes, kind: str, name: str, sha: str, engine_name: str | None, mode: str,
                dpi: int, limits: Limits, t0: float) -> LoadedDocument:
    # WeasyPrint sets this Pillow-wide flag on import; a truncated upload must stay an error here
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    frames, dpis = _decode_images(data, kind, name, dpi, limits)
    backend = _ImageBackend(frames, dpis, name, limits)
    doc = LoadedDocument(Document(filename=name, sha256=sha, media_type=MEDIA_TYPES[kind]), backend, dpi)
    load_ms = (time.perf_counter() - t0) * 1000
    ocr_ms = 0.0
    try:
        for i, frame in enumerate(frames):
            width_pt = frame.width * 72.0 / dpis[i]
            height_pt = frame.height * 72.0 / dpis[i]
            if mode.strip().lower() == "none":
                doc.document.pages.append(Page(index=i, width=round(width_pt, 2),
                                               height=round(height_pt, 2), source="none"))
                continue
            start = time.perf_counter()
            doc.document.pages.append(_ocr_page(doc, i, _engine_for(engine_name), name, limits, start))
            ocr_ms += (time.perf_counter() - start) * 1000
    except BaseException:
        doc.close()
        raise
    doc.timings_ms = {"load": round(load_ms, 2), "ocr": round(ocr_ms, 2)}
    return doc


# Older private names, still imported elsewhere in the package.
_Backend = PageBackend
_describe_unknown = describe_unknown

__all__ = [
    "Limits",
    "LoadedDocument",
    "MEDIA_TYPES",
    "PageBackend",
    "describe_unknown",
    "PDFIUM_LOCK",
    "load_document",
    "in_reading_order",
    "sniff_type",
]
