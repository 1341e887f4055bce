"""Locust load profile for the InvoiceGen API: users POST invoices to /predict without pause.

Run it through ``benchmarks/load_test.py`` (starts its own server on loopback, cache off and on), or
against a running server:

    locust -f locustfile.py --headless -u 8 -r 8 -t 60s --host http://127.0.0.1:8000

Environment: LOAD_TEST_DOC (default: the bundled sample invoice PDF), LOAD_TEST_VARIANTS (distinct
documents, default 16: with the cache on, each is computed once and then served from the cache),
API_KEY (sent as X-API-Key when set). Keep this file out of app and test processes: importing
locust monkey-patches the standard library through gevent.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from locust import HttpUser, constant, task

ROOT = Path(__file__).resolve().parent
DOC = Path(os.environ.get("LOAD_TEST_DOC") or ROOT / "src" / "invoicegen" / "samples" / "sample_invoice.pdf")
N_VARIANTS = max(1, int(os.environ.get("LOAD_TEST_VARIANTS", "16")))
API_KEY = os.environ.get("API_KEY", "")


def _variants() -> list[bytes]:
    """Distinct bytes of the same document (a comment after %%EOF, which PDF readers ignore), so
    each variant has its own cache key."""
    data = DOC.read_bytes()
    return [data + f"\n% load-test variant {i}\n".encode() for i in range(N_VARIANTS)]


VARIANTS = _variants()
MEDIA_TYPE = "application/pdf" if VARIANTS[0].lstrip()[:5] == b"%PDF-" else "application/octet-stream"


class InvoiceUser(HttpUser):
    wait_time = constant(0)

    @task
    def predict(self) -> None:
        headers = {"X-API-Key": API_KEY} if API_KEY else {}
        files = {"file": (DOC.name, random.choice(VARIANTS), MEDIA_TYPE)}
        self.client.post("/predict", files=files, headers=headers, name="/predict", timeout=120)
