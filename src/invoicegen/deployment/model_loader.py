"""``ModelLoader``: the deployment guide's entry point to the model.

Why a class next to ``Extractor``: a service needs more than extraction. It must pick the device
(CUDA only when allowed *and* present), know what it loaded (for /version, metrics and cache keys),
and split extraction into the two halves the API schedules differently: reading a file (CPU, OCR,
in a thread pool, one file at a time) and running the model (one call for many loaded documents).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from invoicegen.document import Limits, LoadedDocument, load_document
from invoicegen.errors import InvoiceGenError
from invoicegen.extract.pipeline import ExtractOptions, Extractor, default_model_path
from invoicegen.model.encode import Window, collate
from invoicegen.model.runtime import Runtime, load_runtime
from invoicegen.schema import ExtractionResult

log = structlog.get_logger("invoicegen.model_loader")

Source = bytes | str | Path
"""A file's bytes or a path to it."""

_OPTION_NAMES = frozenset({"ocr", "dpi", "password", "constrained", "embedded", "max_pages", "max_bytes",
                           "page_timeout_s"})


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install must not stop a CPU service
        return False


def resolve_device(device: str | None, use_gpu: bool) -> str:
    """``cuda`` only when asked for (device or USE_GPU) *and* allowed and present; else ``cpu``."""
    wanted = (device or ("cuda" if use_gpu else "cpu")).lower()
    if not wanted.startswith("cuda"):
        return "cpu"
    if not use_gpu:
        log.warning("device_downgraded", requested=wanted, reason="USE_GPU is off")
        return "cpu"
    if not cuda_available():
        log.warning("device_downgraded", requested=wanted, reason="CUDA is not available")
        return "cpu"
    return wanted


class _DeviceRuntime:
    """A torch runtime on CUDA: inputs are moved to the device, FP16 through autocast (keeps the
    layer norms in fp32, which a plain ``.half()`` would not)."""

    def __init__(self, inner: Runtime, device: str, fp16: bool) -> None:
        self.inner = inner
        self.name, self.version = inner.name, inner.version
        self.backend, self.quantized = inner.backend, inner.quantized
        self.tokenizer, self.recipe = inner.tokenizer, inner.recipe
        self.temperature = inner.temperature
        self.device, self.fp16 = device, fp16
        self.model = getattr(inner, "model", None)

    def run(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        import torch

        from invoicegen.model.predict import HEAD_NAMES

        assert self.model is not None
        batch = {k: v.to(self.device) for k, v in collate(windows, self.tokenizer.pad_id).items()
                 if not k.endswith("_labels")}
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.fp16):
            out = self.model(**batch)
        return {f"{h}_logits": out[f"{h}_logits"].float().cpu().numpy() for h in HEAD_NAMES}


def _fingerprint(path: Path) -> str:
    """Changes whenever a file of the checkpoint changes (size/mtime): part of the cache key, so a
    retrained model in the same directory never serves stale cached results."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class ModelLoader:
    """Loads the model once and runs predictions with it (thread-safe for prediction)."""

    def __init__(self, model_path: str | Path | None = None, device: str | None = None, *,
                 backend: str | None = None, use_gpu: bool | None = None, fp16: bool = False,
                 batch_size: int = 8, options: ExtractOptions | None = None, threads: int | None = None) -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.requested_device = device
        # device="cuda" is a wish; USE_GPU (argument, else the environment variable) is the permission
        self.use_gpu = _env_flag("USE_GPU") if use_gpu is None else use_gpu
        self.backend = backend
        self.fp16 = fp16
        self.batch_size = batch_size
        self.default_options = options or ExtractOptions()
        self.threads = threads
        """Intra-op threads of an ONNX session (default: every core)."""
        self.device = "cpu"
        self._extractor: Extractor | None = None
        self._info: dict[str, Any] = {}

    # -- loading --------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._extractor is not None

    def load_model(self) -> Extractor:
        """Load the checkpoint (idempotent); raises FileNotFoundError for a missing directory."""
        if self._extractor is not None:
            return self._extractor
        if not self.model_path.is_dir():
            raise FileNotFoundError(f"model directory {self.model_path} does not exist (set MODEL_PATH)")
        t0 = time.perf_counter()
        self.device = resolve_device(self.requested_device, self.use_gpu)
        runtime: Runtime = load_runtime(self.model_path, backend=self.backend, device=self.device,
                                        threads=self.threads)
        fp16 = self.fp16 and self.device.startswith("cuda") and runtime.backend == "torch"
        if self.fp16 and not fp16:
            log.info("fp16_ignored", reason="FP16 needs CUDA and the torch backend", device=self.device,
                     backend=runtime.backend)
        if self.device.startswith("cuda") and runtime.backend == "torch":
            runtime = _DeviceRuntime(runtime, self.device, fp16)
        self._extractor = Extractor(runtime, batch_size=self.batch_size)
        seconds = time.perf_counter() - t0
        self._info = {
            "name": runtime.name,
            "version": runtime.version,
            "backend": runtime.backend,
            "quantized": bool(runtime.quantized),
            "device": self.device,
            "fp16": fp16,
            "path": str(self.model_path),
            "fingerprint": _fingerprint(self.model_path),
            "load_seconds": round(seconds, 3),
        }
        log.info("model_loaded", **{k: v for k, v in self._info.items() if k != "path"})
        return self._extractor

    @property
    def model(self) -> Extractor:
        """The loaded extractor (loads on first use)."""
        return self.load_model()

    @property
    def info(self) -> dict[str, Any]:
        """What was loaded: name, version, backend, quantized, device, fp16, fingerprint (empty before)."""
        return dict(self._info)

    @property
    def version_key(self) -> str:
        """Identifies the model's behaviour for cache keys."""
        i = self._info
        return f"{i.get('name')}:{i.get('version')}:{i.get('backend')}:{i.get('quantized')}:{i.get('fingerprint')}"

    # -- the two halves ---------------------------------------------------------------------------

    def options(self, **options: Any) -> ExtractOptions:
        """ExtractOptions from keyword options (ocr, dpi, password, constrained, embedded, max_pages, max_bytes,
        page_timeout_s) on top of the loader's defaults; TypeError for unknown names."""
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        opts = self.default_options
        limit_keys = {"max_pages", "max_bytes", "page_timeout_s"}
        limits = {k: v for k, v in options.items() if k in limit_keys and v is not None}
        if limits:
            opts = replace(opts, limits=replace(opts.limits, **limits))
        plain = {k: v for k, v in options.items() if k not in limit_keys and v is not None}
        return replace(opts, **plain) if plain else opts

    def load(self, source: Source, filename: str | None, options: ExtractOptions) -> tuple[LoadedDocument, float]:
        """Read one file (text layer or OCR): the part that runs in the worker pool."""
        t0 = time.perf_counter()
        doc = load_document(source, filename=filename, ocr=options.ocr, dpi=options.dpi,
                            password=options.password, limits=options.limits)
        return doc, (time.perf_counter() - t0) * 1000

    def extract_loaded(self, docs: Sequence[LoadedDocument], options: ExtractOptions,
                       load_ms: Sequence[float]) -> list[ExtractionResult]:
        """One model call for several loaded documents (the micro-batch)."""
        return self.model.extract_many(docs, options=options, load_ms=load_ms)

    # -- convenience ------------------------------------------------------------------------------

    def predict(self, source: Source, filename: str | None = None, **options: Any) -> ExtractionResult:
        """Extract one document (bytes or path); raises InvoiceGenError subclasses for bad input."""
        opts = self.options(**options)
        doc, load_ms = self.load(source, filename, opts)
        with doc:
            return self.extract_loaded([doc], opts, [load_ms])[0]

    def predict_batch(self, sources: Sequence[Source | tuple[str, bytes]], **options: Any
                      ) -> list[ExtractionResult | InvoiceGenError]:
        """Extract several documents with one model call; a bad file yields its error in its slot
        instead of failing the others. Items are bytes, paths or ``(filename, bytes)`` pairs."""
        opts = self.options(**options)
        out: list[ExtractionResult | InvoiceGenError | None] = [None] * len(sources)
        docs: list[tuple[int, LoadedDocument, float]] = []
        try:
            for i, item in enumerate(sources):
                name, src = (item[0], item[1]) if isinstance(item, tuple) else (None, item)
                try:
                    doc, ms = self.load(src, name, opts)
                except InvoiceGenError as exc:
                    out[i] = exc
                    continue
                docs.append((i, doc, ms))
            if docs:
                results = self.extract_loaded([d for _, d, _ in docs], opts, [ms for _, _, ms in docs])
                for (i, _, _), result in zip(docs, results, strict=True):
                    out[i] = result
        finally:
            for _, doc, _ in docs:
                doc.close()
        return [r for r in out if r is not None]


__all__ = ["Limits", "ModelLoader", "resolve_device"]
