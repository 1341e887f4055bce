"""Fault tolerance of ``invoicegen batch``: a run killed mid-way (Ctrl-C or SIGKILL) leaves only
complete outputs, no stray processes, and a rerun finishes the job with exactly one output or one
error line per input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch_helpers import SAMPLE_PDF, assert_complete, outputs, summary_files, temp_files
from invoicegen.deployment.batch_io import ERRORS_FILE, ErrorLog, output_path
from invoicegen.deployment.batch_runner import AsyncBatchRunner
from invoicegen.deployment.model_loader import ModelLoader

pytestmark = [pytest.mark.timeout(300), pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals")]

N_GOOD = 80


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for i in range(N_GOOD):
        shutil.copy(SAMPLE_PDF, src / ("sub" if i % 2 else ".") / f"d{i:03d}.pdf")
    (src / "broken.pdf").write_bytes(SAMPLE_PDF.read_bytes()[:1500])
    (src / "empty.pdf").write_bytes(b"")
    return src


def _start(src: Path, out: Path, model: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "invoicegen.cli", "batch", str(src), str(out), "--model", str(model),
           "--batch-size", "2", "--workers", "2", "--no-progress", *extra]
    # its own session: a signal to the group is what a terminal's Ctrl-C does
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for_outputs(out: Path, n: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.communicate()}")
        if sum(1 for _ in out.rglob("*.json")) >= n:
            return
        time.sleep(0.05)
    pytest.fail("no outputs appeared")


def _group_gone(pgid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(("sig", "extra"), [(signal.SIGINT, ()), (signal.SIGKILL, ("--threads",)),
                                            (signal.SIGKILL, ())],
                         ids=["ctrl-c-processes", "sigkill-threads", "sigkill-processes"])
def test_killed_run_leaves_complete_outputs_and_a_rerun_finishes(
        corpus: Path, tmp_path: Path, tiny_model_dir: Path, sig: signal.Signals, extra: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    proc = _start(corpus, out, tiny_model_dir, *extra)
    try:
        _wait_for_outputs(out, 6, proc)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert _group_gone(proc.pid), "loader processes outlived the run"

    # what the killed run left: only complete outputs (outputs() validates each one), for inputs
    # that exist, and at most hidden temp files
    done = outputs(out)
    assert 0 < len(done) < N_GOOD, "the run was not interrupted mid-way"
    assert all(p.name.startswith(".") for p in temp_files(out))
    assert not [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")
                and p.suffix not in (".json", ".jsonl", ".csv")]
    if sig == signal.SIGINT:
        assert proc.returncode == 130, stderr
        assert "stopping after the current batch" in stderr and "run the same command again" in stderr
        assert not temp_files(out)
        assert sorted(summary_files(out)) == sorted(done)  # flushed on the way out
        assert {e["path"] for e in ErrorLog(out).entries()} <= {"broken.pdf", "empty.pdf"}
    else:
        assert proc.returncode == -signal.SIGKILL

    loader = ModelLoader(tiny_model_dir)
    stats = AsyncBatchRunner(loader, batch_size=8, num_workers=2, progress=False).process_directory(corpus, out)
    assert stats.skipped == len(done)
    assert stats.processed == N_GOOD - len(done)
    assert stats.failed == 2
    assert_complete(corpus, out)
    lines = (out / ERRORS_FILE).read_text().splitlines()
    assert len(lines) == 2
    assert output_path(out, "sub/d001.pdf").is_file()
