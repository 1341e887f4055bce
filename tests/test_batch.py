"""The local batch runner: output layout, errors.jsonl, reruns, atomic writes, bounded pipelining,
the async API, process mode and the ``invoicegen batch`` command."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from batch_helpers import (
    BAD,
    GOOD,
    SAMPLE_PDF,
    SAMPLE_PNG,
    assert_complete,
    error_lines,
    factory_pdfs,
    make_tree,
    outputs,
    sha256,
    summary_files,
    temp_files,
)
from invoicegen.deployment import batch_io
from invoicegen.deployment.batch_io import (
    BatchError,
    ErrorLog,
    InputFile,
    OutputLock,
    atomic_write_text,
    check_dirs,
    discover_inputs,
)
from invoicegen.deployment.batch_runner import AsyncBatchRunner, _ProcessRun
from invoicegen.deployment.model_loader import ModelLoader
from invoicegen.extract.output import csv_text, summary_row
from invoicegen.extract.pipeline import ExtractOptions
from invoicegen.schema import ExtractionResult

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return factory_pdfs(tmp_path_factory.mktemp("factory"), 5, seed=11)


@pytest.fixture(scope="module")
def loader(tiny_model_dir: Path) -> ModelLoader:
    loader = ModelLoader(tiny_model_dir)
    loader.load_model()
    return loader


def runner(loader: ModelLoader, **kw: Any) -> AsyncBatchRunner:
    kw.setdefault("batch_size", 3)
    kw.setdefault("num_workers", 2)
    return AsyncBatchRunner(model_loader=loader, progress=False, fsync=False, **kw)


def test_outputs_mirror_paths_and_bad_files_go_to_errors_jsonl(tmp_path: Path, loader: ModelLoader,
                                                               pdfs: list[Path]) -> None:
    src, out = make_tree(tmp_path / "in", pdfs), tmp_path / "out"
    stats = runner(loader).process_directory(src, out)

    assert (stats.total, stats.processed, stats.failed, stats.skipped) == (8, 5, 3, 0)
    assert stats.pages >= 5 and stats.seconds > 0 and stats.docs_per_second > 0 and not stats.interrupted
    outs = outputs(out)
    assert sorted(outs) == sorted(GOOD)  # x.pdf -> x.pdf.json, nested dirs kept, hidden file left out
    assert (out / "a" / "b" / "inv1.pdf.json").is_file() and (out / "noext.json").is_file()
    for rel, data in outs.items():
        assert data["document"]["filename"] == rel
        assert data["document"]["sha256"] == sha256(src / rel)
        assert data["document"]["source"] == "pdf-text"  # "noext" was sniffed as a PDF
    errors = error_lines(out)
    assert {e["path"]: e["error"] for e in errors} == BAD
    for e in errors:
        assert set(e) == {"path", "sha256", "error", "message", "time"}
        assert e["sha256"] == sha256(src / e["path"]) and e["path"] in e["message"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", e["time"])
    assert summary_files(out) == sorted(GOOD)
    # the same CSV as `invoicegen extract --format csv` would write for these documents
    expected = csv_text([summary_row(rel, ExtractionResult.model_validate_json((out / f"{rel}.json").read_bytes()))
                         for rel in sorted(GOOD)])
    assert (out / "summary.csv").read_bytes() == expected.encode()
    assert_complete(src, out)


def test_rerun_skips_finished_inputs_redoes_changed_ones_and_retries_failures(
        tmp_path: Path, loader: ModelLoader, pdfs: list[Path]) -> None:
    src, out = make_tree(tmp_path / "in", pdfs), tmp_path / "out"
    runner(loader).process_directory(src, out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}

    shutil.copy(pdfs[4], src / "a" / "inv3.pdf")       # changed content: redone
    shutil.copy(SAMPLE_PDF, src / "empty.pdf")          # a failure fixed: retried, its error line goes
    (src / "notes.txt").unlink()                        # gone: its error line goes
    (src / "a" / "b" / "inv2.pdf").write_bytes(b"%PDF-1.7 garbage")  # now broken: stale output removed
    stats = runner(loader).process_directory(src, out)

    assert (stats.processed, stats.skipped, stats.failed, stats.total) == (2, 3, 2, 7)
    assert {e["path"]: e["error"] for e in error_lines(out)} == {"c/truncated.pdf": "CorruptFileError",
                                                                "a/b/inv2.pdf": "CorruptFileError"}
    assert not (out / "a" / "b" / "inv2.pdf.json").exists()
    for rel in ("a/b/inv1.pdf", "noext", "sample.pdf"):  # skipped inputs were not rewritten
        p = out / f"{rel}.json"
        assert p.stat().st_mtime_ns == mtimes[p]
    assert outputs(out)["a/inv3.pdf"]["document"]["sha256"] == sha256(pdfs[4])
    assert_complete(src, out)

    again = runner(loader).process_directory(src, out)  # nothing left to do but the two broken files
    assert (again.processed, again.skipped, again.failed) == (0, 5, 2)
    assert len(error_lines(out)) == 2
    forced = runner(loader, force=True).process_directory(src, out)
    assert (forced.processed, forced.skipped) == (5, 0)


def test_a_truncated_or_foreign_output_is_redone_and_temp_leftovers_are_swept(
        tmp_path: Path, loader: ModelLoader) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(SAMPLE_PDF, src / "x.pdf")
    shutil.copy(SAMPLE_PDF, src / "y.pdf")
    out.mkdir()
    (out / "x.pdf.json").write_text('{"document": {"filename": "x.pdf", "sha2')  # what a non-atomic writer leaves
    leftover = out / f".y.pdf.json.abc123{batch_io.TMP_SUFFIX}"
    leftover.write_text("{")
    stats = runner(loader).process_directory(src, out)
    assert stats.processed == 2 and not leftover.exists()
    assert_complete(src, out)


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "d" / "r.json"
    atomic_write_text(target, "old\n")
    assert target.read_text() == "old\n"

    def boom(a: Any, b: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(batch_io.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert os.listdir(target.parent) == ["r.json"]  # the temp file is gone too


def test_error_log_never_glues_onto_a_cut_line_and_compacts_to_one_line_per_input(tmp_path: Path) -> None:
    (tmp_path / "errors.jsonl").write_text('{"path": "a.pdf", "error": "X"}\n{"path": "b.pd')  # killed mid-line
    log = ErrorLog(tmp_path, fsync=False)
    log.record("a.pdf", "1" * 64, "CorruptFileError", "a.pdf: again")
    log.record("c.pdf", "2" * 64, "EmptyFileError", "c.pdf: empty")
    assert len(log.path.read_text().splitlines()) == 4
    assert log.compact(["a.pdf", "b.pdf", "c.pdf", "d.pdf"], done={"c.pdf"}) == 1
    lines = error_lines(tmp_path)
    assert [(e["path"], e["message"]) for e in lines] == [("a.pdf", "a.pdf: again")]


@pytest.mark.parametrize("batch_size", [3, 1])
def test_model_stage_failure_fails_only_that_document(tmp_path: Path, loader: ModelLoader, batch_size: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        shutil.copy(SAMPLE_PDF, src / name)
    extractor = loader.model
    real = extractor.extract_many

    def flaky(docs: Any, **kw: Any) -> Any:
        if any(d.document.filename == "b.pdf" for d in docs):
            raise RuntimeError("model exploded")
        return real(docs, **kw)

    monkeypatch.setattr(extractor, "extract_many", flaky)
    stats = runner(loader, batch_size=batch_size).process_directory(src, out)
    assert (stats.processed, stats.failed) == (2, 1)
    assert [(e["path"], e["error"], e["message"]) for e in error_lines(out)] == [
        ("b.pdf", "RuntimeError", "RuntimeError: model exploded")]
    assert_complete(src, out)


def test_pipeline_is_bounded_and_batches_documents(tmp_path: Path, loader: ModelLoader,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(14):
        shutil.copy(SAMPLE_PDF, src / f"d{i:02d}.pdf")
    alive, peak, batches = [0], [0], []
    real_load = batch_io.load_document

    def counting_load(*a: Any, **kw: Any) -> Any:
        doc = real_load(*a, **kw)
        alive[0] += 1
        peak[0] = max(peak[0], alive[0])
        close = doc.close

        def counted_close() -> None:
            if not doc._closed:
                alive[0] -= 1
            close()

        doc.close = counted_close  # type: ignore[method-assign]
        return doc

    extractor = loader.model
    real_many = extractor.extract_many

    def recording_many(docs: Any, **kw: Any) -> Any:
        batches.append(len(docs))
        return real_many(docs, **kw)

    monkeypatch.setattr(batch_io, "load_document", counting_load)
    monkeypatch.setattr(extractor, "extract_many", recording_many)
    stats = runner(loader, batch_size=4, num_workers=2, max_inflight=6).process_directory(src, out)
    assert stats.processed == 14
    assert peak[0] <= 6, f"{peak[0]} documents open at once with max_inflight=6"
    assert alive[0] == 0
    assert max(batches) <= 4 and sum(batches) == 14 and max(batches) > 1


def test_async_api_and_process_pool_give_the_same_outputs(tmp_path: Path, loader: ModelLoader,
                                                          pdfs: list[Path]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for p in pdfs[:2]:
        shutil.copy(p, src / p.name)
    shutil.copy(SAMPLE_PNG, src / "scan.dat")  # an image, sniffed from its bytes
    opts = ExtractOptions(ocr="none")  # no OCR: keeps the test fast, the image still goes through
    threads = asyncio.run(runner(loader, options=opts).process_directory_async(input_dir=src,
                                                                               output_dir=tmp_path / "t"))
    procs = runner(loader, options=opts, use_threads=False).process_directory(src, tmp_path / "p")
    assert threads.processed == procs.processed == 3
    assert outputs(tmp_path / "t") == outputs(tmp_path / "p")
    assert outputs(tmp_path / "t")["scan.dat"]["document"]["source"] == "none"


def test_async_cancel_stops_gracefully(tmp_path: Path, loader: ModelLoader) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(30):
        shutil.copy(SAMPLE_PDF, src / f"d{i:02d}.pdf")

    async def main() -> None:
        task = asyncio.create_task(runner(loader, batch_size=2).process_directory_async(src, out))
        while not list(out.glob("*.json")):
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    done = list(out.glob("*.json"))
    assert 0 < len(done) < 30 and not temp_files(out)
    assert sorted(summary_files(out)) == sorted(p.name.removesuffix(".json") for p in done)


def test_process_mode_reports_workers_that_cannot_load_the_model(tmp_path: Path) -> None:
    src, broken_model = tmp_path / "in", tmp_path / "model"
    src.mkdir()
    broken_model.mkdir()  # exists, but holds no checkpoint: every worker's initializer fails
    shutil.copy(SAMPLE_PDF, src / "x.pdf")
    with pytest.raises(BatchError, match="worker processes died"):
        AsyncBatchRunner(ModelLoader(broken_model), num_workers=1, use_threads=False,
                         progress=False).process_directory(src, tmp_path / "out")
    assert error_lines(tmp_path / "out") == []  # not one error line per input
    with pytest.raises(BatchError, match="worker processes died"):  # the same from a warm start
        AsyncBatchRunner(ModelLoader(broken_model), num_workers=1, use_threads=False, progress=False).start()


def test_process_mode_warm_start_gives_the_same_outputs(tmp_path: Path, loader: ModelLoader,
                                                       pdfs: list[Path]) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(7):
        shutil.copy(pdfs[i % len(pdfs)], src / f"d{i}.pdf")
    procs = runner(loader, batch_size=4, use_threads=False)
    assert procs.start() > 0  # spawned, models loaded and warmed up
    assert procs.process_directory(src, tmp_path / "p").processed == 7
    procs.close()  # nothing left to stop: the run took the processes over
    assert runner(loader).process_directory(src, tmp_path / "t").processed == 7
    assert outputs(tmp_path / "p") == outputs(tmp_path / "t")


def test_process_mode_hands_out_smaller_chunks_towards_the_end(tmp_path: Path, loader: ModelLoader) -> None:
    inputs = [InputFile(tmp_path / f"{i:02d}.pdf", f"{i:02d}.pdf") for i in range(40)]
    run = _ProcessRun(runner(loader, batch_size=8, num_workers=2, use_threads=False), None, tmp_path / "out",
                      inputs, threading.Event(), 1)
    sizes = []
    try:
        while chunk := run._next_chunk():
            sizes.append(len(chunk))
    finally:
        run.pool.shutdown()
        run.model_pool.shutdown()
        run.errors.close()
        run.bar.close()
    assert sizes == [8, 8, 6, 5, 4, 4, 4, 1]  # what is left / (2 x workers), at least 4, at most the batch


def test_directories_are_checked_and_the_output_is_locked(tmp_path: Path, loader: ModelLoader) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLE_PDF, src / "x.pdf")
    with pytest.raises(BatchError, match="does not exist"):
        check_dirs(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(BatchError, match="must differ"):
        check_dirs(src, src)
    # an output directory inside the input directory is not read as input
    inner = src / "results"
    runner(loader).process_directory(src, inner)
    assert [i.rel for i in discover_inputs(src, inner)] == ["x.pdf"]
    assert runner(loader).process_directory(src, inner).skipped == 1
    with OutputLock(inner), pytest.raises(BatchError, match="another batch run"):
        runner(loader).process_directory(src, inner)
    with pytest.raises(BatchError, match="--ocr"):
        runner(loader, options=ExtractOptions(ocr="easyocr"))


def test_ignore_unsupported_skips_non_documents(tmp_path: Path, loader: ModelLoader) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(SAMPLE_PDF, src / "x.pdf")
    (src / "README.md").write_text("# notes")
    stats = runner(loader, ignore_unsupported=True).process_directory(src, out)
    assert (stats.processed, stats.ignored, stats.failed) == (1, 1, 0)
    assert error_lines(out) == []


cli = CliRunner()


def test_cli_batch_exit_codes_and_messages(tmp_path: Path, tiny_model_dir: Path) -> None:
    from invoicegen.cli import app

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(SAMPLE_PDF, src / "x.pdf")
    args = ["batch", str(src), str(out), "--model", str(tiny_model_dir), "--workers", "1", "--batch-size", "2",
            "--no-progress"]
    ok = cli.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "1 processed, 0 failed" in ok.output and json.loads((out / "x.pdf.json").read_text())
    assert "1 process)" in ok.output  # on CPU the pipeline runs in processes unless --threads

    (src / "bad.pdf").write_bytes(b"")
    failed = cli.invoke(app, args)
    assert failed.exit_code == 2 and "1 input(s) failed" in failed.output and "errors.jsonl" in failed.output

    missing = cli.invoke(app, ["batch", str(src), str(out), "--model", str(tmp_path / "nope"), "--no-progress"])
    assert missing.exit_code == 1 and "does not exist" in missing.output

    for flag in ("--workers", "--batch-size"):  # refused by name before anything starts
        zero = cli.invoke(app, ["batch", str(src), str(tmp_path / "out0"), flag, "0"])
        assert zero.exit_code == 2 and flag in zero.output and not (tmp_path / "out0").exists()


def test_cli_ray_engine_without_ray_says_how_to_install(tmp_path: Path, tiny_model_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from invoicegen.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    src = tmp_path / "in"
    src.mkdir()
    result = cli.invoke(app, ["batch", str(src), str(tmp_path / "out"), "--engine", "ray", "--model",
                              str(tiny_model_dir), "--no-progress"])
    assert result.exit_code == 1
    assert 'pip install "invoicegen[ray]"' in result.output
