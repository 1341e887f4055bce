"""Helpers for the API tests: small documents made on the fly, a real uvicorn process, a redis-server.

Why real processes: the service's behaviour under test (lifespan, workers, middlewares in order,
gzip, graceful shutdown, Redis) is what uvicorn runs, not what an in-process test client emulates.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_pdf(lines: list[str], pages: int = 1) -> bytes:
    """A valid PDF with a Helvetica text layer (no OCR needed), ``lines`` on every page."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    font_id = 3 + 2 * pages
    for i in range(pages):
        text = ["BT /F1 11 Tf"]
        y = 800
        for line in lines:
            safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            text.append(f"1 0 0 1 50 {y} Tm ({safe}) Tj")
            y -= 16
        text.append("ET")
        stream = "\n".join(text).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


INVOICE_LINES = [
    "INVOICE", "Invoice No: INV-4711", "Date: 2024-03-15", "Acme GmbH",
    "Description Qty Amount", "Widget Bolt 2 40.00", "Cable Lamp 1 25.00", "Total: 65.00",
]


def invoice_pdf(tag: str = "") -> bytes:
    """A one-page invoice-like PDF; ``tag`` makes the bytes (and the cache key) unique."""
    return make_pdf(INVOICE_LINES + ([f"Ref {tag}"] if tag else []))


def make_png(width: int = 200, height: int = 100) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, format="PNG")
    return buf.getvalue()


def encrypted_pdf(tmp: Path) -> bytes | None:
    """The invoice PDF encrypted with a user password (None when qpdf is missing)."""
    qpdf = shutil.which("qpdf")
    if qpdf is None:
        return None
    src, dst = tmp / "plain.pdf", tmp / "locked.pdf"
    src.write_bytes(invoice_pdf("locked"))
    subprocess.run([qpdf, "--encrypt", "secret", "owner", "256", "--", str(src), str(dst)], check=True)
    return dst.read_bytes()


class LiveServer:
    """``invoicegen serve`` in a subprocess on a free loopback port; killed by :meth:`stop`."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full = {**os.environ, "API_HOST": "127.0.0.1", "API_PORT": str(self.port), "API_WORKERS": "1",
                "LOG_LEVEL": "info", "OMP_NUM_THREADS": "1", **env}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "invoicegen.cli", "serve"], env=full,
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=log_path.parent,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.logs()[-3000:]}")

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM (graceful), then SIGKILL after 10 s; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


class RedisServer:
    """A throwaway redis-server on a free loopback port (no persistence)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
