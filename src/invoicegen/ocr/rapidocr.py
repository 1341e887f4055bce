"""RapidOCR engine: PP-OCR detection + recognition models run by onnxruntime, fully offline.

rapidocr 3.x ships its default models inside the wheel; any non-default model would trigger a
download, so only the default config is used. Word boxes come from ``return_word_box=True``.
"""

from __future__ import annotations

import threading
from typing import Any

from PIL import Image

from invoicegen.ocr.base import OcrWord, PixelBox, split_line

MAX_SIDE = 4000
"""Images are shrunk to this longest side before OCR. rapidocr runs detection at most at 2000 px
anyway; the cap bounds memory and time for huge scans, which onnxruntime cannot interrupt."""


class RapidOcrEngine:
    """Default engine: the best accuracy on the SROIE receipts of the engines available offline."""

    name = "rapidocr"

    def __init__(self) -> None:
        from rapidocr import RapidOCR  # heavy import (onnxruntime, cv2): only when OCR is used

        self._engine = RapidOCR(params={"Global.log_level": "warning"})
        self._lock = threading.Lock()  # the engine mutates its own parameters on each call

    def read(self, image: Image.Image, *, timeout_s: float | None = None) -> list[OcrWord]:
        """Words with axis-aligned pixel boxes of ``image``.

        ``timeout_s`` is not enforced inside onnxruntime (it cannot be stopped mid-run); the image
        cap bounds the work and ``document.py`` checks the elapsed time afterwards.
        """
        scale = 1.0
        if max(image.size) > MAX_SIDE:
            scale = MAX_SIDE / max(image.size)
            image = image.resize(
                (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                Image.Resampling.LANCZOS,
            )
        if image.mode != "RGB":
            image = image.convert("RGB")
        with self._lock:
            result = self._engine(image, return_word_box=True)
        return [
            (text, _scale_box(box, 1 / scale), conf) for text, box, conf in _words_of(result)
        ]


def _words_of(result: Any) -> list[OcrWord]:
    """Flatten rapidocr's per-line word results; fall back to splitting line boxes."""
    txts = getattr(result, "txts", None)
    if not txts:
        return []
    boxes = result.boxes
    scores = result.scores
    word_lines = getattr(result, "word_results", None) or ()
    words: list[OcrWord] = []
    for i, line_text in enumerate(txts):
        line_words = word_lines[i] if i < len(word_lines) else None
        if line_words and all(w and w[2] is not None for w in line_words):
            for text, conf, quad in line_words:
                # A "word" may still hold spaces (or be only spaces): split it on them.
                words.extend(split_line(str(text), _quad_to_box(quad), float(conf)))
        else:
            words.extend(split_line(str(line_text), _quad_to_box(boxes[i]), float(scores[i])))
    return words


def _quad_to_box(quad: Any) -> PixelBox:
    """Axis-aligned box around a quadrilateral (slightly rotated text gets the enclosing box)."""
    xs = [float(p[0]) for p in quad]
    ys = [float(p[1]) for p in quad]
    return (max(0.0, min(xs)), max(0.0, min(ys)), max(xs), max(ys))


def _scale_box(box: PixelBox, f: float) -> PixelBox:
    if f == 1.0:
        return box
    return (box[0] * f, box[1] * f, box[2] * f, box[3] * f)
