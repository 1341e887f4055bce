"""Augmentation: boxes move exactly with the pixels; OCR noise keeps labels consistent."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from invoicegen.synth.augment import augment_page, homography, move_words, ocr_noise, transfer_labels, warp
from invoicegen.synth.dataset import sample_document
from invoicegen.synth.render import WordBox, labels, rasterize

DPI = 150
SCALE = DPI / 72


def _ink_box(arr: np.ndarray, threshold: int = 128):
    ys, xs = np.nonzero(arr.min(axis=2) < threshold)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_rotation_keeps_each_box_on_its_word():
    """Draw words alone, transform the page, and check that all their ink lies in the moved boxes."""
    font = ImageFont.truetype("DejaVuSans.ttf", 40)
    for seed in range(6):
        rng = random.Random(seed)
        img = Image.new("RGB", (1000, 1300), "white")
        draw = ImageDraw.Draw(img)
        words = []
        for k, (x, y) in enumerate([(80, 100), (600, 300), (300, 900), (700, 1150)]):
            draw.text((x, y), f"Word{k}", fill="black", font=font)
            x0, y0, x1, y1 = draw.textbbox((x, y), f"Word{k}", font=font)
            words.append(WordBox(text=f"Word{k}", bbox=(x0 / SCALE, y0 / SCALE, x1 / SCALE, y1 / SCALE)))
        H = homography(rng, 1000, 1300, max_angle=8, perspective=0.04, scale=(0.85, 1.0), shift=0.02)
        warped = warp(np.asarray(img), H, (255, 255, 255))
        moved = move_words(words, H, SCALE, (1000, 1300))
        assert len(moved) == len(words)
        covered = np.zeros(warped.shape[:2], bool)
        for wb in moved:
            x0, y0, x1, y1 = (int(np.floor(wb.bbox[0] * SCALE)) - 1, int(np.floor(wb.bbox[1] * SCALE)) - 1,
                              int(np.ceil(wb.bbox[2] * SCALE)) + 1, int(np.ceil(wb.bbox[3] * SCALE)) + 1)
            covered[max(y0, 0):y1, max(x0, 0):x1] = True
            inside = warped[max(y0, 0):y1, max(x0, 0):x1]
            assert (inside.min(axis=2) < 128).any(), wb.text  # the word's ink is in its box
        ink = warped.min(axis=2) < 160
        assert not (ink & ~covered).any(), f"ink outside the moved boxes (seed {seed})"


def test_augmented_page_boxes_sit_on_ink():
    rec, _fmt, rendered, _ = sample_document(2, 1, kind="invoice", locale="en_GB", layout="classic-box")
    image = rasterize(rendered.pdf, DPI)[0]
    for mode in ("scan", "photo", "fax"):
        img, page, info = augment_page(image, rendered.pages[0], DPI, random.Random(mode), mode=mode)
        assert img.size == image.size and info["mode"] == mode
        arr = np.asarray(img.convert("L")).astype(int)
        hits = 0
        for wb in page.words:
            x0, y0, x1, y1 = (int(v * SCALE) for v in wb.bbox)
            crop = arr[y0:y1 + 1, x0:x1 + 1]
            hits += crop.size > 0 and crop.min() < np.median(arr) - 60
        assert hits >= 0.95 * len(page.words), (mode, hits, len(page.words))
        assert len(page.words) >= 0.95 * len(rendered.pages[0].words)


def test_ocr_noise_keeps_labels_consistent():
    rec, _fmt, rendered, _ = sample_document(4, 2, kind="invoice", locale="fr_FR", layout="din-table")
    words = rendered.pages[0].words
    noisy = ocr_noise(words, random.Random(0), rate=0.5)
    assert [w.text for w in noisy] != [w.text for w in words]
    lab = labels(noisy)
    prev = "O"
    for tag in lab["ner"]:
        if tag.startswith("I-"):
            assert prev[2:] == tag[2:]
        prev = tag
    # one ROW_B per surviving row, rows in order, each row's words contiguous
    rows = [r for r, t in zip(lab["row"], lab["table"], strict=True) if t == "ROW_B"]
    assert rows == sorted(set(rows))
    for k, t in enumerate(lab["table"]):
        if t == "ROW_I":
            assert lab["row"][k] in rows


def test_real_ocr_words_take_labels_by_overlap():
    rec, _fmt, rendered, _ = sample_document(4, 3, kind="invoice", locale="en_US", layout="band-table")
    gold = rendered.pages[0].words
    rng = random.Random(1)
    fake_ocr = []
    for wb in reversed(gold):  # any engine order
        x0, y0, x1, y1 = (v * SCALE for v in wb.bbox)
        d = rng.uniform(-1.5, 1.5)
        fake_ocr.append((wb.text, (x0 + d, y0 + d, x1 + d, y1 + d), 0.9))
    fake_ocr.append(("smudge", (5.0, 5.0, 20.0, 12.0), 0.3))
    words = transfer_labels(fake_ocr, gold, SCALE)
    assert len(words) == len(gold) + 1
    assert labels([w for w in words if w.text != "smudge"]) == labels(gold)
    assert next(w for w in words if w.text == "smudge").entity is None
