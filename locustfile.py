"""Locust load profile for the InvoiceGen API: users POST invoices to /predict without pause.

Run it through ``benchmarks/load_test.py`` (starts its own server on loopback, cache off and on), or
against a running server:

    locust -f locustfile.py --headless -u 8 -r 8 -t 60s --host http://127.0.0.1:8000

Environment: LOAD_TEST_DOC (default: the bundled sample invoice PDF), LOAD_TEST_VARIANTS (distinct
documents, default 16: with the cache on, each is computed once and then served from the cache),
API_KEY (sent as X-API-Key when set). Keep this file out of app and test processes: importing
locust monkey-patches the standard library through gevent.

Why ``FastHttpUser`` (geventhttpclient) and bodies encoded once: the load generator usually shares
the cores with the server under test, and every millisecond of CPU it spends per request (the
python-requests stack of ``HttpUser``, multipart encoding) is taken from the server and shows up
as server latency. The requests on the wire are the same multipart uploads either way.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from locust import FastHttpUser, constant, task
from urllib3 import encode_multipart_formdata

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


def _upload(data: bytes) -> tuple[bytes, dict[str, str]]:
    """The multipart/form-data body of one upload (field ``file``) and its headers."""
    body, content_type = encode_multipart_formdata({"file": (DOC.name, data, MEDIA_TYPE)})
    headers = {"Content-Type": content_type}
    if API_KEY:
        headers["X-API-Key"] = API_KEY
    return body, headers


UPLOADS = [_upload(v) for v in VARIANTS]


class InvoiceUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 120.0
    connection_timeout = 120.0

    @task
    def predict(self) -> None:
        body, headers = random.choice(UPLOADS)
        self.client.post("/predict", data=body, headers=headers, name="/predict")
