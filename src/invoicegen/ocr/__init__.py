"""OCR engines behind one small protocol (see :mod:`invoicegen.ocr.base`)."""

from invoicegen.ocr.base import (
    ENGINES,
    OcrEngine,
    OcrWord,
    default_engine_name,
    get_engine,
    resolve_engine_name,
)

__all__ = ["ENGINES", "OcrEngine", "OcrWord", "default_engine_name", "get_engine", "resolve_engine_name"]
