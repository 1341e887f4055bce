"""API building blocks in-process: settings, keys, cache keys, the micro-batcher, the model loader."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api_helpers import invoice_pdf
from invoicegen.cli import app as cli_app
from invoicegen.deployment.batching import InferenceTimeout, MicroBatcher, Overloaded
from invoicegen.deployment.cache import MemoryCache, cache_key
from invoicegen.deployment.metrics import ServiceMetrics
from invoicegen.deployment.model_loader import ModelLoader, resolve_device
from invoicegen.deployment.security import KeyStore
from invoicegen.deployment.settings import Settings, SettingsError, load_settings
from invoicegen.errors import CorruptFileError, UnsupportedFileType
from invoicegen.extract.pipeline import ExtractOptions
from invoicegen.schema import DocumentInfo, ExtractionResult, ModelInfo

ENV_VARS = ("MODEL_PATH", "API_PORT", "API_KEY", "API_KEYS", "API_KEYS_FILE", "API_KEY_REQUIRED", "RATE_LIMIT",
            "CORS_ORIGINS", "MODEL_BACKEND", "LOG_LEVEL", "REDIS_URL", "METRICS_PORT", "MODEL_WORKERS", "MODEL_THREADS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No service variable from the outer environment, and no stray .env in the working directory."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


# -- settings --------------------------------------------------------------------------------------


def test_settings_defaults_and_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.api_port, s.api_workers, s.model_backend, s.rate_limit) == (8000, 1, "auto", "60/minute")
    monkeypatch.setenv("API_KEYS", "alpha, beta,,gamma")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,http://localhost:3000")
    monkeypatch.setenv("MODEL_BACKEND", "ONNX-INT8")
    monkeypatch.setenv("RATE_LIMIT", "off")
    s = load_settings()
    assert s.load_api_keys() == ["alpha", "beta", "gamma"]
    assert s.cors_origins == ["https://a.example", "http://localhost:3000"]
    assert s.model_backend == "onnx-int8"
    assert s.rate_limit == ""
    assert "alpha" not in repr(s)  # keys are secrets


def test_settings_read_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("API_PORT=9123\nMAX_BATCH_SIZE=3\n")
    s = load_settings()
    assert (s.api_port, s.max_batch_size) == (9123, 3)


@pytest.mark.parametrize(("name", "value"), [
    ("API_PORT", "abc"), ("API_PORT", "70000"), ("MODEL_BACKEND", "tensorrt"), ("LOG_LEVEL", "loud"),
    ("RATE_LIMIT", "10/fortnight"), ("MAX_BATCH_SIZE", "0"), ("INFERENCE_TIMEOUT", "-1"),
    ("REDIS_URL", "http://localhost"), ("CORS_ORIGINS", "example.com"), ("USE_GPU", "maybe"),
    ("API_KEYS_FILE", "/nonexistent/keys"), ("OCR_ENGINE", "easyocr"),
])
def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert name in str(err.value)


def test_api_key_required_without_any_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY_REQUIRED", "true")
    with pytest.raises(SettingsError, match="API_KEY"):
        load_settings()


def test_serve_with_a_bad_port_exits_non_zero_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "abc")
    result = CliRunner().invoke(cli_app, ["serve"])
    assert result.exit_code != 0
    assert "API_PORT" in result.output and "abc" in result.output


def test_serve_with_a_missing_model_exits_non_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "nope"))
    result = CliRunner().invoke(cli_app, ["serve"])
    assert result.exit_code != 0
    assert "MODEL_PATH" in result.output


# -- keys and cache keys --------------------------------------------------------------------------


def test_key_store_401_403_and_file_rotation(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# rotated by the secret store\nfile-key-1\n\n")
    store = KeyStore(Settings(api_key_required=True, api_key="env-key", api_keys_file=keys_file))
    assert store.check(None) == (401, store.check(None)[1])  # type: ignore[index]
    assert store.check("wrong")[0] == 403  # type: ignore[index]
    assert store.check("env-key") is None and store.check("file-key-1") is None
    keys_file.write_text("file-key-2\n")
    store._checked_at -= 5  # skip the 1 s re-check interval
    assert store.check("file-key-2") is None
    assert store.check("file-key-1")[0] == 403  # type: ignore[index]
    assert KeyStore(Settings()).check(None) is None  # keys not required


def test_cache_key_covers_bytes_options_and_model() -> None:
    base = cache_key("ab" * 32, {"ocr": "auto", "dpi": 150}, "m:1")
    assert base == cache_key("ab" * 32, {"dpi": 150, "ocr": "auto"}, "m:1")  # order-free
    assert base != cache_key("cd" * 32, {"ocr": "auto", "dpi": 150}, "m:1")
    assert base != cache_key("ab" * 32, {"ocr": "none", "dpi": 150}, "m:1")
    assert base != cache_key("ab" * 32, {"ocr": "auto", "dpi": 150}, "m:2")


def test_memory_cache_is_a_bounded_lru() -> None:
    async def run() -> None:
        cache = MemoryCache(2)
        await cache.set("a", b"1")
        await cache.set("b", b"2")
        assert await cache.get("a") == b"1"  # a is now the most recent
        await cache.set("c", b"3")
        assert await cache.get("b") is None and await cache.get("a") == b"1" and len(cache) == 2

    asyncio.run(run())


# -- micro-batching with a stand-in model ---------------------------------------------------------


class _Doc:
    pages: list[Any] = []

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _FakeLoader:
    """Loads instantly; the model call takes ``model_s`` and records its batch sizes."""

    def __init__(self, model_s: float = 0.05, load_s: float = 0.0) -> None:
        self.model_s = model_s
        self.load_s = load_s
        self.batches: list[int] = []
        self.docs: list[_Doc] = []
        self.lock = threading.Lock()

    def load(self, data: bytes, filename: str, options: ExtractOptions) -> tuple[_Doc, float]:
        time.sleep(self.load_s)
        if data == b"corrupt":
            raise CorruptFileError(filename)
        doc = _Doc(filename)
        with self.lock:
            self.docs.append(doc)
        return doc, 1.0

    def extract_loaded(self, docs: list[_Doc], options: ExtractOptions, load_ms: list[float]) -> list[ExtractionResult]:
        self.batches.append(len(docs))
        time.sleep(self.model_s)
        if any(d.name == "poison" for d in docs):
            raise RuntimeError("model failure on one document")
        return [ExtractionResult(document=DocumentInfo(filename=d.name, sha256="0", pages=1, source="pdf-text"),
                                 model=ModelInfo(name="fake", version="0")) for d in docs]


def _batcher(loader: _FakeLoader, **kw: Any) -> MicroBatcher:
    opts = {"max_batch": 8, "max_wait_s": 0.02, "queue_size": 16, "load_workers": 2, "timeout_s": 60.0, **kw}
    return MicroBatcher(loader, ServiceMetrics(), **opts)  # type: ignore[arg-type]


def test_concurrent_documents_share_model_calls() -> None:
    loader = _FakeLoader()

    async def run() -> list[Any]:
        b = _batcher(loader)
        b.start()
        try:
            async with b.admit(10):
                return await asyncio.gather(*(b.process(b"x", f"d{i}", ExtractOptions()) for i in range(10)),
                                            return_exceptions=True)
        finally:
            await b.stop()

    outs = asyncio.run(run())
    assert [o.result.document.filename for o in outs] == [f"d{i}" for i in range(10)]
    assert sum(loader.batches) == 10 and max(loader.batches) > 1 and len(loader.batches) < 10
    assert all(d.closed for d in loader.docs)


def test_one_failing_document_does_not_fail_its_batch() -> None:
    loader = _FakeLoader(model_s=0.01)

    async def run() -> list[Any]:
        b = _batcher(loader)
        b.start()
        try:
            names = ["a", "poison", "b"]
            coros = [b.process(b"x", n, ExtractOptions()) for n in names]
            coros.append(b.process(b"corrupt", "c", ExtractOptions()))
            return await asyncio.gather(*coros, return_exceptions=True)
        finally:
            await b.stop()

    a, poison, b_, corrupt = asyncio.run(run())
    assert a.result.document.filename == "a" and b_.result.document.filename == "b"
    assert isinstance(poison, RuntimeError)
    assert isinstance(corrupt, CorruptFileError)


def test_timeout_and_full_queue() -> None:
    loader = _FakeLoader(model_s=0.5)

    async def run() -> None:
        b = _batcher(loader, timeout_s=0.1, queue_size=2)
        b.start()
        try:
            with pytest.raises(InferenceTimeout, match="INFERENCE_TIMEOUT"):
                await b.process(b"x", "slow", ExtractOptions())
            async with b.admit(2):
                with pytest.raises(Overloaded) as err:
                    async with b.admit(1):
                        pass
                assert err.value.retry_after >= 1
            assert b.in_flight == 0
        finally:
            await b.stop()

    asyncio.run(run())


class _PairLoader(_FakeLoader):
    """A model call returns only once another one runs at the same time (or after 5 s)."""

    def __init__(self) -> None:
        super().__init__(model_s=0.0)
        self.barrier = threading.Barrier(2, timeout=5)
        self.met = 0

    def extract_loaded(self, docs: list[_Doc], options: ExtractOptions, load_ms: list[float]) -> list[ExtractionResult]:
        try:
            self.barrier.wait()
            with self.lock:
                self.met += 1
        except threading.BrokenBarrierError:
            pass
        return super().extract_loaded(docs, options, load_ms)


@pytest.mark.parametrize("workers", [1, 2])
def test_model_workers_run_batches_at_once(workers: int) -> None:
    loader = _PairLoader()

    async def run() -> list[Any]:
        b = _batcher(loader, max_batch=1, model_workers=workers)
        b.start()
        try:
            return await asyncio.gather(*(b.process(b"x", f"d{i}", ExtractOptions()) for i in range(2)))
        finally:
            await b.stop()

    if workers == 1:  # one worker: the second call never overlaps the first (the barrier times out)
        loader.barrier = threading.Barrier(2, timeout=0.3)
    outs = asyncio.run(run())
    assert [o.result.document.filename for o in outs] == ["d0", "d1"]
    assert loader.batches == [1, 1]
    assert loader.met == (2 if workers == 2 else 0)
    assert all(d.closed for d in loader.docs)


def test_model_workers_and_threads_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    s = load_settings()
    assert (s.planned_model_workers, s.onnx_threads) == (2, 2)
    s = load_settings(model_workers=1)
    assert (s.planned_model_workers, s.onnx_threads) == (1, 4)
    s = load_settings(model_workers=3, model_threads=1)
    assert (s.planned_model_workers, s.onnx_threads) == (3, 1)


# -- the model loader -------------------------------------------------------------------------------


def test_cuda_is_only_used_when_allowed_and_present() -> None:
    assert resolve_device("cuda", use_gpu=False) == "cpu"
    assert resolve_device(None, use_gpu=False) == "cpu"
    assert resolve_device("cpu", use_gpu=True) == "cpu"
    import torch

    assert resolve_device("cuda", use_gpu=True) == ("cuda" if torch.cuda.is_available() else "cpu")


def test_model_loader_predict_and_batch(tiny_model_dir: Path) -> None:
    loader = ModelLoader(model_path=tiny_model_dir, device="cuda", fp16=True)  # no GPU here: falls back
    loader.load_model()
    assert loader.info["device"] in ("cpu", "cuda") and loader.model is loader.model
    if loader.info["device"] == "cpu":
        assert loader.info["fp16"] is False
    result = loader.predict(invoice_pdf(), filename="a.pdf", ocr="none")
    assert result.document.filename == "a.pdf" and result.model.backend == "torch"
    out = loader.predict_batch([("a.pdf", invoice_pdf("1")), ("b.txt", b"just text"), ("c.pdf", invoice_pdf("2"))])
    assert isinstance(out[0], ExtractionResult) and isinstance(out[2], ExtractionResult)
    assert isinstance(out[1], UnsupportedFileType) and out[1].http_status == 415
    with pytest.raises(TypeError, match="bogus"):
        loader.predict(invoice_pdf(), bogus=1)


# -- the app in-process, before its model is loaded (no lifespan) -----------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """create_app configures logging for a service; give pytest its handlers back afterwards."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level


def test_wildcard_cors_never_allows_credentials(tmp_path: Path, restore_logging: None) -> None:
    from fastapi.testclient import TestClient

    from invoicegen.deployment.api import create_app

    app = create_app(Settings(model_path=tmp_path, cors_origins="*", rate_limit="off"))
    client = TestClient(app)  # not entered: no lifespan, so no model
    r = client.options("/predict", headers={"Origin": "https://any.example", "Access-Control-Request-Method": "POST"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers


def test_not_ready_before_the_model_is_loaded(tmp_path: Path, restore_logging: None) -> None:
    from fastapi.testclient import TestClient

    from invoicegen.deployment.api import create_app

    client = TestClient(create_app(Settings(model_path=tmp_path, rate_limit="off")))
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.headers["retry-after"] and ready.json()["status"] == "loading"
    r = client.post("/predict", files={"file": ("a.pdf", invoice_pdf())})
    assert r.status_code == 503 and r.json()["error"] == "model_loading"
