"""Tesseract engine through tesserocr (the library, not a subprocess per page).

Languages come from ``OCR_LANG`` (``eng+deu``; default ``eng``), as in the deployment guide.
``OMP_THREAD_LIMIT=1`` is set before the library loads: Tesseract's OpenMP threads fight on a small
machine (measured here: 0.6 s/page with one thread, 3.5-4 s with the default).
"""

from __future__ import annotations

import os
import threading

from PIL import Image

from invoicegen.ocr.base import OcrWord

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

TESSDATA_DIRS: tuple[str, ...] = (
    "/usr/share/tesseract-ocr/5/tessdata/",
    "/usr/share/tesseract-ocr/4.00/tessdata/",
    "/usr/share/tessdata/",
)


def tessdata_path() -> str:
    """The tessdata directory: ``TESSDATA_PREFIX`` if set, else the first Debian path that exists."""
    env = os.environ.get("TESSDATA_PREFIX")
    if env:
        return env if env.endswith("/") else env + "/"
    for path in TESSDATA_DIRS:
        if os.path.isdir(path):
            return path
    return TESSDATA_DIRS[0]


class TesseractEngine:
    """Tesseract LSTM engine, page segmentation "auto", word-level results with confidences."""

    name = "tesseract"

    def __init__(self, lang: str = "eng") -> None:
        import tesserocr  # native library: only when this engine is used

        self._tesserocr = tesserocr
        self.lang = lang
        path = tessdata_path()
        missing = [code for code in lang.split("+") if not os.path.exists(os.path.join(path, f"{code}.traineddata"))]
        if missing:
            raise RuntimeError(
                f"Tesseract language data missing for {', '.join(missing)} in {path} "
                f"(OCR_LANG={lang!r}); install tesseract-ocr-<lang>"
            )
        self._api = tesserocr.PyTessBaseAPI(path=path, lang=lang)
        self._lock = threading.Lock()  # one TessBaseAPI is not safe to share between threads

    def read(self, image: Image.Image, *, timeout_s: float | None = None) -> list[OcrWord]:
        """Words with pixel boxes and confidences in [0, 1]; ``TimeoutError`` past ``timeout_s``."""
        tess = self._tesserocr
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        dpi = image.info.get("dpi")
        words: list[OcrWord] = []
        with self._lock:
            api = self._api
            api.SetImage(image)
            if dpi:
                api.SetSourceResolution(max(70, int(round(float(dpi[0])))))
            timeout_ms = int(timeout_s * 1000) if timeout_s else 0
            if not api.Recognize(timeout=timeout_ms):
                api.Clear()
                if timeout_ms:
                    raise TimeoutError(f"tesseract stopped after {timeout_s:g} s")
                return []
            iterator = api.GetIterator()
            level = tess.RIL.WORD
            for word in tess.iterate_level(iterator, level) if iterator is not None else ():
                try:
                    text = word.GetUTF8Text(level)
                except RuntimeError:  # "No text returned": an empty page still yields one element
                    continue
                if not text or not text.strip():
                    continue
                box = word.BoundingBox(level)
                if box is None:
                    continue
                conf = word.Confidence(level)
                x0, y0, x1, y1 = box
                words.append((text.strip(), (float(x0), float(y0), float(x1), float(y1)),
                              max(0.0, min(1.0, conf / 100.0))))
            api.Clear()
        return words
