"""structlog JSON logging for the service (uvicorn's and libraries' logs included).

Why JSON on stdout: the container runtime collects stdout; one object per line is what Loki,
Elasticsearch and CloudWatch parse without a custom grok pattern. Tracebacks are rendered as plain
text (``format_exc_info``), never with local variables, so document text cannot leak into logs.
"""

from __future__ import annotations

import logging
import sys

import structlog

_configured: str | None = None


def configure_logging(level: str = "info") -> None:
    """Idempotent per level: route structlog and stdlib logging to one JSON stream on stdout."""
    global _configured
    if _configured == level:
        return
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer()],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "slowapi"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log carries the request id
    _configured = level


__all__ = ["configure_logging"]
