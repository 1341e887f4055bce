"""Pure ASGI middlewares: request ids with an access log, and a bound on request bodies.

Pure ASGI (not BaseHTTPMiddleware) because uploads stream through: nothing is buffered here, and the
body limit can stop a huge upload while it is still arriving.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("invoicegen.access")

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes X-Request-ID from the client (if sane) or makes one, binds it to every log line of the
    request, returns it in the response, and writes one access-log line (no bodies, no query)."""

    def __init__(self, app: ASGIApp, quiet_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.quiet_paths = quiet_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _VALID_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        t0 = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if path not in self.quiet_paths or status >= 400:
                client = scope.get("client")
                log.info("request", method=scope.get("method"), path=path, status=status,
                         duration_ms=round((time.perf_counter() - t0) * 1000, 2),
                         client=client[0] if client else None)
            structlog.contextvars.clear_contextvars()


class BodyLimitMiddleware:
    """413 for a request body over ``limit_for(path)`` bytes: checked on Content-Length first, then
    counted while the body streams in (chunked uploads have no length)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int | None]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length and length.isdigit() and int(length) > limit:
            await _too_large(scope, send, int(length), limit)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    # end the body here; the app fails to parse it and its answer is replaced below
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _too_large(scope, send, received, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _too_large(scope: Scope, send: Send, size: int, limit: int) -> None:
    body = json.dumps({
        "detail": f"request body of {size / 1e6:.1f} MB or more exceeds the limit of {limit / 1e6:.1f} MB "
                  "(MAX_UPLOAD_MB per file)",
        "error": "payload_too_large",
        "request_id": scope.get("state", {}).get("request_id"),
    }).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            try:
                return bytes(value).decode("latin-1")
            except Exception:
                return None
    return None


__all__ = ["BodyLimitMiddleware", "REQUEST_ID_HEADER", "RequestIdMiddleware"]
