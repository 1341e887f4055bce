"""The service with a real redis-server: shared result cache and rate-limit counters in Redis, a tiny
admission queue (503 + Retry-After) and metrics on their own port. Skips when redis-server is absent."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api_helpers import LiveServer, RedisServer, free_port, invoice_pdf

RATE = 6


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    srv = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, redis_server: RedisServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    metrics_port = free_port()
    srv = LiveServer({
        "MODEL_PATH": str(tiny_model_dir), "REDIS_URL": redis_server.url, "RATE_LIMIT": f"{RATE}/minute",
        "QUEUE_SIZE": "2", "MAX_BATCH_SIZE": "4", "METRICS_PORT": str(metrics_port), "API_KEY_REQUIRED": "false",
        "CACHE_SIZE": "100",
    }, tmp_path_factory.mktemp("api-redis") / "server.log")
    srv.metrics_port = metrics_port  # type: ignore[attr-defined]
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def redis_client(redis_server: RedisServer) -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def test_results_are_cached_in_redis(server: LiveServer, redis_client: object) -> None:
    data = invoice_pdf("redis")
    first = httpx.post(server.url + "/predict", files={"file": ("a.pdf", data)}, timeout=30)
    second = httpx.post(server.url + "/predict", files={"file": ("b.pdf", data)}, timeout=30)
    assert first.status_code == second.status_code == 200, first.text
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    keys = redis_client.keys("invoicegen:result:*")  # type: ignore[attr-defined]
    assert len(keys) == 1
    ttl = redis_client.ttl(keys[0])  # type: ignore[attr-defined]
    assert 0 < ttl <= 86_400


def test_full_queue_answers_503_with_retry_after(server: LiveServer) -> None:
    files = [("files", (f"q{i}.pdf", invoice_pdf(f"q{i}"))) for i in range(3)]  # 3 > QUEUE_SIZE=2
    r = httpx.post(server.url + "/predict/batch", files=files, timeout=30)
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "overloaded" and "busy" in r.json()["detail"]


def test_metrics_on_their_own_port(server: LiveServer) -> None:
    port = server.metrics_port  # type: ignore[attr-defined]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"invoicegen_cache_hits", "invoicegen_predictions", "http_requests"} <= names
    assert httpx.get(server.url + "/metrics", timeout=10).status_code == 404  # not on the public port


def test_rate_limit_in_redis_answers_429_with_retry_after(server: LiveServer, redis_client: object) -> None:
    statuses = []
    last = None
    for i in range(RATE + 2):
        last = httpx.post(server.url + "/predict", files={"file": ("r.pdf", invoice_pdf(f"r{i}"))}, timeout=30)
        statuses.append(last.status_code)
        if last.status_code == 429:
            break
    assert last is not None and last.status_code == 429, statuses
    assert 1 <= int(last.headers["retry-after"]) <= 60
    body = last.json()
    assert body["error"] == "rate_limited" and "rate limit exceeded" in body["detail"] and body["request_id"]
    assert redis_client.keys("LIMITS:*invoicegen*")  # type: ignore[attr-defined]  # counters live in Redis
    assert httpx.get(server.url + "/health", timeout=10).status_code == 200  # probes are never limited
