"""Typed errors for bad input.

Every error a user can cause by sending a bad file subclasses :class:`InvoiceGenError`, so callers
catch one type; it subclasses ``ValueError`` because the input value (the file) is what is wrong.
Each class carries the HTTP status the API answers with, so the mapping lives next to the error and
not in a table that can drift.
"""

from __future__ import annotations


def _human_bytes(n: int) -> str:
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"


class InvoiceGenError(ValueError):
    """Base class of all input errors; ``http_status`` is the API's answer for it."""

    http_status: int = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take other constructor arguments than ``args``: rebuild from the state so the
        # errors survive pickling (process pools in the batch runner send them between processes).
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[InvoiceGenError], message: str, state: dict[str, object]) -> InvoiceGenError:
    err = cls.__new__(cls)
    InvoiceGenError.__init__(err, message)
    err.__dict__.update(state)
    return err


class EmptyFileError(InvoiceGenError):
    """The file has no bytes (an upload that lost its body, a zero-length file)."""

    http_status = 422

    def __init__(self, name: str = "input") -> None:
        super().__init__(f"{name}: the file is empty (0 bytes)")


class UnsupportedFileType(InvoiceGenError):
    """The bytes are not a PDF or a supported image (sniffed from the content, not the extension)."""

    http_status = 415

    def __init__(self, name: str = "input", detected: str | None = None) -> None:
        what = f"looks like {detected}" if detected else "unknown content"
        super().__init__(
            f"{name}: unsupported file type ({what}); expected PDF, PNG, JPEG, TIFF, WebP or BMP"
        )
        self.detected = detected


class CorruptFileError(InvoiceGenError):
    """The file claims a supported type but cannot be decoded (corrupt or truncated)."""

    http_status = 422

    def __init__(self, name: str = "input", detail: str = "") -> None:
        super().__init__(f"{name}: the file is corrupt or truncated" + (f" ({detail})" if detail else ""))


class EncryptedPDFError(InvoiceGenError):
    """The PDF needs a password that was not given, or the given one is wrong."""

    http_status = 422

    def __init__(self, name: str = "input", password_given: bool = False, detail: str = "") -> None:
        if detail:
            msg = f"{name}: the PDF is encrypted ({detail})"
        elif password_given:
            msg = f"{name}: the PDF is encrypted and the password given is wrong"
        else:
            msg = f"{name}: the PDF is encrypted; a password is needed (--password / password=...)"
        super().__init__(msg)
        self.password_given = password_given


class TooManyPagesError(InvoiceGenError):
    """More pages than ``Limits.max_pages``: refuse before doing any per-page work."""

    http_status = 413

    def __init__(self, name: str, pages: int, limit: int) -> None:
        super().__init__(f"{name}: {pages} pages, more than the limit of {limit}")
        self.pages = pages
        self.limit = limit


class FileTooLargeError(InvoiceGenError):
    """More bytes than ``Limits.max_bytes``: refuse before reading or parsing the file."""

    http_status = 413

    def __init__(self, name: str, size: int, limit: int) -> None:
        super().__init__(f"{name}: {_human_bytes(size)}, more than the limit of {_human_bytes(limit)}")
        self.size = size
        self.limit = limit


class ImageTooLargeError(InvoiceGenError):
    """A page image has more pixels than ``Limits.max_pixels`` (e.g. a decompression bomb)."""

    http_status = 413

    def __init__(self, name: str, pixels: int, limit: int, size: tuple[int, int] | None = None,
                 page: int | None = None) -> None:
        where = f" page {page + 1}" if page is not None else ""
        dims = f"{size[0]}x{size[1]} = " if size else ""
        super().__init__(
            f"{name}{where}: image of {dims}{pixels / 1e6:.1f} megapixels, more than the limit of "
            f"{limit / 1e6:.1f} megapixels (refused before decoding)"
        )
        self.pixels = pixels
        self.size = size
        self.limit = limit


class PageTimeoutError(InvoiceGenError):
    """Reading one page (text layer, rendering or OCR) took longer than ``Limits.page_timeout_s``."""

    http_status = 504

    def __init__(self, name: str, page: int, elapsed_s: float, limit_s: float, step: str = "reading") -> None:
        super().__init__(
            f"{name} page {page + 1}: {step} took {elapsed_s:.1f} s, more than the limit of {limit_s:g} s"
        )
        self.page = page
        self.elapsed_s = elapsed_s
        self.limit_s = limit_s


__all__ = [
    "CorruptFileError",
    "EmptyFileError",
    "EncryptedPDFError",
    "FileTooLargeError",
    "ImageTooLargeError",
    "InvoiceGenError",
    "PageTimeoutError",
    "TooManyPagesError",
    "UnsupportedFileType",
]
