"""Small, exact test inputs made in code: an RC4-encrypted PDF, blank multi-page PDFs, a PNG
decompression bomb. Written by hand so the tests need no extra tool (qpdf) and stay tiny."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _padded(password: str) -> bytes:
    return (password.encode("latin-1") + _PAD)[:32]


def encrypted_pdf(user_password: str, owner_password: str = "owner", text: str = "Secret invoice 42") -> bytes:
    """A one-page PDF encrypted with the standard security handler, revision 2 (40-bit RC4)."""
    file_id = hashlib.md5(b"invoicegen-test").digest()
    perms = -4
    owner_key = hashlib.md5(_padded(owner_password)).digest()[:5]
    o_entry = _rc4(owner_key, _padded(user_password))
    key = hashlib.md5(_padded(user_password) + o_entry + struct.pack("<i", perms) + file_id).digest()[:5]
    u_entry = _rc4(key, _PAD)

    def obj_key(num: int) -> bytes:
        return hashlib.md5(key + num.to_bytes(3, "little") + (0).to_bytes(2, "little")).digest()[:10]

    content = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    stream = _rc4(obj_key(5), content)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + o_entry.hex().encode() + b"> /U <" + u_entry.hex().encode()
        + b"> /P " + str(perms).encode() + b" >>",
    ]
    return _assemble(objects, b"/Encrypt 6 0 R /ID [<" + file_id.hex().encode() + b"> <"
                     + file_id.hex().encode() + b">]")


def _assemble(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{num} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(b"trailer\n<< /Size " + str(len(objects) + 1).encode() + b" /Root 1 0 R " + trailer_extra
              + b" >>\nstartxref\n" + str(xref).encode() + b"\n%%EOF\n")
    return out.getvalue()


def blank_pdf(pages: int) -> bytes:
    """A PDF with ``pages`` empty A4 pages (made with pypdfium2)."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(595, 842).close()
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    return buf.getvalue()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid 1-bit PNG of ``width`` x ``height`` white pixels, compressed to a few hundred KB
    without ever holding the pixels in memory (rows are streamed through zlib)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\xff" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    parts = []
    rows_per_block = 1000
    for start in range(0, height, rows_per_block):
        parts.append(comp.compress(row * min(rows_per_block, height - start)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def scanned_pdf(image_path: str, stamp: str | None = None, dpi: float = 150) -> bytes:
    """A PDF with one page holding only ``image_path`` as a full-page image (a scan), optionally
    with a small real text ``stamp`` in the corner (as scanners and filing systems add)."""
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as c
    from PIL import Image

    image = Image.open(image_path).convert("RGB")
    width, height = image.width * 72 / dpi, image.height * 72 / dpi
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(width, height)
    obj = pdfium.PdfImage.new(pdf)
    obj.set_bitmap(pdfium.PdfBitmap.from_pil(image))
    obj.set_matrix(pdfium.PdfMatrix().scale(width, height))
    page.insert_obj(obj)
    if stamp:
        font = c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
        text = c.FPDFPageObj_CreateTextObj(pdf.raw, font, 8.0)
        utf16 = (stamp + "\x00").encode("utf-16-le")
        c.FPDFText_SetText(text, ctypes.cast(ctypes.create_string_buffer(utf16, len(utf16)), c.FPDF_WIDESTRING))
        c.FPDFPageObj_Transform(text, 1, 0, 0, 1, 20, 12)
        c.FPDFPage_InsertObject(page.raw, text)
    page.gen_content()
    page.close()
    out = io.BytesIO()
    pdf.save(out)
    pdf.close()
    return out.getvalue()


def no_unicode_pdf(chars: int = 200) -> bytes:
    """A PDF whose text uses a CID font without a ToUnicode map: the text layer exists but its
    characters cannot be mapped to Unicode (what copy-paste turns into garbage)."""
    codes = "".join(f"{0x24 + (i * 7) % 40:04x}" for i in range(chars))
    half = len(codes) // 2
    content = f"BT /F1 10 Tf 50 700 Td <{codes[:half]}> Tj 0 -14 Td <{codes[half:]}> Tj ET".encode()
    return _assemble([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /Arial /Encoding /Identity-H /DescendantFonts [6 0 R] >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Arial /CIDSystemInfo << /Registry (Adobe) "
        b"/Ordering (Identity) /Supplement 0 >> /FontDescriptor 7 0 R >>",
        b"<< /Type /FontDescriptor /FontName /Arial /Flags 32 /FontBBox [0 -200 1000 900] /ItalicAngle 0 "
        b"/Ascent 900 /Descent -200 /CapHeight 700 /StemV 80 >>",
    ])
