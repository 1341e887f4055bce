"""Regenerate the bundled sample invoice: a born-digital PDF and a "scanned" PNG of it.

Why: the README demo, the CLI tests and new users need one small invoice that is ours to ship
(made here from the HTML below, no third-party content). Run from the repository root:

    .venv/bin/python scripts/make_samples.py

Writes ``src/invoicegen/samples/sample_invoice.pdf`` (WeasyPrint) and
``src/invoicegen/samples/sample_invoice_scan.png`` (the PDF rendered at 150 dpi, rotated by 0.8
degrees, with paper noise and dust, grey levels reduced so the PNG stays small). Deterministic:
fixed seed, fixed dates, no fonts beyond DejaVu (always present with WeasyPrint on Debian).
"""

from __future__ import annotations

import io
import random
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent.parent / "src" / "invoicegen" / "samples"
SCAN_DPI = 150

ITEMS = [
    # description, sku, quantity, unit, unit price
    ("Ergonomic office chair, black", "CH-2040", 2, "pcs", "189.00"),
    ("Standing desk frame, electric", "DK-1180", 1, "pcs", "429.00"),
    ("Recycled copy paper A4, 80 g/m2", "PP-0080", 10, "box", "24.50"),
    ("Whiteboard markers, assorted (pack of 12)", "WM-0012", 3, "pack", "11.90"),
    ("On-site assembly service", "SV-0100", 1.5, "h", "65.00"),
]
VAT_RATE = "19"

HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice INV-2024-0117</title>
<style>
  @page {{ size: A4; margin: 18mm 18mm 20mm 18mm; }}
  body {{ font-family: "DejaVu Sans", sans-serif; font-size: 9.5pt; color: #222; }}
  .top {{ display: flex; justify-content: space-between; align-items: flex-start; }}
  .seller-name {{ font-size: 15pt; font-weight: bold; color: #1d3557; }}
  .small {{ font-size: 8.5pt; color: #444; line-height: 1.35; }}
  h1 {{ font-size: 20pt; margin: 0 0 4mm 0; color: #1d3557; text-align: right; }}
  table.meta td {{ padding: 0.4mm 0 0.4mm 5mm; }}
  table.meta td.k {{ color: #555; }}
  .parties {{ display: flex; justify-content: space-between; margin: 10mm 0 8mm 0; }}
  .box {{ width: 46%; }}
  .label {{ font-size: 8pt; text-transform: uppercase; color: #777; letter-spacing: 0.5pt;
            border-bottom: 0.5pt solid #bbb; margin-bottom: 1.5mm; }}
  table.items {{ width: 100%; border-collapse: collapse; }}
  table.items th {{ background: #1d3557; color: white; text-align: left; padding: 1.8mm 2mm; font-size: 8.5pt; }}
  table.items td {{ padding: 1.8mm 2mm; border-bottom: 0.5pt solid #ddd; }}
  .num {{ text-align: right; }}
  table.totals {{ margin-left: auto; margin-top: 5mm; border-collapse: collapse; }}
  table.totals td {{ padding: 1mm 2mm; }}
  table.totals tr.total td {{ font-weight: bold; font-size: 11pt; border-top: 1pt solid #1d3557; }}
  .notes {{ margin-top: 12mm; }}
  .footer {{ position: fixed; bottom: 0; left: 0; right: 0; font-size: 7.5pt; color: #666;
             border-top: 0.5pt solid #bbb; padding-top: 2mm; display: flex; justify-content: space-between; }}
</style></head>
<body>
<div class="top">
  <div>
    <div class="seller-name">Northwind Office Supplies GmbH</div>
    <div class="small">Hafenstrasse 12<br>20457 Hamburg, Germany<br>
      VAT ID: DE 811 907 980<br>billing@northwind-office.example<br>+49 40 5550 1234</div>
  </div>
  <div>
    <h1>INVOICE</h1>
    <table class="meta">
      <tr><td class="k">Invoice No.</td><td>INV-2024-0117</td></tr>
      <tr><td class="k">Invoice date</td><td>15.03.2024</td></tr>
      <tr><td class="k">Due date</td><td>14.04.2024</td></tr>
      <tr><td class="k">PO number</td><td>PO-88213</td></tr>
      <tr><td class="k">Customer No.</td><td>C-10442</td></tr>
    </table>
  </div>
</div>
<div class="parties">
  <div class="box"><div class="label">Bill to</div>
    <b>Acme Analytics Ltd</b><br>Attn. Accounts Payable<br>4 Canal Street<br>Manchester M1 3HE<br>
    United Kingdom<br>VAT ID: GB 123 4567 89</div>
  <div class="box"><div class="label">Ship to</div>
    <b>Acme Analytics Ltd</b><br>Warehouse 2, Trafford Park<br>Manchester M17 1AB<br>United Kingdom</div>
</div>
<table class="items">
  <tr><th>#</th><th>Description</th><th>SKU</th><th class="num">Qty</th><th>Unit</th>
      <th class="num">Unit price</th><th class="num">Amount</th></tr>
  {rows}
</table>
<table class="totals">
  <tr><td>Subtotal</td><td class="num">EUR {subtotal}</td></tr>
  <tr><td>VAT {vat_rate}%</td><td class="num">EUR {vat}</td></tr>
  <tr class="total"><td>Total due</td><td class="num">EUR {total}</td></tr>
</table>
<div class="notes small">
  Payment terms: 30 days net. Please quote the invoice number with your payment.<br>
  Bank: Hanseatic Example Bank, IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX
</div>
<div class="footer"><span>Northwind Office Supplies GmbH, Hamburg, HRB 123456</span>
  <span>Managing director: Jana Petersen</span><span>Page 1 of 1</span></div>
</body></html>
"""


def money(value: float) -> str:
    """Two decimals with thousands separators (the sample is in English number format)."""
    return f"{value:,.2f}"


def invoice_html() -> str:
    """The sample invoice as HTML, with amounts computed (so subtotal, VAT and total agree)."""
    rows = []
    subtotal = 0.0
    for i, (desc, sku, qty, unit, price) in enumerate(ITEMS, 1):
        amount = round(float(qty) * float(price), 2)
        subtotal += amount
        qty_text = f"{qty:g}"
        rows.append(
            f'<tr><td>{i}</td><td>{desc}</td><td>{sku}</td><td class="num">{qty_text}</td><td>{unit}</td>'
            f'<td class="num">{money(float(price))}</td><td class="num">{money(amount)}</td></tr>'
        )
    vat = round(subtotal * float(VAT_RATE) / 100, 2)
    return HTML.format(rows="\n  ".join(rows), subtotal=money(subtotal), vat_rate=VAT_RATE,
                       vat=money(vat), total=money(subtotal + vat))


def make_pdf(path: Path) -> bytes:
    from weasyprint import HTML as WeasyHTML

    data: bytes = WeasyHTML(string=invoice_html()).write_pdf()
    path.write_bytes(data)
    return data


def make_scan(pdf_bytes: bytes, path: Path, seed: int = 7) -> None:
    """Render, tilt, add paper noise and dust, and save as a small palette PNG."""
    import numpy as np
    import pypdfium2 as pdfium
    from PIL import Image, ImageFilter

    pdf = pdfium.PdfDocument(pdf_bytes)
    try:
        page = pdf[0]
        image = page.render(scale=SCAN_DPI / 72).to_pil().convert("L")
        page.close()
    finally:
        pdf.close()
    image = image.rotate(0.8, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    image = image.filter(ImageFilter.GaussianBlur(0.5))
    rng = np.random.default_rng(seed)
    arr = np.asarray(image, dtype=np.float32)
    arr = arr * 0.92 + 12 + rng.normal(0, 3.0, arr.shape)  # greyish paper, sensor noise
    random.seed(seed)
    for _ in range(350):  # dust specks
        y, x = random.randrange(arr.shape[0]), random.randrange(arr.shape[1])
        arr[y:y + random.randint(1, 3), x:x + random.randint(1, 3)] = random.randint(40, 140)
    # 8 evenly spaced grey levels: still looks like a scan (noisy edges, specks) but the paper
    # becomes one flat tone, so the PNG stays small (plain noise would make it ~1 MB).
    levels = np.round(arr.clip(0, 255) / 255 * 7) * (255 / 7)
    out = Image.fromarray(levels.astype(np.uint8), "L").convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True, dpi=(SCAN_DPI, SCAN_DPI))
    path.write_bytes(buf.getvalue())


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    pdf_path = OUT_DIR / "sample_invoice.pdf"
    scan_path = OUT_DIR / "sample_invoice_scan.png"
    pdf_bytes = make_pdf(pdf_path)
    make_scan(pdf_bytes, scan_path)
    for p in (pdf_path, scan_path):
        print(f"{p.relative_to(OUT_DIR.parent.parent.parent)}: {p.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
