"""``invoicegen read``: table, JSON and overlay on the bundled sample; bad files give one clear line
and exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from invoicegen.cli import app
from invoicegen.document import load_document
from invoicegen.schema import Document

SAMPLE = Path(__file__).resolve().parent.parent / "src" / "invoicegen" / "samples" / "sample_invoice.pdf"

runner = CliRunner()


def test_read_prints_a_table_of_words() -> None:
    result = runner.invoke(app, ["read", str(SAMPLE)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "pdf-text" in result.output and "INV-2024-0117" in result.output and "1,410.39" in result.output


def test_read_json_is_the_schema_document() -> None:
    result = runner.invoke(app, ["read", str(SAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    doc = Document.model_validate_json(result.stdout)
    assert doc.filename == "sample_invoice.pdf" and doc.source == "pdf-text"
    words = {w.text: w.bbox for w in doc.pages[0].words}
    assert "INV-2024-0117" in words and words["INVOICE"][1] < 100


def test_read_overlay_draws_the_boxes(tmp_path: Path) -> None:
    out = tmp_path / "overlay.png"
    result = runner.invoke(app, ["read", str(SAMPLE), "--json", "--overlay", str(out), "--dpi", "100"])
    assert result.exit_code == 0, result.output
    Document.model_validate_json(result.stdout)  # the overlay note goes to stderr, JSON stays clean
    overlay = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert overlay.shape == (1170, 827, 3)
    with load_document(SAMPLE, dpi=100) as doc:
        plain = np.asarray(doc.page_image(0)).astype(int)

    def box_blue(a: np.ndarray) -> int:  # pixels in the outline colour of text-layer boxes
        return int((np.abs(a - np.array([31, 119, 180])).sum(axis=2) < 40).sum())

    assert box_blue(plain) < 100 and box_blue(overlay) > 5000


def test_read_overlay_writes_one_png_per_page(tmp_path: Path) -> None:
    from pdf_factory import blank_pdf

    two = tmp_path / "two.pdf"
    two.write_bytes(blank_pdf(2))
    out = tmp_path / "ov.png"
    result = runner.invoke(app, ["read", str(two), "--overlay", str(out), "--ocr", "none"])
    assert result.exit_code == 0, result.output
    assert out.exists() and (tmp_path / "ov-p2.png").exists()


def test_bad_file_gives_one_line_and_exit_code_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    result = runner.invoke(app, ["read", str(empty)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: empty.pdf: the file is empty (0 bytes)"
    assert "Traceback" not in result.output

    gif = tmp_path / "logo.gif"
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    result = runner.invoke(app, ["read", str(gif)])
    assert result.exit_code == 2 and "unsupported file type" in result.stderr


def test_missing_file_and_bad_option_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["read", str(tmp_path / "nope.pdf")]).exit_code == 2
    result = runner.invoke(app, ["read", str(SAMPLE), "--ocr", "easyocr"])
    assert result.exit_code == 2 and "ocr must be one of" in result.stderr
