"""The production API: ``invoicegen.deployment.api:app`` (start it with ``invoicegen serve``).

Request path of ``POST /predict``: request id -> rate limit (before the body is read) -> body
limit -> API key -> type sniffing -> cache -> admission (bounded queue, else 503) -> file read/OCR
in a thread pool -> micro-batch (one ``extract_many`` for concurrent requests) -> cache store.
Every input error is a typed ``InvoiceGenError`` whose ``http_status`` is the answer, with a JSON
body ``{"detail", "error", "request_id"}``; logs never contain document text.

(No ``from __future__ import annotations`` here: FastAPI resolves the endpoint annotations, and the
endpoints are defined inside ``create_app`` so that each app has its own settings and state.)
"""

import asyncio
import contextlib
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import structlog
from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from invoicegen import __version__
from invoicegen.deployment.batching import InferenceTimeout, MicroBatcher, Overloaded
from invoicegen.deployment.cache import ResultCache, cache_key, make_cache
from invoicegen.deployment.logconfig import configure_logging
from invoicegen.deployment.metrics import ServiceMetrics
from invoicegen.deployment.middleware import BodyLimitMiddleware, RequestIdMiddleware
from invoicegen.deployment.model_loader import ModelLoader
from invoicegen.deployment.security import API_KEY_HEADER, KeyStore, RateLimitMiddleware, make_limiter
from invoicegen.deployment.settings import Settings, load_settings
from invoicegen.document import sniff_type
from invoicegen.errors import (
    EmptyFileError,
    FileTooLargeError,
    InvoiceGenError,
    PageTimeoutError,
    UnsupportedFileType,
)
from invoicegen.extract.pipeline import ExtractOptions
from invoicegen.schema import ExtractionResult, Page

log = structlog.get_logger("invoicegen.api")

API_VERSION = "1"
OcrMode = Literal["auto", "none", "rapidocr", "tesseract", "paddleocr"]


# ------------------------------------------------------------------------------------------------
# Response models (for the OpenAPI schema; bodies are written as JSON bytes, which the cache stores)
# ------------------------------------------------------------------------------------------------


class PredictResult(ExtractionResult):
    """An ExtractionResult; ``pages`` (words with boxes) only when ``return_words=true``."""

    pages: list[Page] | None = None


class ErrorBody(BaseModel):
    detail: str = Field(description="What is wrong, for a person.")
    error: str = Field(description="Stable machine-readable code, e.g. unsupported_file_type.")
    request_id: str | None = None


class BatchItem(BaseModel):
    filename: str
    status: int = Field(description="HTTP status this file would have had on its own.")
    result: PredictResult | None = None
    error: str | None = None
    detail: str | None = None


class BatchResponse(BaseModel):
    items: list[BatchItem]
    succeeded: int
    failed: int


class Health(BaseModel):
    status: str
    detail: str | None = None


class Readiness(BaseModel):
    status: str
    model: dict[str, Any] | None = None
    detail: str | None = None


class VersionInfo(BaseModel):
    service: str = "invoicegen"
    version: str
    api_version: str
    python: str
    model: dict[str, Any] | None = None


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer that is not an InvoiceGenError (too many files, model not ready, ...)."""

    def __init__(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers or {}


def _code(exc: BaseException) -> str:
    """``UnsupportedFileType`` -> ``unsupported_file_type``, ``EncryptedPDFError`` -> ``encrypted_pdf``."""
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _error_response(request: Request, status: int, error: str, detail: str,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(detail=detail, error=error, request_id=getattr(request.state, "request_id", None))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _error_of(exc: BaseException) -> tuple[int, str, str, dict[str, str]]:
    """(status, code, message, headers) for an exception raised while predicting one document."""
    if isinstance(exc, InvoiceGenError):
        return exc.http_status, _code(exc), exc.message, {}
    if isinstance(exc, Overloaded):
        return 503, "overloaded", str(exc), {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, InferenceTimeout):
        return 504, "inference_timeout", str(exc), {}
    if isinstance(exc, ApiError):
        return exc.status, exc.error, exc.detail, exc.headers
    return 500, "internal_error", "internal error (logged with this request id)", {}


# ------------------------------------------------------------------------------------------------
# State
# ------------------------------------------------------------------------------------------------


@dataclass
class ServiceState:
    settings: Settings
    loader: ModelLoader
    metrics: ServiceMetrics
    keys: KeyStore
    cache: ResultCache
    batcher: MicroBatcher | None = None
    load_error: str | None = None
    loading: asyncio.Task[None] | None = None
    metrics_server: Any = None
    started_at: float = field(default_factory=time.time)

    @property
    def ready(self) -> bool:
        return self.loader.loaded and self.batcher is not None


@dataclass(frozen=True)
class Params:
    """Per-request options; all of them enter the cache key."""

    ocr: str
    dpi: int
    return_words: bool
    return_tables: bool
    password: str | None

    def cache_options(self) -> dict[str, Any]:
        pw = hashlib.sha256(self.password.encode()).hexdigest() if self.password else None
        return {"ocr": self.ocr, "dpi": self.dpi, "words": self.return_words, "tables": self.return_tables,
                "password": pw}


# ------------------------------------------------------------------------------------------------
# The app
# ------------------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app from ``settings`` (default: environment / .env)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    settings.export_ocr_env()
    metrics = ServiceMetrics()
    keys = KeyStore(settings)
    limiter = make_limiter(settings, keys)
    loader = ModelLoader(settings.resolved_model_path, device="cuda" if settings.use_gpu else "cpu",
                         backend=settings.model_backend, use_gpu=settings.use_gpu, fp16=settings.fp16_inference,
                         batch_size=settings.max_batch_size, threads=settings.onnx_threads)
    state = ServiceState(settings=settings, loader=loader, metrics=metrics, keys=keys,
                         cache=make_cache(settings.cache_size, settings.redis_url, settings.cache_ttl))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not loader.model_path.is_dir():
            # fail the start (uvicorn exits non-zero) instead of a pod that is never ready
            raise RuntimeError(f"MODEL_PATH: model directory {loader.model_path} does not exist")
        state.loading = asyncio.create_task(_load(state), name="model-load")
        _start_metrics_server(state)
        log.info("service_starting", version=__version__, model_path=str(loader.model_path),
                 cache=state.cache.name, rate_limit=settings.rate_limit or "off",
                 api_key_required=settings.api_key_required)
        try:
            yield
        finally:
            if state.loading is not None and not state.loading.done():
                with contextlib.suppress(BaseException):
                    await state.loading
            if state.batcher is not None:
                await state.batcher.stop()
            await state.cache.close()
            if state.metrics_server is not None:
                state.metrics_server.shutdown()
            log.info("service_stopped")

    app = FastAPI(
        title="InvoiceGen API",
        version=__version__,
        description="Invoice extraction: fields, line items and tables from PDFs and images.",
        lifespan=lifespan,
        responses=_errors(429, 500),
    )
    app.state.service = state
    app.state.limiter = limiter

    # -- middleware (the last added runs first) ---------------------------------------------------
    predict_limit = settings.max_upload_bytes + 64 * 1024
    batch_limit = settings.max_upload_bytes * settings.max_batch_size + 64 * 1024 * settings.max_batch_size

    def body_limit(path: str) -> int | None:
        if path == "/predict":
            return predict_limit
        if path == "/predict/batch":
            return batch_limit
        return 1024 * 1024

    # request order: request id -> CORS (so 413/429 answers carry CORS headers too) -> HTTP metrics
    # (rejections counted) -> rate limit (before the body is read) -> gzip -> body limit -> app
    app.add_middleware(BodyLimitMiddleware, limit_for=body_limit)
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    if settings.prometheus_enabled:
        from prometheus_fastapi_instrumentator import Instrumentator

        instrumentator = Instrumentator(registry=metrics.registry, excluded_handlers=["/metrics"])
        instrumentator.instrument(app)
        if not settings.metrics_port:
            instrumentator.expose(app, endpoint="/metrics", include_in_schema=False)
    if settings.cors_origins:
        wildcard = "*" in settings.cors_origins
        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"] if wildcard else settings.cors_origins,
            allow_credentials=not wildcard,  # browsers reject credentials with "*"; so do we
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=[API_KEY_HEADER, "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "X-Cache"],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware, quiet_paths=frozenset({"/health", "/ready", "/metrics"}))

    # -- errors -----------------------------------------------------------------------------------

    @app.exception_handler(InvoiceGenError)
    async def _invoicegen_error(request: Request, exc: InvoiceGenError) -> JSONResponse:
        return _error_response(request, exc.http_status, _code(exc), exc.message)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(request, exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return _error_response(request, 503, "overloaded", str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(InferenceTimeout)
    async def _timeout(request: Request, exc: InferenceTimeout) -> JSONResponse:
        return _error_response(request, 504, "inference_timeout", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "header"))
            parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
        return _error_response(request, 422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "payload_too_large"}
        return _error_response(request, exc.status_code, codes.get(exc.status_code, f"http_{exc.status_code}"),
                               str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled_error", error=type(exc).__name__, exc_info=exc)
        return _error_response(request, 500, "internal_error", "internal error (logged with this request id)")

    # -- dependencies ---------------------------------------------------------------------------

    api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                                  description="Needed when API_KEY_REQUIRED is true.")

    async def require_key(key: Annotated[str | None, Depends(api_key_header)]) -> None:
        problem = keys.check(key)
        if problem is not None:
            status, message = problem
            raise ApiError(status, "unauthorized" if status == 401 else "forbidden", message,
                           {"WWW-Authenticate": "ApiKey"} if status == 401 else None)

    def rate_limited(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        return limiter.limit(settings.rate_limit)(func) if settings.rate_limit else func

    # -- endpoints --------------------------------------------------------------------------------

    ocr_q = Query("auto", description="auto: text layer, OCR for scans; none; or force an engine.")
    dpi_q = Query(150, ge=72, le=400, description="Rendering resolution for OCR.")
    words_q = Query(False, description="Also return the pages with their words and boxes.")
    tables_q = Query(True, description="Return the detected tables.")
    password_f = Form(None, description="Password of an encrypted PDF (form field, never in the URL).",
                      max_length=256)

    @app.post("/predict", response_model=PredictResult, tags=["extraction"],
              dependencies=[Depends(require_key)],
              responses=_errors(400, 401, 403, 413, 415, 422, 503, 504),
              summary="Extract one invoice (PDF, PNG, JPEG, TIFF, WebP, BMP)")
    @rate_limited
    async def predict(request: Request, file: Annotated[UploadFile, File(description="The invoice file.")],
                      ocr: OcrMode = ocr_q, dpi: int = dpi_q, return_words: bool = words_q,
                      return_tables: bool = tables_q, password: str | None = password_f) -> Response:
        _require_ready(state)
        params = Params(ocr, dpi, return_words, return_tables, password or None)
        name = _filename(file)
        data = await _read_upload(file, name, settings.max_upload_bytes)
        _check_bytes(data, name)
        assert state.batcher is not None
        async with state.batcher.admit(1):
            body, hit = await _run_one(state, data, name, params)
        return Response(body, media_type="application/json", headers={"X-Cache": "hit" if hit else "miss"})

    @app.post("/predict/batch", response_model=BatchResponse, tags=["extraction"],
              dependencies=[Depends(require_key)],
              responses=_errors(400, 401, 403, 413, 422, 503),
              summary="Extract several invoices; each file gets its own result or error")
    @rate_limited
    async def predict_batch(request: Request,
                            files: Annotated[list[UploadFile], File(description="Up to MAX_BATCH_SIZE files.")],
                            ocr: OcrMode = ocr_q, dpi: int = dpi_q, return_words: bool = words_q,
                            return_tables: bool = tables_q, password: str | None = password_f) -> Response:
        _require_ready(state)
        if len(files) > settings.max_batch_size:
            raise ApiError(413, "too_many_files",
                           f"{len(files)} files, more than MAX_BATCH_SIZE={settings.max_batch_size}; "
                           "split the batch")
        params = Params(ocr, dpi, return_words, return_tables, password or None)
        items: list[dict[str, Any] | None] = [None] * len(files)
        todo: list[tuple[int, str, bytes]] = []
        for i, upload in enumerate(files):
            name = _filename(upload)
            try:
                data = await _read_upload(upload, name, settings.max_upload_bytes)
                _check_bytes(data, name)
            except InvoiceGenError as exc:
                state.metrics.predictions.labels(status="client_error").inc()
                items[i] = _item_error(name, exc)
                continue
            todo.append((i, name, data))
        if todo:
            assert state.batcher is not None
            async with state.batcher.admit(len(todo)):
                outs = await asyncio.gather(*(_run_one(state, d, n, params) for _, n, d in todo),
                                            return_exceptions=True)
            for (i, name, _), out in zip(todo, outs, strict=True):
                if isinstance(out, BaseException):
                    if not isinstance(out, Exception):
                        raise out
                    items[i] = _item_error(name, out)
                else:
                    items[i] = {"filename": name, "status": 200, "result": json.loads(out[0])}
        done = [it for it in items if it is not None]
        ok = sum(1 for it in done if it["status"] == 200)
        payload = {"items": done, "succeeded": ok, "failed": len(done) - ok}
        return Response(json.dumps(payload, separators=(",", ":")).encode(), media_type="application/json")

    @app.get("/health", response_model=Health, tags=["operations"], responses={503: {"model": Health}})
    async def health() -> JSONResponse:
        """Liveness: the process serves requests (503 only when the model failed to load)."""
        if state.load_error:
            return JSONResponse({"status": "failed", "detail": state.load_error}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/ready", response_model=Readiness, tags=["operations"], responses={503: {"model": Readiness}})
    async def ready() -> JSONResponse:
        """Readiness: 200 once the model is loaded; 503 (Retry-After) while loading or failed."""
        if state.ready:
            return JSONResponse({"status": "ready", "model": _public_info(loader)})
        if state.load_error:
            return JSONResponse({"status": "failed", "detail": state.load_error}, status_code=503)
        return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "2"})

    @app.get("/version", response_model=VersionInfo, tags=["operations"])
    async def version() -> VersionInfo:
        return VersionInfo(version=__version__, api_version=API_VERSION, python=sys.version.split()[0],
                           model=_public_info(loader) or None)

    return app


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


async def _load(state: ServiceState) -> None:
    """Load the model in a thread (the event loop keeps answering /health), then start batching."""
    s = state.settings
    try:
        await asyncio.to_thread(state.loader.load_model)
    except Exception as exc:
        state.load_error = f"model failed to load: {type(exc).__name__}: {exc}"
        log.error("model_load_failed", error=type(exc).__name__, detail=str(exc))
        return
    info = state.loader.info
    # torch's threads are process-wide and a GPU runs one call at a time: several model workers
    # pay off for onnxruntime on CPU, whose session was built with cores / workers threads each
    auto_workers = s.planned_model_workers if info["backend"] == "onnx" and info["device"] == "cpu" else 1
    state.batcher = MicroBatcher(state.loader, state.metrics, max_batch=s.max_batch_size,
                                 max_wait_s=s.batch_wait_ms / 1000, queue_size=s.queue_size,
                                 load_workers=s.load_workers, timeout_s=s.inference_timeout,
                                 model_workers=s.model_workers or auto_workers)
    state.batcher.start()
    state.metrics.set_model(state.loader.info)
    log.info("batching_started", model_workers=state.batcher.model_workers,
             onnx_threads=s.onnx_threads if info["backend"] == "onnx" else None,
             load_workers=s.load_workers, max_batch=s.max_batch_size)


def _start_metrics_server(state: ServiceState) -> None:
    port = state.settings.metrics_port
    if not port or not state.settings.prometheus_enabled:
        return
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=state.settings.api_host, registry=state.metrics.registry)
    except OSError as exc:  # another worker of this pod already serves it
        log.warning("metrics_port_unavailable", port=port, error=str(exc))
        return
    state.metrics_server = server
    log.info("metrics_server_started", port=port)


def _public_info(loader: ModelLoader) -> dict[str, Any]:
    """Model info without the server's filesystem path."""
    return {k: v for k, v in loader.info.items() if k != "path"}


def _require_ready(state: ServiceState) -> None:
    if state.load_error:
        raise ApiError(503, "model_unavailable", state.load_error)
    if not state.ready:
        raise ApiError(503, "model_loading", "the model is still loading; retry shortly", {"Retry-After": "2"})


def _filename(upload: UploadFile) -> str:
    """A display name: the upload's base name, without control characters, at most 200 chars."""
    raw = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch for ch in raw if ch.isprintable()).strip()
    return clean[:200] or "document"


async def _read_upload(upload: UploadFile, name: str, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise FileTooLargeError(name, upload.size, limit)
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise FileTooLargeError(name, len(data), limit)
    return data


def _check_bytes(data: bytes, name: str) -> None:
    """Cheap checks before taking a queue place: emptiness and type (from the bytes, not the name)."""
    if not data:
        raise EmptyFileError(name)
    if sniff_type(data) is None:
        from invoicegen.document import _describe_unknown

        raise UnsupportedFileType(name, _describe_unknown(data))


def _item_error(name: str, exc: Exception) -> dict[str, Any]:
    status, code, message, _ = _error_of(exc)
    if status >= 500 and not isinstance(exc, (InferenceTimeout, Overloaded, InvoiceGenError)):
        log.error("batch_item_failed", error=type(exc).__name__, exc_info=exc)
    return {"filename": name, "status": status, "error": code, "detail": message}


def _options(state: ServiceState, params: Params) -> ExtractOptions:
    s = state.settings
    return state.loader.options(ocr=params.ocr, dpi=params.dpi, password=params.password,
                                max_pages=s.max_pages, max_bytes=s.max_upload_bytes)


async def _run_one(state: ServiceState, data: bytes, name: str, params: Params) -> tuple[bytes, bool]:
    """One document: cache lookup, else load + micro-batched model call; returns (JSON body, hit)."""
    metrics = state.metrics
    sha = hashlib.sha256(data).hexdigest()
    key = cache_key(sha, params.cache_options(), state.loader.version_key)
    cached = await state.cache.get(key)
    if cached is not None:
        metrics.cache_hits.inc()
        metrics.predictions.labels(status="ok").inc()
        log.info("prediction", sha256=sha[:16], cache="hit")
        return _renamed(cached, name), True
    metrics.cache_misses.inc()
    assert state.batcher is not None
    t0 = time.perf_counter()
    try:
        outcome = await state.batcher.process(data, name, _options(state, params), params.return_words)
    except BaseException as exc:
        status = ("timeout" if isinstance(exc, (InferenceTimeout, PageTimeoutError))
                  else "client_error" if isinstance(exc, InvoiceGenError)
                  else "overloaded" if isinstance(exc, Overloaded) else "server_error")
        metrics.predictions.labels(status=status).inc()
        log.info("prediction_failed", sha256=sha[:16], error=type(exc).__name__)
        raise
    seconds = time.perf_counter() - t0
    result = outcome.result
    metrics.observe_result(seconds, result.timings_ms)
    body = result.model_dump(mode="json")
    if not params.return_tables:
        body["tables"] = []
    if params.return_words and outcome.pages is not None:
        body["pages"] = [p.model_dump(mode="json") for p in outcome.pages]
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    await state.cache.set(key, raw)
    log.info("prediction", sha256=sha[:16], cache="miss", pages=result.document.pages,
             fields=len(result.fields), ms=round(seconds * 1000, 1))
    return raw, False


def _renamed(raw: bytes, name: str) -> bytes:
    """A cached body with this upload's filename (the bytes are the same, the name may not be)."""
    body = json.loads(raw)
    if body.get("document", {}).get("filename") == name:
        return raw
    body["document"]["filename"] = name
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# ------------------------------------------------------------------------------------------------
# Module-level app and the server entry point
# ------------------------------------------------------------------------------------------------

_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``app`` is built on first access (``uvicorn invoicegen.deployment.api:app``), not at import,
    so importing this module for its helpers does not read settings or configure logging."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _server_impls() -> tuple[str, str]:
    """uvloop and httptools (uvicorn[standard]: less CPU per request than asyncio and h11) when
    installed, else the pure-Python ones; named explicitly so the start-up log says which run."""
    from importlib.util import find_spec

    return ("uvloop" if find_spec("uvloop") else "asyncio"), ("httptools" if find_spec("httptools") else "h11")


def run_server(settings: Settings) -> None:
    """Run uvicorn with the settings (graceful shutdown: in-flight requests get INFERENCE_TIMEOUT)."""
    import uvicorn

    configure_logging(settings.log_level)
    loop, http = _server_impls()
    log.info("server_starting", host=settings.api_host, port=settings.api_port, workers=settings.api_workers,
             loop=loop, http=http)
    uvicorn.run(
        "invoicegen.deployment.api:app",
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        loop=loop,
        http=http,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        server_header=False,
        timeout_graceful_shutdown=int(settings.inference_timeout) + 5,
        timeout_keep_alive=5,
    )


__all__ = ["create_app", "run_server"]
