"""HTML -> PDF (WeasyPrint) with exact per-word labels read from the layout tree; PDF -> PNG (pypdfium2).

Each WeasyPrint ``TextBox`` (one line of one element's text) is split into words whose x extents
come from the box's own glyph advances (the same numbers WeasyPrint draws with), so every word gets
its exact box without one element per word (which made layout 2-3x slower). Labels come from ``data-*``
attributes inherited from ancestors: ``data-e`` (entity instance), ``data-tr`` (table role:
head / row / carry), ``data-row`` (line-item index), ``data-col`` (column name) and the cell element.

Boxes are PDF points, top-left origin (CSS px * 0.75). :func:`verify_words` checks them against the
characters pypdfium2 extracts from the PDF itself.
"""

from __future__ import annotations

import io
import os
import random
import re
from dataclasses import dataclass, field

# fontTools stamps font subsets with the current time unless SOURCE_DATE_EPOCH is set: fix it so that
# the same seed gives the same PDF bytes.
os.environ.setdefault("SOURCE_DATE_EPOCH", "1704067200")

from weasyprint import CSS, HTML  # noqa: E402
from weasyprint.formatting_structure.boxes import TextBox  # noqa: E402
from weasyprint.text.ffi import FROM_UNITS, ffi  # noqa: E402
from weasyprint.text.fonts import FontConfiguration  # noqa: E402

from invoicegen.schema import OUTSIDE, LabelledPage  # noqa: E402
from invoicegen.synth.layouts import Composer, layout_by_id  # noqa: E402
from invoicegen.synth.records import Fmt, Record  # noqa: E402

PX_TO_PT = 0.75
_FONT_CONFIG: FontConfiguration | None = None
_UA_CSS: CSS | None = None

# The elements the layouts use, with the defaults of WeasyPrint's HTML5 user-agent stylesheet. Matching
# every element against the full stylesheet costs ~20 % of the layout time; the PDF is the same.
_MINIMAL_UA = """
html, body, div { display: block }
head, style, title, meta, script, link { display: none }
br::before { content: "\\A"; white-space: pre-line }
table { display: table; box-sizing: border-box; border-spacing: 2px; border-collapse: separate;
        text-indent: initial; border-color: gray }
thead { display: table-header-group; vertical-align: middle; border-color: inherit }
tbody { display: table-row-group; vertical-align: middle; border-color: inherit }
tr { display: table-row; vertical-align: inherit; border-color: inherit }
td, th { display: table-cell; vertical-align: inherit; padding: 1px; border-color: gray }
th { font-weight: bold }
"""


class _HTML(HTML):
    def _ua_stylesheets(self, forms=False):
        global _UA_CSS
        if _UA_CSS is None:
            from weasyprint.html import UA_COUNTER_STYLE

            _UA_CSS = CSS(string=_MINIMAL_UA, counter_style=UA_COUNTER_STYLE)
        return [_UA_CSS]


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
    glue_prev: bool = False
    glue_next: bool = False


@dataclass
class PageWords:
    index: int
    width: float
    height: float
    words: list[WordBox] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Layout tree -> words.
# ---------------------------------------------------------------------------------------------


def _char_extents(box) -> tuple[list[float | None], list[float | None]]:
    """x start / end (CSS px, relative to the box) of every character of a TextBox, from its glyphs.

    Mirrors WeasyPrint's own drawing loop (``draw.text.draw_first_line``): glyph advances in Pango
    units, clusters mapping glyphs to UTF-8 byte offsets of the layout text."""
    layout = box.pango_layout
    layout.reactivate(box.style)
    try:
        text = layout.text
        byte_to_char = {}
        b = 0
        for ci, ch in enumerate(text):
            byte_to_char[b] = ci
            b += len(ch.encode())
        x0: list[float | None] = [None] * len(text)
        x1: list[float | None] = [None] * len(text)
        line, _ = layout.get_first_line()
        x = 0.0
        run = line.runs[0] if line.runs != ffi.NULL else None
        while run is not None:
            glyph_item = run.data
            run = run.next if run.next != ffi.NULL else None
            glyphs = glyph_item.glyphs
            offset = glyph_item.item.offset
            clusters = glyphs.log_clusters
            for i in range(glyphs.num_glyphs):
                width = glyphs.glyphs[i].geometry.width * FROM_UNITS
                c = byte_to_char.get(offset + clusters[i])
                if c is not None:
                    start, end = x0[c], x1[c]
                    x0[c] = x if start is None else min(start, x)
                    x1[c] = x + width if end is None else max(end, x + width)
                x += width
    finally:
        layout.deactivate()
    return x0, x1


def _text_words(box, common: dict, out: list[WordBox]) -> None:
    text = box.text
    x, y = box.position_x, box.position_y
    hgt = box.height
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    if len(spans) == 1 and spans[0] == (0, len(text)):
        extents = [(0.0, box.width, False)]
    else:
        x0, x1 = _char_extents(box)
        extents = []
        for a, b in spans:
            xs = [v for v in x0[a:b] if v is not None]
            xe = [v for v in x1[a:b] if v is not None]
            if xs and xe and len(x0) >= b:
                extents.append((min(xs), max(xe), False))
            else:  # no glyph information: proportional split
                n = max(len(text), 1)
                extents.append((box.width * a / n, box.width * b / n, True))
    for k, ((a, b), (ex0, ex1, approx)) in enumerate(zip(spans, extents, strict=True)):
        out.append(WordBox(
            text=text[a:b],
            bbox=((x + ex0) * PX_TO_PT, y * PX_TO_PT, (x + ex1) * PX_TO_PT, (y + hgt) * PX_TO_PT),
            approx=approx, glue_prev=k == 0 and a == 0, glue_next=k == len(spans) - 1 and b == len(text),
            **common,
        ))


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
        if not box.text.strip():
            if out:
                out[-1].glue_next = False
            return
        ent_el, ent, trole, row, cell_el, col = ctx
        common = {
            "entity": ent, "ent_key": id(ent_el) if ent_el is not None else None, "trole": trole,
            "row": row if trole == "row" else -1, "cell_key": id(cell_el) if cell_el is not None else None,
            "column": col,
        }
        _text_words(box, common, out)
        return
    for child in getattr(box, "children", ()) or ():
        _walk(child, ctx, out)


def _glue(words: list[WordBox]) -> list[WordBox]:
    """Join fragments printed without a space between them ("20%" + ":") into one word, as a PDF
    reader would; the word keeps the labels of its first labelled fragment."""
    out: list[WordBox] = []
    for wb in words:
        prev = out[-1] if out else None
        if (prev is not None and prev.glue_next and wb.glue_prev and abs(prev.bbox[1] - wb.bbox[1]) < 1.0
                and -0.5 <= wb.bbox[0] - prev.bbox[2] < 1.0):
            keep = prev if prev.entity or not wb.entity else wb
            merged = WordBox(text=prev.text + wb.text, bbox=(prev.bbox[0], min(prev.bbox[1], wb.bbox[1]), wb.bbox[2],
                                                             max(prev.bbox[3], wb.bbox[3])),
                             entity=keep.entity, ent_key=keep.ent_key, trole=prev.trole or wb.trole,
                             row=prev.row if prev.row >= 0 else wb.row, cell_key=prev.cell_key or wb.cell_key,
                             column=prev.column or wb.column, approx=prev.approx or wb.approx,
                             glue_prev=prev.glue_prev, glue_next=wb.glue_next)
            out[-1] = merged
        else:
            out.append(wb)
    return out


def page_words(document) -> list[PageWords]:
    pages = []
    for i, page in enumerate(document.pages):
        words: list[WordBox] = []
        _walk(page._page_box, (None, None, None, -1, None, None), words)
        pages.append(PageWords(index=i, width=page.width * PX_TO_PT, height=page.height * PX_TO_PT,
                               words=_glue(words)))
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


def _round_box(box: tuple[float, float, float, float], nd: int) -> tuple[float, float, float, float]:
    return (round(box[0], nd), round(box[1], nd), round(box[2], nd), round(box[3], nd))


def labelled_pages(pages: list[PageWords], images: list[str] | None = None, dpi: int | None = None,
                   ndigits: int = 2) -> list[LabelledPage]:
    seen: dict = {"ent": set(), "row": set(), "cell": set()}
    out = []
    for k, p in enumerate(pages):
        lab = labels(p.words, seen)
        out.append(LabelledPage(
            index=p.index, width=round(p.width, ndigits), height=round(p.height, ndigits),
            image=images[k] if images else None, dpi=dpi, words=[wb.text for wb in p.words],
            bboxes=[_round_box(wb.bbox, ndigits) for wb in p.words], **lab,
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
    return _HTML(string=html).render(font_config=font_config())


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
    layout = layout_by_id(layout_id)
    comp = Composer(rec, fmt, layout, rng, doc_id)
    n = len(rec.items)
    if layout.template == "receipt":
        # A paper roll: lay out on a very long page, then cut the page where the content ends.
        doc = _render(comp.html(page_h=2000))
        root = doc.pages[0]._page_box.children[0]
        bottom_mm = (root.position_y + root.margin_height()) * PX_TO_PT / 72 * 25.4
        page_h = round(bottom_mm + comp.style["m_bottom"] + 1, 1)
        for _ in range(4):
            html = comp.html(page_h=page_h)
            doc = _render(html)
            if len(doc.pages) == 1:
                return Rendered(doc.write_pdf(), page_words(doc), layout_id, html, [list(range(n))])
            page_h += 10
        raise RuntimeError(f"{doc_id}: receipt does not fit one page")
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
            # pdfium reports a hyphen at a line end as U+FFFE (soft hyphen marker): it is a printed "-".
            text = (tp.get_text_range(0, n) if n else "").replace("\ufffe", "-")
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
        # a large title's box can reach into the line below: a character goes to the smallest box it is in
        by_area = sorted(range(len(boxes)), key=lambda k: (boxes[k][2] - boxes[k][0]) * (boxes[k][3] - boxes[k][1]))
        for ch, x0, y0, x1, y1 in chars[p.index]:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            for k in by_area:
                bx0, by0, bx1, by1 = boxes[k]
                if bx0 - tol <= cx <= bx1 + tol and by0 - tol <= cy <= by1 + tol:
                    found[k] += ch
                    break
        for k, word in enumerate(words):
            if found[k] != "".join(word.split()):
                problems.append(f"page {p.index} word {k}: label {word!r} pdf {found[k]!r}")
    return problems
