"""Prometheus metrics of the service (beside the HTTP metrics of prometheus-fastapi-instrumentator).

Why a class with its own registry: each app instance (tests build several in one process) gets its
own metrics without "duplicated timeseries" errors, and /metrics exposes exactly that registry.
With several uvicorn workers set PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # the *_created series double the exposition and no dashboard uses them

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256)
STAGES = ("load", "ocr", "model", "postprocess")

PREDICTION_STATUSES = ("ok", "client_error", "timeout", "overloaded", "server_error")
"""Values of the ``status`` label of ``invoicegen_predictions_total``."""


class ServiceMetrics:
    """The service's own metrics, all prefixed ``invoicegen_``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.predictions = Counter("invoicegen_predictions", "Documents predicted, by outcome.",
                                   ["status"], registry=r)
        self.duration = Histogram("invoicegen_prediction_duration_seconds",
                                  "Wall time of one document from admission to result (cache misses).",
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.stage = Histogram("invoicegen_stage_duration_seconds",
                               "Per-stage time of one document (from result.timings_ms).", ["stage"],
                               buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("invoicegen_batch_size", "Documents per model call (micro-batching).",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.cache_hits = Counter("invoicegen_cache_hits", "Result cache hits.", registry=r)
        self.cache_misses = Counter("invoicegen_cache_misses", "Result cache misses.", registry=r)
        self.in_flight = Gauge("invoicegen_requests_in_flight", "Documents admitted and not finished.",
                               registry=r, multiprocess_mode="livesum")
        self.model_loaded = Gauge("invoicegen_model_loaded", "1 once the model is loaded.", registry=r,
                                  multiprocess_mode="liveall")
        self.model_info = Gauge("invoicegen_model_info", "The loaded model (value is always 1).",
                                ["name", "version", "backend", "quantized", "device"], registry=r,
                                multiprocess_mode="liveall")
        for status in PREDICTION_STATUSES:  # export zeros so rate() works from the first scrape
            self.predictions.labels(status=status)
        for stage in STAGES:
            self.stage.labels(stage=stage)

    def observe_result(self, seconds: float, timings_ms: Mapping[str, float]) -> None:
        """A fresh (not cached) prediction: its wall time and its per-stage timings."""
        self.predictions.labels(status="ok").inc()
        self.duration.observe(seconds)
        for stage in STAGES:
            if stage in timings_ms:
                self.stage.labels(stage=stage).observe(max(0.0, float(timings_ms[stage])) / 1000)

    def set_model(self, info: Mapping[str, Any]) -> None:
        self.model_loaded.set(1)
        self.model_info.labels(name=str(info.get("name", "")), version=str(info.get("version", "")),
                               backend=str(info.get("backend", "")),
                               quantized=str(bool(info.get("quantized"))).lower(),
                               device=str(info.get("device", ""))).set(1)


__all__ = ["ServiceMetrics", "STAGES", "PREDICTION_STATUSES"]
