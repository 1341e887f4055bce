"""HTML -> PDF (WeasyPrint) with exact per-word labels read from the layout tree; PDF -> PNG (pypdfium2).

Every printed word is its own ``<w>`` element (see ``layouts.w``), so each WeasyPrint ``TextBox``
holds exactly one word; its position and size are the word box. Labels come from ``data-*``
attributes inherited from ancestors: ``data-e`` (entity instance), ``data-tr`` (table role:
head / row / carry), ``data-row`` (line-item index), ``data-col`` (column name) and the cell element.

Boxes are PDF points, top-left origin (CSS px * 0.75). :func:`verify_words` checks them against the
characters pypdfium2 extracts from the PDF itself.
"""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass, field

# fontTools stamps font subsets with the current time unless SOURCE_DATE_EPOCH is set: fix it so that
# the same seed gives the same PDF bytes.
os.environ.setdefault("SOURCE_DATE_EPOCH", "1704067200")

from weasyprint import HTML  # noqa: E402
from weasyprint.formatting_structure.boxes import TextBox  # noqa: E402
from weasyprint.text.fonts import FontConfiguration  # noqa: E402

from invoicegen.schema import OUTSIDE, LabelledPage  # noqa: E402
from invoicegen.synth.layouts import LAYOUTS, Composer  # noqa: E402
from invoicegen.synth.records import Fmt, Record  # noqa: E402

PX_TO_PT = 0.75
_FONT_CONFIG: FontConfiguration | None = None


def font_config() -> FontConfiguration:
    global _FONT_CONFIG
    if _FONT_CONFIG is None:
        _FONT_CONFIG = FontConfiguration()
    return _FONT_CONFIG


@dataclass
class WordBox:
    """One rendered word with the identities its labels derive from (kept through augmentation)."""

    text: str
    bbox: tuple[float, float, float, float]
    entity: str | None = None
    ent_key: int | None = None
    trole: str | None = None
    """None (outside), "head", "row" or "carry"."""
    row: int = -1
    cell_key: int | None = None
    column: str | None = None
    approx: bool = False


@dataclass
class PageWords:
    index: int
    width: float
    height: float
    words: list[WordBox] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Layout tree -> words.
# ---------------------------------------------------------------------------------------------


def _walk(box, ctx: tuple, out: list[WordBox]) -> None:
    el = getattr(box, "element", None)
    if el is not None and getattr(el, "get", None) is not None:
        ent_el, ent, trole, row, cell_el, col = ctx
        a = el.get("data-e")
        if a:
            ent_el, ent = el, a
        a = el.get("data-tr")
        if a:
            trole = a
        a = el.get("data-row")
        if a is not None:
            row = int(a)
        a = el.get("data-col")
        if a:
            cell_el, col = el, a
        ctx = (ent_el, ent, trole, row, cell_el, col)
    if isinstance(box, TextBox):
        text = box.text
        if not text.strip():
            return
        ent_el, ent, trole, row, cell_el, col = ctx
        x, y = box.position_x * PX_TO_PT, box.position_y * PX_TO_PT
        wdt, hgt = box.width * PX_TO_PT, box.height * PX_TO_PT
        parts = text.split()
        common = {
            "entity": ent, "ent_key": id(ent_el) if ent_el is not None else None, "trole": trole,
            "row": row if trole == "row" else -1, "cell_key": id(cell_el) if cell_el is not None else None,
            "column": col,
        }
        if len(parts) == 1 and text == text.strip():
            out.append(WordBox(text=text, bbox=(x, y, x + wdt, y + hgt), **common))
            return
        # Text that is not one <w> (should not happen): split the box by character count.
        n = max(len(text), 1)
        pos = 0
        for part in parts:
            start = text.index(part, pos)
            pos = start + len(part)
            out.append(WordBox(text=part, bbox=(x + wdt * start / n, y, x + wdt * pos / n, y + hgt), approx=True,
                               **common))
        return
    for child in getattr(box, "children", ()) or ():
        _walk(child, ctx, out)


def page_words(document) -> list[PageWords]:
    pages = []
    for i, page in enumerate(document.pages):
        words: list[WordBox] = []
        _walk(page._page_box, (None, None, None, -1, None, None), words)
        pages.append(PageWords(index=i, width=page.width * PX_TO_PT, height=page.height * PX_TO_PT, words=words))
    return pages


def labels(words: list[WordBox], seen: dict | None = None) -> dict[str, list]:
    """Per-word labels of the three heads (+ row, column) from the words' identities.

    ``seen`` carries "already started" instances across pages of one document."""
    seen = seen if seen is not None else {"ent": set(), "row": set(), "cell": set()}
    ner, table, cell, rows, cols = [], [], [], [], []
    for wb in words:
        if wb.entity and wb.ent_key is not None:
            ner.append(("I-" if wb.ent_key in seen["ent"] else "B-") + wb.entity)
            seen["ent"].add(wb.ent_key)
        else:
            ner.append(OUTSIDE)
        in_cell = wb.trole in ("head", "row") and wb.cell_key is not None
        if wb.trole == "head":
            table.append("HEADER")
        elif wb.trole == "row":
            table.append("ROW_I" if wb.row in seen["row"] else "ROW_B")
            seen["row"].add(wb.row)
        else:
            table.append(OUTSIDE)
        if in_cell:
            cell.append("CELL_I" if wb.cell_key in seen["cell"] else "CELL_B")
            seen["cell"].add(wb.cell_key)
        else:
            cell.append(OUTSIDE)
        rows.append(wb.row if wb.trole == "row" else -1)
        cols.append(wb.column if in_cell else None)
    return {"ner": ner, "table": table, "cell": cell, "row": rows, "column": cols}


def labelled_pages(pages: list[PageWords], images: list[str | None] | None = None, dpi: int | None = None,
                   ndigits: int = 2) -> list[LabelledPage]:
    seen: dict = {"ent": set(), "row": set(), "cell": set()}
    out = []
    for k, p in enumerate(pages):
        lab = labels(p.words, seen)
        out.append(LabelledPage(
            index=p.index, width=round(p.width, ndigits), height=round(p.height, ndigits),
            image=images[k] if images else None, dpi=dpi, words=[wb.text for wb in p.words],
            bboxes=[tuple(round(v, ndigits) for v in wb.bbox) for wb in p.words], **lab,
        ))
    return out


# ---------------------------------------------------------------------------------------------
# Rendering one document (with pagination for long tables and auto height for receipts).
# ---------------------------------------------------------------------------------------------


@dataclass
class Rendered:
    pdf: bytes
    pages: list[PageWords]
    layout: str
    html: str
    chunks: list[list[int]]


def _render(html: str):
    return HTML(string=html).render(font_config=font_config())


def _row_pages(pages: list[PageWords]) -> dict[int, int]:
    out: dict[int, int] = {}
    for p in pages:
        for wb in p.words:
            if wb.trole == "row" and wb.row not in out:
                out[wb.row] = p.index
    return out


def _fix_chunks(pages: list[PageWords], chunks: list[list[int]]) -> bool:
    """Move rows so that chunk k is exactly page k; returns False when the pagination already holds."""
    where: dict[int, set[int]] = {}
    for p in pages:
        for wb in p.words:
            if wb.trole == "row":
                where.setdefault(wb.row, set()).add(p.index)
    for k, rows in enumerate(chunks):
        bad = [i for i, r in enumerate(rows) if where.get(r) != {k}]
        if not bad:
            continue
        if bad[0] == 0 and k > 0:  # the previous chunk's carried-forward line pushed this one on
            chunks[k].insert(0, chunks[k - 1].pop())
        else:
            keep = max(bad[0], 1)
            moved, chunks[k] = rows[keep:], rows[:keep]
            if k + 1 < len(chunks):
                chunks[k + 1][:0] = moved
            elif moved:
                chunks.append(moved)
        return True
    return False


def render_document(rec: Record, fmt: Fmt, layout_id: str, rng: random.Random, doc_id: str,
                    max_pages: int = 6) -> Rendered:
    layout = LAYOUTS[layout_id]
    comp = Composer(rec, fmt, layout, rng, doc_id)
    n = len(rec.items)
    if layout.template == "receipt":
        html = comp.html(page_h=2000)
        doc = _render(html)
        pages = page_words(doc)
        bottom_pt = max(wb.bbox[3] for wb in pages[0].words)
        page_h = round(bottom_pt / 72 * 25.4 + comp.style["m_bottom"] + 8, 1)
        html = comp.html(page_h=page_h)
        doc = _render(html)
        return Rendered(doc.write_pdf(), page_words(doc), layout_id, html, [list(range(n))])
    chunks = [list(range(n))]
    html = comp.html(chunks)
    doc = _render(html)
    pages = page_words(doc)
    row_page = _row_pages(pages)
    if n and max(row_page.values(), default=0) > 0:
        by_page: dict[int, list[int]] = {}
        for r in range(n):
            by_page.setdefault(row_page.get(r, 0), []).append(r)
        chunks = [list(by_page[k]) for k in sorted(by_page)]
        # Room for the carried-forward / brought-forward lines: move two rows on per page.
        for k in range(len(chunks) - 1):
            for _ in range(2):
                if len(chunks[k]) > 3:
                    chunks[k + 1].insert(0, chunks[k].pop())
        for _ in range(8):
            html = comp.html(chunks)
            doc = _render(html)
            pages = page_words(doc)
            if not _fix_chunks(pages, chunks):
                break
        else:
            raise RuntimeError(f"{doc_id}: pagination did not converge")
    if len(doc.pages) > max_pages:
        raise RuntimeError(f"{doc_id}: {len(doc.pages)} pages")
    return Rendered(doc.write_pdf(), pages, layout_id, html, chunks)


# ---------------------------------------------------------------------------------------------
# PDF -> images, and the check that every labelled box holds its word in the PDF.
# ---------------------------------------------------------------------------------------------


def rasterize(pdf: bytes, dpi: int = 150, grayscale: bool = False):
    """Page images (PIL) of a PDF at ``dpi`` (pixels = points * dpi / 72)."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    images = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            bitmap = page.render(scale=dpi / 72, grayscale=grayscale, draw_annots=False)
            images.append(bitmap.to_pil().convert("L" if grayscale else "RGB"))
            page.close()
    finally:
        doc.close()
    return images


def png_bytes(image, compress_level: int = 1) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def pdf_chars(pdf: bytes) -> list[list[tuple[str, float, float, float, float]]]:
    """Characters of each page with their boxes, PDF points, top-left origin."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf)
    out = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            height = page.get_height()
            tp = page.get_textpage()
            n = tp.count_chars()
            text = tp.get_text_range(0, n) if n else ""
            chars = []
            for j in range(min(n, len(text))):
                ch = text[j]
                if ch.isspace():
                    continue
                left, bottom, right, top = tp.get_charbox(j)
                chars.append((ch, left, height - top, right, height - bottom))
            tp.close()
            page.close()
            out.append(chars)
    finally:
        doc.close()
    return out


def verify_words(pdf: bytes, pages, tol: float = 0.5) -> list[str]:
    """Mismatches between labelled words and the PDF characters whose centre lies in their box.

    ``pages``: ``PageWords`` or ``LabelledPage`` objects (boxes in points). Empty list = all good."""
    chars = pdf_chars(pdf)
    problems = []
    for p in pages:
        words = [wb.text for wb in p.words] if isinstance(p, PageWords) else list(p.words)
        boxes = [wb.bbox for wb in p.words] if isinstance(p, PageWords) else list(p.bboxes)
        found = ["" for _ in words]
        for ch, x0, y0, x1, y1 in chars[p.index]:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            for k, (bx0, by0, bx1, by1) in enumerate(boxes):
                if bx0 - tol <= cx <= bx1 + tol and by0 - tol <= cy <= by1 + tol:
                    found[k] += ch
                    break
        for k, word in enumerate(words):
            if found[k] != "".join(word.split()):
                problems.append(f"page {p.index} word {k}: label {word!r} pdf {found[k]!r}")
    return problems
