"""API keys and rate limiting.

Keys: X-API-Key compared with ``hmac.compare_digest`` against every accepted key (no early exit
that would leak which prefix matched); a missing key is 401, a wrong one 403. API_KEYS_FILE is
re-read when it changes, so rotating a mounted Kubernetes secret needs no restart.

Rate limits: slowapi's Limiter (``limits`` storage: memory, or Redis when REDIS_URL is set, falling
back to memory if Redis is down). The check runs in an ASGI middleware *before* the upload is read,
so a client over its limit costs nothing but the check. The key is the API key (hashed: raw keys
never reach Redis) when it is a valid one, else the client address: a client cannot escape its
limit by inventing keys.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from limits import RateLimitItem
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.util import get_remote_address
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from invoicegen.deployment.settings import Settings

log = structlog.get_logger("invoicegen.security")

API_KEY_HEADER = "X-API-Key"


class KeyStore:
    """The accepted API keys (from settings; API_KEYS_FILE reloaded on change)."""

    def __init__(self, settings: Settings) -> None:
        self.required = settings.api_key_required
        self._settings = settings
        self._file: Path | None = settings.api_keys_file
        self._keys = [k.encode() for k in settings.load_api_keys()]
        self._stamp = self._file_stamp()
        self._lock = threading.Lock()
        self._checked_at = time.monotonic()

    def _file_stamp(self) -> tuple[int, int] | None:
        if self._file is None:
            return None
        try:
            st = self._file.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        if self._file is None or time.monotonic() - self._checked_at < 1.0:
            return
        with self._lock:
            self._checked_at = time.monotonic()
            stamp = self._file_stamp()
            if stamp is None or stamp == self._stamp:
                return
            try:
                keys = [k.encode() for k in self._settings.load_api_keys()]
            except OSError as exc:
                log.warning("api_keys_file_unreadable", error=type(exc).__name__)
                return
            if keys:
                self._keys, self._stamp = keys, stamp
                log.info("api_keys_reloaded", count=len(keys))

    def is_valid(self, key: str | None) -> bool:
        if not key:
            return False
        self._refresh()
        given = key.encode()
        ok = False
        for k in self._keys:  # no early exit: the time does not depend on which key matched
            ok |= hmac.compare_digest(given, k)
        return ok

    def check(self, key: str | None) -> tuple[int, str] | None:
        """None when the request may pass; else (status, message)."""
        if not self.required:
            return None
        if not key:
            return 401, f"missing API key: send it in the {API_KEY_HEADER} header"
        if not self.is_valid(key):
            return 403, "invalid API key"
        return None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def make_key_func(keys: KeyStore) -> Callable[[Request], str]:
    """Rate-limit identity: ``key:<hash>`` for a valid API key, else ``ip:<client address>``."""

    def key_func(request: Request) -> str:
        key = request.headers.get(API_KEY_HEADER)
        if key and keys.is_valid(key):
            return "key:" + hash_key(key)
        return "ip:" + (get_remote_address(request) or "unknown")

    return key_func


def make_limiter(settings: Settings, keys: KeyStore) -> Limiter:
    storage = settings.redis_url or "memory://"
    return Limiter(key_func=make_key_func(keys), storage_uri=storage, in_memory_fallback_enabled=True,
                   headers_enabled=False, key_prefix="invoicegen", enabled=bool(settings.rate_limit),
                   strategy="fixed-window")


class RateLimitMiddleware:
    """Checks slowapi route limits before the request body is read (429 + Retry-After)."""

    def __init__(self, app: ASGIApp, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        endpoint = _find_endpoint(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            # slowapi's own check for the route's @limiter.limit; marking it done stops the decorator
            # from counting the request twice
            self.limiter._check_request_limit(request, endpoint, False)
            request.state._rate_limiting_complete = True
        except RateLimitExceeded as exc:
            retry = self._retry_after(request)
            body = json.dumps({"detail": f"rate limit exceeded: {exc.detail}; retry in {retry} s",
                               "error": "rate_limited",
                               "request_id": scope.get("state", {}).get("request_id")}).encode()
            await send({"type": "http.response.start", "status": 429,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"retry-after", str(retry).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _retry_after(self, request: Request) -> int:
        current: Any = getattr(request.state, "view_rate_limit", None)
        if not current:
            return 1
        item: RateLimitItem = current[0]
        try:
            reset_at = self.limiter.limiter.get_window_stats(item, *current[1]).reset_time
        except Exception:
            return max(1, item.get_expiry())
        return max(1, math.ceil(reset_at - time.time()))


def _find_endpoint(scope: Scope) -> Callable[..., Any] | None:
    app = scope.get("app")
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return getattr(route, "endpoint", None)
    return None


__all__ = ["API_KEY_HEADER", "KeyStore", "RateLimitMiddleware", "make_limiter"]
