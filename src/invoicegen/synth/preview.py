"""Draw a labelled page: one colour per entity, row hulls (blue) and cell outlines (green)."""

from __future__ import annotations

import colorsys

from PIL import Image, ImageDraw

from invoicegen.schema import ENTITIES, LabelledPage


def entity_colour(entity: str) -> tuple[int, int, int]:
    k = ENTITIES.index(entity)
    r, g, b = colorsys.hsv_to_rgb((k * 0.6180339887) % 1.0, 0.85, 0.85)
    return int(r * 255), int(g * 255), int(b * 255)


def _hull(boxes):
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def draw_preview(image: Image.Image, page: LabelledPage, dpi: int) -> Image.Image:
    img = image.convert("RGB")
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    s = dpi / 72
    px = [tuple(v * s for v in b) for b in page.bboxes]
    rows: dict[int, list] = {}
    cells: list[list] = []
    for k, (tag, box) in enumerate(zip(page.ner, px, strict=True)):
        if page.row[k] >= 0:
            rows.setdefault(page.row[k], []).append(box)
        if page.cell[k] == "CELL_B":
            cells.append([box])
        elif page.cell[k] == "CELL_I" and cells:
            cells[-1].append(box)
        if tag == "O":
            draw.rectangle(box, outline=(160, 160, 160, 160))
            continue
        colour = entity_colour(tag[2:])
        draw.rectangle(box, fill=colour + (70,), outline=colour + (255,), width=2 if tag.startswith("B-") else 1)
        if tag.startswith("B-"):
            draw.text((box[0], box[1] - 9), tag[2:].lower(), fill=colour + (255,))
    for boxes in cells:
        draw.rectangle(_hull(boxes), outline=(0, 150, 0, 200))
    for boxes in rows.values():
        x0, y0, x1, y1 = _hull(boxes)
        draw.rectangle((x0 - 3, y0 - 3, x1 + 3, y1 + 3), outline=(0, 60, 255, 255), width=2)
    for k, t in enumerate(page.table):
        if t == "HEADER":
            draw.line((px[k][0], px[k][3] + 1, px[k][2], px[k][3] + 1), fill=(255, 0, 200, 255), width=2)
    return Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")
