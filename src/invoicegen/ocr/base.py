"""The OCR protocol and the engine registry.

One protocol keeps ``document.py`` engine-agnostic: an engine turns an RGB image into words with
axis-aligned pixel boxes and a confidence in [0, 1]; converting pixels to points (with the page's
DPI) and sorting words into reading order happen once, in ``document.py``.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol, runtime_checkable

from PIL import Image

PixelBox = tuple[float, float, float, float]
OcrWord = tuple[str, PixelBox, float]
"""``(text, (x0, y0, x1, y1) in pixels of the given image, confidence in [0, 1])``."""

ENGINES: tuple[str, ...] = ("rapidocr", "tesseract")
"""Engines that exist. ``paddleocr`` (the deployment guide's name) is an alias of ``rapidocr``,
which runs the same PP-OCR models offline through onnxruntime."""

ALIASES: dict[str, str] = {"paddleocr": "rapidocr", "paddle": "rapidocr", "tesserocr": "tesseract"}

DEFAULT_ENGINE = "rapidocr"


@runtime_checkable
class OcrEngine(Protocol):
    """What ``document.py`` needs from an OCR engine."""

    name: str

    def read(self, image: Image.Image, *, timeout_s: float | None = None) -> list[OcrWord]:
        """Words of ``image`` (RGB) with pixel boxes; raise ``TimeoutError`` past ``timeout_s``
        when the engine can be stopped (engines that cannot must bound their work otherwise)."""
        ...


def resolve_engine_name(name: str) -> str:
    """Canonical engine name for ``name`` (aliases resolved); ``ValueError`` for unknown ones."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in ENGINES:
        raise ValueError(f"unknown OCR engine {name!r}; choose one of {', '.join(ENGINES + tuple(ALIASES))}")
    return key


def default_engine_name() -> str:
    """The engine used when OCR is needed and none is forced: ``OCR_ENGINE`` env var, else rapidocr."""
    return resolve_engine_name(os.environ.get("OCR_ENGINE") or DEFAULT_ENGINE)


_engines: dict[tuple[str, str], OcrEngine] = {}
_engines_lock = threading.Lock()


def get_engine(name: str | None = None) -> OcrEngine:
    """A cached engine instance (models load once per process; tesseract per OCR_LANG value)."""
    key = resolve_engine_name(name) if name else default_engine_name()
    variant = os.environ.get("OCR_LANG", "eng") if key == "tesseract" else ""
    with _engines_lock:
        engine = _engines.get((key, variant))
        if engine is None:
            engine = _create(key, variant)
            _engines[(key, variant)] = engine
        return engine


def _create(key: str, variant: str) -> OcrEngine:
    # Imported lazily: each engine pulls in heavy native libraries that most callers never need.
    if key == "rapidocr":
        from invoicegen.ocr.rapidocr import RapidOcrEngine

        return RapidOcrEngine()
    from invoicegen.ocr.tesseract import TesseractEngine

    return TesseractEngine(lang=variant or "eng")


def split_line(text: str, box: PixelBox, confidence: float) -> list[OcrWord]:
    """Split a recognised line on spaces, dividing its box by character count.

    Used when an engine returns a multi-word string with one box: widths are proportional to the
    number of characters, a fair guess for printed text and better than one box for many words.
    """
    parts = text.split()
    if len(parts) <= 1:
        return [(parts[0], box, confidence)] if parts else []
    x0, y0, x1, y1 = box
    total = len(text)
    per_char = (x1 - x0) / max(total, 1)
    words: list[OcrWord] = []
    pos = 0
    for part in parts:
        start = text.index(part, pos)
        end = start + len(part)
        words.append((part, (x0 + start * per_char, y0, x0 + end * per_char, y1), confidence))
        pos = end
    return words
