"""Service settings from the environment (and an optional ``.env`` file).

Why one class: every knob of the deployment guide (MODEL_PATH, API_PORT, API_KEY, ...) is parsed and
checked here, once, at startup, so a typo in a Kubernetes manifest stops the pod with a message that
names the variable instead of surfacing as a 500 on the first request.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Backend = Literal["auto", "torch", "torch-int8", "onnx", "onnx-int8"]
LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class SettingsError(ValueError):
    """A setting has a bad value; the message names the environment variable(s)."""


def _split_csv(value: Any) -> Any:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (env lists are comma-separated, not JSON)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """All service settings; field ``api_port`` is read from ``API_PORT`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=False)

    # -- model ------------------------------------------------------------------------------------
    model_path: Path | None = Field(None, description="Checkpoint directory (default: models/MODEL_NAME).")
    model_name: str = Field("invoicegen-small", min_length=1,
                            description="Name of the shipped model under models/ when MODEL_PATH is unset.")
    model_backend: Backend = Field("auto", description="auto, torch, torch-int8, onnx or onnx-int8.")
    use_gpu: bool = Field(False, description="Run the model on CUDA when a GPU is present.")
    fp16_inference: bool = Field(False, description="Half precision on CUDA (ignored on CPU).")
    ocr_engine: str = Field("rapidocr", description="OCR engine for scans: rapidocr (alias paddleocr) or tesseract.")
    ocr_lang: str = Field("eng", min_length=1, description="Tesseract language(s), e.g. eng+deu.")

    # -- server -----------------------------------------------------------------------------------
    api_host: str = Field("0.0.0.0", min_length=1, description="Address uvicorn binds to.")
    api_port: int = Field(8000, ge=1, le=65535)
    api_workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes (each loads the model).")
    log_level: LogLevel = "info"
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated allowed origins; empty disables CORS.")

    # -- throughput -------------------------------------------------------------------------------
    max_batch_size: int = Field(8, ge=1, le=256, description="Files per /predict/batch and per model call.")
    batch_wait_ms: float = Field(5.0, ge=0, le=1000, description="How long to gather requests into one model call.")
    inference_timeout: float = Field(60.0, gt=0, le=3600, description="Seconds per request before a 504.")
    load_workers: int = Field(2, ge=1, le=64, description="Threads that read/OCR uploaded files.")
    model_workers: int = Field(0, ge=0, le=64, description="Model calls (micro-batches) at once, each in its own "
                               "thread; 0 = auto: min(2, cores) for ONNX on CPU, else 1.")
    model_threads: int = Field(0, ge=0, le=256, description="onnxruntime intra-op threads per model call; "
                               "0 = cores / MODEL_WORKERS.")
    queue_size: int = Field(64, ge=1, le=100_000, description="Requests admitted at once; more get 503.")
    max_upload_mb: float = Field(20.0, gt=0, le=1024)
    max_pages: int = Field(50, ge=1, le=10_000)

    # -- cache ------------------------------------------------------------------------------------
    cache_size: int = Field(1024, ge=0, description="In-memory LRU entries; 0 disables the cache.")
    cache_ttl: int = Field(86_400, ge=0, description="Seconds a Redis cache entry lives (0 = forever).")
    redis_url: str | None = Field(None, description="redis://host:port/db for the cache and rate limits.")

    # -- security ---------------------------------------------------------------------------------
    api_key_required: bool = False
    api_key: SecretStr | None = None
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    api_keys_file: Path | None = Field(None, description="File with one key per line (a mounted secret).")
    rate_limit: str = Field("60/minute", description='Per key or client address, e.g. "60/minute"; "" = off.')

    # -- observability ----------------------------------------------------------------------------
    prometheus_enabled: bool = True
    metrics_port: int | None = Field(None, ge=0, le=65535,
                                     description="Also serve /metrics on this port (0 or unset: off).")

    @field_validator("cors_origins", "api_keys", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("model_backend", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("model_path", "api_keys_file", "redis_url", "metrics_port", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ocr_engine")
    @classmethod
    def _ocr_engine(cls, value: str) -> str:
        from invoicegen.ocr.base import resolve_engine_name

        return resolve_engine_name(value)

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        value = value.strip()
        if value.lower() in ("", "off", "none", "0"):
            return ""
        from limits import parse_many

        parse_many(value)  # ValueError with the bad part in the message
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _keys_present(self) -> Settings:
        if self.api_keys_file is not None and not self.api_keys_file.is_file():
            raise ValueError(f"API_KEYS_FILE: {self.api_keys_file} is not a readable file")
        if self.api_key_required and not self.load_api_keys():
            raise ValueError("API_KEY_REQUIRED is true but no key is set: set API_KEY, API_KEYS or API_KEYS_FILE")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"CORS_ORIGINS: {origin!r} is not an origin (http(s)://host[:port] or *)")
        return self

    # -- derived ----------------------------------------------------------------------------------

    @cached_property
    def resolved_model_path(self) -> Path:
        """MODEL_PATH, else ``models/MODEL_NAME`` in the repository (the shipped default)."""
        if self.model_path is not None:
            return self.model_path
        from invoicegen.extract.pipeline import default_model_path

        return default_model_path().parent / self.model_name

    @property
    def planned_model_workers(self) -> int:
        """MODEL_WORKERS, or the automatic choice for an ONNX model on CPU (the default backend)."""
        return self.model_workers or min(2, os.cpu_count() or 1)

    @property
    def onnx_threads(self) -> int:
        """MODEL_THREADS, or each model worker's share of the cores."""
        return self.model_threads or max(1, (os.cpu_count() or 1) // self.planned_model_workers)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def load_api_keys(self) -> list[str]:
        """All accepted keys: API_KEY, API_KEYS and the lines of API_KEYS_FILE (blank/# lines skipped)."""
        keys = [k.get_secret_value() for k in ([self.api_key] if self.api_key else []) + self.api_keys]
        if self.api_keys_file is not None:
            for line in self.api_keys_file.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        return [k for k in dict.fromkeys(keys) if k]

    def export_ocr_env(self) -> None:
        """The OCR package reads OCR_ENGINE/OCR_LANG from the process environment: put the values
        from ``.env`` there too, so both sources behave the same."""
        os.environ["OCR_ENGINE"] = self.ocr_engine
        os.environ["OCR_LANG"] = self.ocr_lang


def _env_name(loc: tuple[int | str, ...]) -> str:
    return str(loc[0]).upper() if loc else ""


def load_settings(**overrides: Any) -> Settings:
    """Settings from env/.env (plus ``overrides``); a :class:`SettingsError` names every bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = _env_name(err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            given = err.get("input")
            shown = "" if isinstance(given, dict) or name.startswith("API_KEY") else f" (got {given!r})"
            lines.append(f"{name}: {msg}{shown}" if name else msg)
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


__all__ = ["Settings", "SettingsError", "load_settings"]
