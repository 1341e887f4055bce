"""Scan and photo look for rendered pages, with every word box moved exactly as the pixels are.

Geometry is one homography per page (rotation, perspective, scale, shift): the four corners of every
word box go through it and the word gets their axis-aligned hull. Photometric effects (blur, noise,
JPEG, contrast, shadows, stains, faded thermal print, low resolution) do not move pixels. OCR noise
edits the word list (character confusions, merged / split / missing words) while each word keeps its
identities (entity instance, row, cell), so BIO / row / cell labels are recomputed consistently by
``render.labels``. Optionally the words come from a real OCR pass (``invoicegen.ocr``) with labels
transferred from the gold words by box overlap.
"""

from __future__ import annotations

import io
import random
from dataclasses import replace

import numpy as np
from PIL import Image

from invoicegen.synth.render import PageWords, WordBox

CONFUSIONS = {
    "0": "O", "O": "0", "o": "0", "1": "l", "l": "1", "I": "l", "5": "S", "S": "5", "8": "B", "B": "8",
    "2": "Z", "Z": "2", "6": "b", "e": "c", "c": "e", "rn": "m", "m": "rn", "cl": "d", ",": ".", ".": ",",
    "€": "E", "é": "e", "ü": "u", "ä": "a", "ö": "o", "g": "q", "h": "b", "u": "v",
}


# ---------------------------------------------------------------------------------------------
# Geometry.
# ---------------------------------------------------------------------------------------------


def homography(rng: random.Random, w: int, h: int, *, max_angle: float, perspective: float,
               scale: tuple[float, float] = (1.0, 1.0), shift: float = 0.0) -> np.ndarray:
    """A 3x3 matrix: rotation about the centre, scale, shift and a random perspective jitter."""
    angle = np.deg2rad(rng.uniform(-max_angle, max_angle))
    s = rng.uniform(*scale)
    cx, cy = w / 2, h / 2
    c, si = np.cos(angle) * s, np.sin(angle) * s
    tx, ty = rng.uniform(-shift, shift) * w, rng.uniform(-shift, shift) * h
    affine = np.array([[c, -si, cx - c * cx + si * cy + tx], [si, c, cy - si * cx - c * cy + ty], [0, 0, 1]])
    if perspective <= 0:
        return affine
    import cv2

    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    jitter = np.array([[rng.uniform(-1, 1) * perspective * w, rng.uniform(-1, 1) * perspective * h]
                       for _ in range(4)], dtype=np.float32)
    persp = cv2.getPerspectiveTransform(src, src + jitter)
    return persp @ affine


def transform_boxes(boxes_px: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Axis-aligned hulls of the 4 transformed corners of each (x0, y0, x1, y1) box."""
    if len(boxes_px) == 0:
        return boxes_px.reshape(0, 4)
    x0, y0, x1, y1 = boxes_px.T
    corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1),
                        np.stack([x0, y1], 1)], 1)  # n x 4 x 2
    pts = np.concatenate([corners, np.ones(corners.shape[:2] + (1,))], axis=2) @ H.T
    pts = pts[..., :2] / pts[..., 2:3]
    return np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)


def warp(image: np.ndarray, H: np.ndarray, border: tuple[int, int, int]) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    return cv2.warpPerspective(image, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=border)


def move_words(words: list[WordBox], H: np.ndarray, scale: float, size: tuple[int, int]) -> list[WordBox]:
    """Words with boxes moved by ``H`` (pixel space, ``scale`` = px per point), clipped to the image;
    words pushed out of the image are dropped."""
    w, h = size
    boxes = np.array([wb.bbox for wb in words], dtype=float).reshape(-1, 4) * scale
    moved = transform_boxes(boxes, H)
    out = []
    for wb, (x0, y0, x1, y1) in zip(words, moved, strict=True):
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx1 - cx0 < 0.5 * (x1 - x0) or cy1 - cy0 < 0.5 * (y1 - y0):
            continue  # mostly outside the image
        out.append(replace(wb, bbox=(cx0 / scale, cy0 / scale, cx1 / scale, cy1 / scale)))
    return out


# ---------------------------------------------------------------------------------------------
# Photometric effects (pixels do not move).
# ---------------------------------------------------------------------------------------------


def blur(img: np.ndarray, rng: random.Random) -> np.ndarray:
    import cv2

    k = rng.choice([3, 3, 5])
    return cv2.GaussianBlur(img, (k, k), rng.uniform(0.4, 1.3))


def noise(img: np.ndarray, rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(3, 14)
    n = nrng.standard_normal(img.shape[:2], dtype=np.float32) * sigma
    return np.clip(img.astype(np.float32) + n[..., None], 0, 255).astype(np.uint8)


def contrast(img: np.ndarray, rng: random.Random) -> np.ndarray:
    a, b = rng.uniform(0.7, 1.25), rng.uniform(-30, 25)
    return np.clip(img.astype(np.float32) * a + b, 0, 255).astype(np.uint8)


def shadow(img: np.ndarray, rng: random.Random) -> np.ndarray:
    h, w = img.shape[:2]
    ang = rng.uniform(0, 2 * np.pi)
    g = (np.float32(np.cos(ang)) * np.linspace(0, 1, w, dtype=np.float32)[None, :]
         + np.float32(np.sin(ang)) * np.linspace(0, 1, h, dtype=np.float32)[:, None])
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    strength = np.float32(rng.uniform(0.15, 0.5))
    mult = 1 - strength * np.clip(g * np.float32(rng.uniform(1.0, 2.0)) - np.float32(rng.uniform(0, 0.6)), 0, 1)
    return np.clip(img.astype(np.float32) * mult[..., None], 0, 255).astype(np.uint8)


def stains(img: np.ndarray, rng: random.Random) -> np.ndarray:
    import cv2

    out = img.copy()
    h, w = img.shape[:2]
    overlay = out.copy()
    for _ in range(rng.randint(1, 3)):
        centre = (rng.randint(0, w - 1), rng.randint(0, h - 1))
        axes = (rng.randint(w // 30, w // 8), rng.randint(h // 40, h // 10))
        colour = rng.choice([(150, 120, 80), (110, 90, 60), (180, 170, 120), (120, 120, 150)])
        cv2.ellipse(overlay, centre, axes, rng.uniform(0, 180), 0, 360, colour, -1)
    alpha = rng.uniform(0.12, 0.3)
    return cv2.addWeighted(overlay, alpha, out, 1 - alpha, 0)


def faded_thermal(img: np.ndarray, rng: random.Random, nrng: np.random.Generator) -> np.ndarray:
    """Light, uneven ink of a thermal receipt: ink is lifted towards white, with streaks."""
    h, w = img.shape[:2]
    fade = np.float32(rng.uniform(0.35, 0.7))
    streaks = 1 - np.float32(rng.uniform(0.0, 0.35)) * np.abs(np.sin(np.linspace(0, rng.uniform(3, 12), w,
                                                                                     dtype=np.float32)))
    rows = np.asarray(nrng.uniform(0.85, 1.0, h), dtype=np.float32)
    factor = (fade * rows[:, None] * streaks[None, :])[..., None]
    f = 255 - (255 - img.astype(np.float32)) * factor
    return np.clip(f + np.float32(rng.uniform(-8, 0)), 0, 255).astype(np.uint8)


def low_resolution(img: np.ndarray, rng: random.Random) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    f = rng.uniform(0.35, 0.7)
    small = cv2.resize(img, (max(int(w * f), 1), max(int(h * f), 1)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=rng.choice([cv2.INTER_LINEAR, cv2.INTER_NEAREST]))


def jpeg(img: np.ndarray, rng: random.Random) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=rng.randint(25, 80))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


# ---------------------------------------------------------------------------------------------
# OCR noise on the word list.
# ---------------------------------------------------------------------------------------------


def _confuse(text: str, rng: random.Random) -> str:
    keys = [k for k in CONFUSIONS if k in text]
    if not keys:
        return text
    k = rng.choice(keys)
    i = text.find(k)
    return text[:i] + CONFUSIONS[k] + text[i + len(k):]


def ocr_noise(words: list[WordBox], rng: random.Random, rate: float = 0.04) -> list[WordBox]:
    """Character confusions, merged, split and missing words; identities (entity instance, row, cell)
    travel with the characters, so labels recomputed from them stay consistent."""
    out: list[WordBox] = []
    i = 0
    while i < len(words):
        wb = words[i]
        r = rng.random()
        nxt = words[i + 1] if i + 1 < len(words) else None
        if r < rate * 0.2:  # missing word
            i += 1
            continue
        if (r < rate * 0.45 and nxt is not None and nxt.ent_key == wb.ent_key and nxt.cell_key == wb.cell_key
                and abs(nxt.bbox[1] - wb.bbox[1]) < 2 and 0 <= nxt.bbox[0] - wb.bbox[2] < 8):  # merged
            out.append(replace(wb, text=wb.text + nxt.text, bbox=(wb.bbox[0], min(wb.bbox[1], nxt.bbox[1]),
                                                                    nxt.bbox[2], max(wb.bbox[3], nxt.bbox[3]))))
            i += 2
            continue
        if r < rate * 0.7 and len(wb.text) >= 4:  # split
            k = rng.randint(1, len(wb.text) - 1)
            x0, y0, x1, y1 = wb.bbox
            xm = x0 + (x1 - x0) * k / len(wb.text)
            out.append(replace(wb, text=wb.text[:k], bbox=(x0, y0, xm, y1)))
            out.append(replace(wb, text=wb.text[k:], bbox=(xm, y0, x1, y1)))
            i += 1
            continue
        if r < rate * 1.6:
            wb = replace(wb, text=_confuse(wb.text, rng))
        out.append(wb)
        i += 1
    return out


# ---------------------------------------------------------------------------------------------
# Real OCR words with labels transferred from the gold words.
# ---------------------------------------------------------------------------------------------


def transfer_labels(ocr_words, gold: list[WordBox], scale: float, min_overlap: float = 0.3) -> list[WordBox]:
    """OCR words ``[(text, (x0, y0, x1, y1) px, conf)]`` labelled by the gold word they overlap most
    (intersection over the OCR word's area); OCR words over no gold word are outside everything.

    The result follows the gold (content) order, each OCR word placed at its gold word (unmatched
    words at their nearest gold word), so every entity / row / cell instance stays contiguous and
    its B- / I- tags mean what they mean on clean pages."""
    gold_px = np.array([wb.bbox for wb in gold], dtype=float).reshape(-1, 4) * scale
    centres = (gold_px[:, :2] + gold_px[:, 2:]) / 2
    keyed = []
    for n, (text, (x0, y0, x1, y1), _conf) in enumerate(ocr_words):
        if not text.strip():
            continue
        box = (x0 / scale, y0 / scale, x1 / scale, y1 / scale)
        if not len(gold_px):
            keyed.append(((0.0, x0, n), WordBox(text=text.strip(), bbox=box)))
            continue
        area = max((x1 - x0) * (y1 - y0), 1e-6)
        ix = np.clip(np.minimum(x1, gold_px[:, 2]) - np.maximum(x0, gold_px[:, 0]), 0, None)
        iy = np.clip(np.minimum(y1, gold_px[:, 3]) - np.maximum(y0, gold_px[:, 1]), 0, None)
        inter = ix * iy / area
        k = int(np.argmax(inter))
        if inter[k] >= min_overlap:
            keyed.append(((float(k), x0, n), replace(gold[k], text=text.strip(), bbox=box, approx=False)))
        else:
            c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            near = int(np.argmin(((centres - c) ** 2).sum(axis=1)))
            keyed.append(((near + 0.5, x0, n), WordBox(text=text.strip(), bbox=box)))
    keyed.sort(key=lambda kv: kv[0])
    return [wb for _, wb in keyed]


# ---------------------------------------------------------------------------------------------
# One document.
# ---------------------------------------------------------------------------------------------


def augment_page(image: Image.Image, page: PageWords, dpi: int, rng: random.Random, *, receipt: bool = False,
                 mode: str | None = None) -> tuple[Image.Image, PageWords, dict]:
    """One page's scan / photo look; the page's words are moved with the pixels."""
    nrng = np.random.default_rng(rng.getrandbits(63))
    img = np.asarray(image.convert("RGB")).copy()
    h, w = img.shape[:2]
    mode = mode or rng.choices(["scan", "photo", "fax"], weights=[0.55, 0.3, 0.15])[0]
    ops: list[str] = []
    border: tuple[int, int, int]
    if mode == "scan":
        H = homography(rng, w, h, max_angle=2.5, perspective=0.0, scale=(0.97, 1.01), shift=0.01)
        grey = rng.randint(200, 255)
        border = (grey, grey, grey)
    elif mode == "photo":
        H = homography(rng, w, h, max_angle=6.0, perspective=0.03, scale=(0.85, 0.97), shift=0.02)
        border = (rng.randint(40, 160), rng.randint(40, 160), rng.randint(40, 160))
    else:
        H = homography(rng, w, h, max_angle=1.2, perspective=0.0, scale=(0.99, 1.0), shift=0.005)
        border = (255, 255, 255)
    img = warp(img, H, border)
    ops.append("warp")
    scale = dpi / 72
    words = move_words(page.words, H, scale, (w, h))
    if receipt and rng.random() < 0.5:
        img = faded_thermal(img, rng, nrng)
        ops.append("thermal")
    if mode == "photo" or rng.random() < 0.25:
        img = shadow(img, rng)
        ops.append("shadow")
    if rng.random() < 0.15:
        img = stains(img, rng)
        ops.append("stains")
    if rng.random() < 0.6:
        img = contrast(img, rng)
        ops.append("contrast")
    if mode == "fax" or rng.random() < 0.3:
        img = low_resolution(img, rng)
        ops.append("low_dpi")
    if rng.random() < 0.5:
        img = blur(img, rng)
        ops.append("blur")
    if rng.random() < 0.6:
        img = noise(img, rng, nrng)
        ops.append("noise")
    if mode == "fax":
        gray = img.mean(axis=2, keepdims=True)
        img = np.repeat(np.where(gray > rng.uniform(110, 170), 255, 0), 3, axis=2).astype(np.uint8)
        ops.append("binarize")
    if rng.random() < 0.7:
        img = jpeg(img, rng)
        ops.append("jpeg")
    out_page = PageWords(index=page.index, width=page.width, height=page.height, words=words)
    return Image.fromarray(img), out_page, {"mode": mode, "ops": ops, "homography": [round(v, 6) for v in H.ravel()]}


def augment_document(images: list[Image.Image], pages: list[PageWords], dpi: int, rng: random.Random, *,
                     kind: str = "invoice", ocr: str | None = None, ocr_noise_rate: float | None = None):
    """Augmented page images and words for a document; returns (images, pages, info)."""
    out_images, out_pages, infos = [], [], []
    mode = rng.choices(["scan", "photo", "fax"], weights=[0.55, 0.3, 0.15])[0]
    engine = None
    if ocr:
        from invoicegen.ocr import get_engine  # the project's OCR engines (rapidocr, tesseract)

        engine = get_engine(ocr)
    rate = rng.choice([0.0, 0.02, 0.04, 0.08]) if ocr_noise_rate is None else ocr_noise_rate
    for image, page in zip(images, pages, strict=True):
        img, pw, info = augment_page(image, page, dpi, rng, receipt=kind == "receipt", mode=mode)
        ocr_words = transfer_labels(engine.read(img), pw.words, dpi / 72) if engine is not None else None
        if ocr_words is not None and len(ocr_words) >= 0.6 * len(pw.words):
            pw = PageWords(pw.index, pw.width, pw.height, ocr_words)
            info["words"] = f"ocr:{ocr}"
        elif rate or ocr_words is not None:  # an OCR pass that lost the page falls back to simulated noise
            page_rate = rate or 0.04
            if ocr_words is not None:
                info["ocr_fallback"] = f"{ocr} read {len(ocr_words)} of {len(pw.words)} words"
            pw = PageWords(pw.index, pw.width, pw.height, ocr_noise(pw.words, rng, page_rate))
            info["ocr_noise"] = page_rate
        out_images.append(img)
        out_pages.append(pw)
        infos.append(info)
    return out_images, out_pages, {"pages": infos}
