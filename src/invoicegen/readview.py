"""What ``invoicegen read`` shows: the words of each page as a table or JSON, and an overlay image.

The overlay exists so a person can check at a glance that words and boxes line up with the page
(blue: PDF text layer; orange: OCR, red when the engine's confidence is below 0.5).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from invoicegen.document import LoadedDocument
from invoicegen.schema import Page

TEXT_LAYER_COLOUR = (31, 119, 180)
OCR_COLOUR = (255, 127, 14)
LOW_CONFIDENCE_COLOUR = (214, 39, 40)


def print_pages(doc: LoadedDocument) -> None:
    """One rich table per page: word, box in points, confidence."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    d = doc.document
    console.print(f"[bold]{d.filename}[/bold]  {d.media_type}  {len(d.pages)} page(s)  source: {d.source}  "
                  f"sha256 {d.sha256[:12]}…")
    for page in d.pages:
        table = Table(title=f"page {page.index + 1}: {page.width:.0f} x {page.height:.0f} pt, "
                            f"{len(page.words)} words, {page.source}",
                      title_justify="left")
        table.add_column("#", justify="right", style="dim")
        table.add_column("text")
        for name in ("x0", "y0", "x1", "y1"):
            table.add_column(name, justify="right")
        table.add_column("conf", justify="right")
        for i, w in enumerate(page.words):
            table.add_row(str(i), w.text, *(f"{v:.1f}" for v in w.bbox), f"{w.confidence:.2f}")
        console.print(table)


def overlay_paths(out: Path, n_pages: int) -> list[Path]:
    """``out`` for the first page, ``<stem>-p2<suffix>``... for the others (PNG if no suffix)."""
    if not out.suffix:
        out = out.with_suffix(".png")
    return [out] + [out.with_name(f"{out.stem}-p{i + 1}{out.suffix}") for i in range(1, n_pages)]


def draw_words(image: Image.Image, page: Page) -> Image.Image:
    """A copy of ``image`` with every word's box and, in small type, its text drawn on it."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas, "RGBA")
    scale_x = canvas.width / page.width if page.width else 1.0
    scale_y = canvas.height / page.height if page.height else 1.0
    font_px = max(8, round(canvas.width / 150))
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    try:
        font = ImageFont.load_default(size=font_px)
    except TypeError:  # Pillow < 10.1 has only the bitmap default font
        font = ImageFont.load_default()
    ocr = page.source.startswith("ocr")
    for w in page.words:
        x0, y0, x1, y1 = w.bbox
        box = (x0 * scale_x, y0 * scale_y, x1 * scale_x, y1 * scale_y)
        colour = (LOW_CONFIDENCE_COLOUR if w.confidence < 0.5 else OCR_COLOUR) if ocr else TEXT_LAYER_COLOUR
        draw.rectangle(box, outline=colour + (255,), fill=colour + (28,), width=1)
        draw.text((box[0], max(0.0, box[1] - font_px - 1)), w.text, fill=colour + (230,), font=font)
    return canvas


def write_overlays(doc: LoadedDocument, out: Path, dpi: int) -> list[Path]:
    """Draw every page's words on its image (at ``dpi``) and save one PNG per page."""
    paths = overlay_paths(out, len(doc.pages))
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for page, path in zip(doc.pages, paths, strict=True):
        draw_words(doc.page_image(page.index, dpi), page).save(path, format="PNG", optimize=True)
    return paths
