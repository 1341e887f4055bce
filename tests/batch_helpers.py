"""Inputs and checks shared by the batch-runner tests (local engine, Ray engine, fault tests)."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from invoicegen.deployment.batch_io import ERRORS_FILE, SUMMARY_FILE, TMP_SUFFIX
from invoicegen.schema import ExtractionResult

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "src" / "invoicegen" / "samples"
SAMPLE_PDF = SAMPLES / "sample_invoice.pdf"
SAMPLE_PNG = SAMPLES / "sample_invoice_scan.png"


def factory_pdfs(root: Path, n: int, seed: int) -> list[Path]:
    """``n`` born-digital invoices from the project's own factory."""
    from invoicegen.synth.dataset import GenConfig, generate

    generate(n, GenConfig(out=root, seed=seed), workers=1)
    return sorted((root / "pdf").glob("*.pdf"))


GOOD = ("a/b/inv1.pdf", "a/b/inv2.pdf", "a/inv3.pdf", "noext", "sample.pdf")
"""Inputs of :func:`make_tree` that must succeed (``noext`` is a PDF without an extension)."""
BAD = {"empty.pdf": "EmptyFileError", "c/truncated.pdf": "CorruptFileError", "notes.txt": "UnsupportedFileType"}
"""Inputs of :func:`make_tree` that must fail, with their error type."""


def make_tree(root: Path, pdfs: list[Path]) -> Path:
    """An input tree with nested PDFs, a PDF without extension, a hidden file and three bad files."""
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    for rel, src in zip(("a/b/inv1.pdf", "a/b/inv2.pdf", "a/inv3.pdf", "noext"), pdfs, strict=False):
        shutil.copy(src, root / rel)
    shutil.copy(SAMPLE_PDF, root / "sample.pdf")
    (root / "empty.pdf").write_bytes(b"")
    (root / "c" / "truncated.pdf").write_bytes(SAMPLE_PDF.read_bytes()[:2000])
    (root / "notes.txt").write_text("not an invoice\n")
    shutil.copy(SAMPLE_PDF, root / ".hidden.pdf")
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_files(in_dir: Path) -> list[str]:
    """Relative paths of the inputs a run must account for (non-hidden regular files)."""
    return sorted(p.relative_to(in_dir).as_posix() for p in in_dir.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(in_dir).parts))


def error_lines(out_dir: Path) -> list[dict[str, Any]]:
    path = out_dir / ERRORS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def outputs(out_dir: Path) -> dict[str, dict[str, Any]]:
    """rel -> output JSON without ``timings_ms`` (every output must be complete and valid)."""
    found = {}
    for p in sorted(out_dir.rglob("*.json")):
        ExtractionResult.model_validate_json(p.read_text())
        data = json.loads(p.read_text())
        data.pop("timings_ms")
        found[p.relative_to(out_dir).as_posix().removesuffix(".json")] = data
    return found


def summary_files(out_dir: Path) -> list[str]:
    with open(out_dir / SUMMARY_FILE, newline="") as fh:
        return [row["file"] for row in csv.DictReader(fh)]


def temp_files(out_dir: Path) -> list[Path]:
    return [p for p in out_dir.rglob("*") if p.name.endswith(TMP_SUFFIX)]


def assert_complete(in_dir: Path, out_dir: Path) -> None:
    """The end state of a finished run: every input has exactly one up-to-date output or exactly
    one error line (never both), no temp files, and summary.csv lists exactly the outputs."""
    inputs = input_files(in_dir)
    outs = outputs(out_dir)
    errors = error_lines(out_dir)
    err_paths = [e["path"] for e in errors]
    assert len(err_paths) == len(set(err_paths)), f"duplicate error lines: {err_paths}"
    for rel in inputs:
        has_out, has_err = rel in outs, rel in err_paths
        assert has_out != has_err, f"{rel}: output={has_out} error={has_err}"
        if has_out:
            assert outs[rel]["document"]["sha256"] == sha256(in_dir / rel), f"{rel}: stale output"
    assert set(outs) <= set(inputs)
    assert set(err_paths) <= set(inputs)
    assert not temp_files(out_dir)
    assert sorted(summary_files(out_dir)) == sorted(outs)
