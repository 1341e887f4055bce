"""Page images with every extracted field and line item drawn and labelled, for a person to check."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from invoicegen.document import load_document
from invoicegen.schema import NO_BOX, BBox, ExtractionResult

FIELD_COLOUR = (220, 40, 40)
ITEM_COLOUR = (30, 110, 220)


def _scaled(box: BBox, scale: float) -> tuple[float, float, float, float]:
    return (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)


def draw_page(image: Image.Image, page_width_pt: float, result: ExtractionResult, page: int) -> Image.Image:
    """A copy of ``image`` with the result's boxes on ``page`` (boxes are in points)."""
    img = image.convert("RGB").copy()
    draw = ImageDraw.Draw(img)
    scale = img.width / page_width_pt
    for key, f in result.fields.items():
        if f.page != page or f.bbox == NO_BOX:  # NO_BOX: an embedded-XML value not printed on the page
            continue
        x0, y0, x1, y1 = _scaled(f.bbox, scale)
        draw.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), outline=FIELD_COLOUR, width=2)
        label = f"{key}={f.value}" if f.value is not None else key
        draw.text((x0, max(0, y0 - 11)), label[:60], fill=FIELD_COLOUR)
    for n, item in enumerate(result.line_items):
        if item.page != page or item.bbox == NO_BOX:
            continue
        x0, y0, x1, y1 = _scaled(item.bbox, scale)
        draw.rectangle((x0 - 2, y0 - 2, x1 + 2, y1 + 2), outline=ITEM_COLOUR, width=1)
        draw.text((x1 + 4, y0), f"item {n + 1}: {item.amount or ''}", fill=ITEM_COLOUR)
    return img


def draw_result(source: str | Path, result: ExtractionResult, out_dir: str | Path, dpi: int = 150) -> list[Path]:
    """Write ``<stem>.page<N>.png`` for each page of ``source`` with the result drawn on it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with load_document(source, ocr="none", dpi=dpi) as doc:
        for page in doc.pages:
            img = draw_page(doc.page_image(page.index), page.width, result, page.index)
            path = out / f"{Path(source).stem}.page{page.index + 1}.png"
            img.save(path)
            written.append(path)
    return written
