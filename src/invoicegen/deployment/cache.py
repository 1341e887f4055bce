"""Result cache: the same bytes with the same options and model give the same result.

Why: clients retry and re-upload (webhooks, batch jobs re-run after a failure); a hit costs a hash
instead of OCR and a model call. The key covers everything the result depends on: SHA-256 of the
bytes, the options, and the model's identity (name, version, backend, weights fingerprint), so a
new model never serves old results. In-memory LRU per process by default; Redis (shared by all
workers and pods) when REDIS_URL is set. A cache failure is logged and counted as a miss: the
cache may make a request faster, never fail it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

import structlog

log = structlog.get_logger("invoicegen.cache")

KEY_PREFIX = "invoicegen:result:"


def cache_key(data_sha256: str, options: Mapping[str, Any], model_version: str) -> str:
    """Hex SHA-256 over the bytes' digest, the canonical JSON of the options and the model version.
    Secrets in options (a PDF password) only enter hashed, never stored."""
    canon = json.dumps(dict(options), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(f"{data_sha256}\n{canon}\n{model_version}".encode()).hexdigest()


class ResultCache(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes) -> None: ...

    async def close(self) -> None: ...


class NullCache:
    """CACHE_SIZE=0: every lookup misses."""

    name = "off"

    async def get(self, key: str) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


class MemoryCache:
    """Bounded LRU in this process (thread-safe; values are the serialised response bodies)."""

    name = "memory"

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    async def set(self, key: str, value: bytes) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    async def close(self) -> None:
        with self._lock:
            self._data.clear()


class RedisCache:
    """Entries in Redis with a TTL, shared by every worker and replica."""

    name = "redis"

    def __init__(self, url: str, ttl_s: int = 86_400, timeout_s: float = 0.5) -> None:
        import redis.asyncio as aioredis

        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._client = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await asyncio.wait_for(self._client.get(KEY_PREFIX + key), self.timeout_s * 2)
        except Exception as exc:  # never fail a request for the cache
            log.warning("cache_error", op="get", error=type(exc).__name__)
            return None
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    async def set(self, key: str, value: bytes) -> None:
        try:
            await asyncio.wait_for(self._client.set(KEY_PREFIX + key, value, ex=self.ttl_s or None),
                                   self.timeout_s * 2)
        except Exception as exc:
            log.warning("cache_error", op="set", error=type(exc).__name__)

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._client.ping(), self.timeout_s * 2))
        except Exception:
            return False

    async def close(self) -> None:
        await self._client.aclose()


def make_cache(size: int, redis_url: str | None, ttl_s: int = 86_400) -> ResultCache:
    """No cache when ``size`` is 0; else Redis when a URL is given, else an LRU of ``size`` entries."""
    if size <= 0:
        return NullCache()
    if redis_url:
        return RedisCache(redis_url, ttl_s)
    return MemoryCache(size)


__all__ = ["MemoryCache", "NullCache", "RedisCache", "ResultCache", "cache_key", "make_cache"]
