"""``invoicegen verify-model DIR``: the deployment guide's "model not loading" check, as a command.

Why a separate check instead of reading the server log: it runs the same steps the server runs at
startup (files, label schema, weights, one forward pass) one at a time and names the first one that
fails, so an operator can test a checkpoint directory (a freshly filled PVC, a new image) before
pointing MODEL_PATH at it. Every step is reported; steps after a failure that depend on it are skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED_FILES = ("config.json", "model.safetensors", "labels.json", "recipe.json")
"""Files ``load_checkpoint`` needs (the tokenizer is checked on its own)."""

DUMMY_WORDS = ("INVOICE", "Invoice", "No:", "INV-0001", "Date:", "2024-01-15", "Total:", "100.00", "EUR")


@dataclass
class Check:
    """One step of the verification: its name, whether it passed, and a one-line detail."""

    name: str
    status: str  # "ok", "fail" or "skip"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class VerifyReport:
    """All steps for one checkpoint directory; ``ok`` when none failed or was skipped."""

    path: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.status == "ok" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok,
                "checks": [{"name": c.name, "status": c.status, "detail": c.detail,
                            "seconds": round(c.seconds, 3)} for c in self.checks]}

    def render(self) -> str:
        """A plain-text report: one line per step, then the verdict."""
        width = max((len(c.name) for c in self.checks), default=10)
        lines = [f"verify-model {self.path}"]
        for c in self.checks:
            lines.append(f"  [{c.status.upper():>4}] {c.name:<{width}}  {c.detail}")
        failed = [c.name for c in self.checks if c.status == "fail"]
        lines.append("OK: the model loads and runs" if self.ok
                     else f"FAIL: {', '.join(failed) or 'incomplete'} (see above; docs/deployment.md, "
                          "'Model not loading')")
        return "\n".join(lines)


def _label_diff(found: dict[str, Any], expected: dict[str, tuple[str, ...]]) -> str:
    """Human summary of how a checkpoint's labels.json differs from this version's schema."""
    parts = []
    for head in sorted(set(found) | set(expected)):
        if head not in found:
            parts.append(f"head {head!r} missing")
            continue
        if head not in expected:
            parts.append(f"unknown head {head!r}")
            continue
        have, want = list(found[head]), list(expected[head])
        if have == want:
            continue
        missing = [x for x in want if x not in have]
        extra = [x for x in have if x not in want]
        if not missing and not extra:
            parts.append(f"{head}: same labels in a different order")
        else:
            parts.append(f"{head}: {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unknown "
                         f"(e.g. {extra[:3]})")
    return "; ".join(parts)


def verify_model(path: str | Path, *, backend: str | None = None) -> VerifyReport:
    """Run every step on the checkpoint directory ``path`` and return the report (never raises for
    a broken checkpoint: each problem becomes a failed step)."""
    report = VerifyReport(Path(path))
    state: dict[str, Any] = {}

    def step(name: str, func: Callable[[], str], needs: tuple[str, ...] = ()) -> bool:
        blocked = [n for n in needs if not any(c.name == n and c.status == "ok" for c in report.checks)]
        if blocked:
            report.checks.append(Check(name, "skip", f"needs: {', '.join(blocked)}"))
            return False
        t0 = time.perf_counter()
        try:
            detail = func()
        except Exception as exc:  # every failure is reported, with its type
            report.checks.append(Check(name, "fail", f"{type(exc).__name__}: {exc}", time.perf_counter() - t0))
            return False
        report.checks.append(Check(name, "ok", detail, time.perf_counter() - t0))
        return True

    root = report.path

    def directory() -> str:
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist (check MODEL_PATH and the volume mount)")
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is a file; MODEL_PATH must be the checkpoint directory")
        return str(root.resolve())

    def files() -> str:
        missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
        if not (root / "tokenizer.json").is_file() and not ((root / "vocab.json").is_file()
                                                            and (root / "merges.txt").is_file()):
            missing.append("tokenizer.json (or vocab.json + merges.txt)")
        if missing:
            raise FileNotFoundError(f"missing: {', '.join(missing)}")
        empty = [f for f in REQUIRED_FILES if (root / f).stat().st_size == 0]
        if empty:
            raise ValueError(f"empty file(s): {', '.join(empty)} (an interrupted copy?)")
        size = sum(p.stat().st_size for p in root.iterdir() if p.is_file())
        return f"{len(REQUIRED_FILES) + 1} required files present, {size / 1e6:.1f} MB in all"

    def labels() -> str:
        from invoicegen.schema import HEADS

        found = json.loads((root / "labels.json").read_text(encoding="utf-8"))
        if not isinstance(found, dict):
            raise ValueError("labels.json is not an object of head -> label list")
        diff = _label_diff(found, HEADS)
        if diff:
            raise ValueError(f"trained with a different label schema than invoicegen {_version()}: {diff}")
        return ", ".join(f"{h} {len(v)}" for h, v in HEADS.items()) + " labels match this version"

    def weights() -> str:
        from invoicegen.model.checkpoint import load_checkpoint

        ckpt = load_checkpoint(root, device="cpu")
        state["ckpt"] = ckpt
        n = sum(p.numel() for p in ckpt.model.parameters())
        return (f"{ckpt.name} v{ckpt.version}, recipe {ckpt.recipe.name}, {n / 1e6:.2f}M parameters, "
                f"vocab {ckpt.tokenizer.vocab_size}")

    def forward() -> str:
        import numpy as np

        from invoicegen.model.data import prepare_page
        from invoicegen.model.predict import torch_runner
        from invoicegen.schema import HEADS

        ckpt = state["ckpt"]
        words = list(DUMMY_WORDS)
        boxes = [(50.0 + 60 * (i % 4), 50.0 + 20 * (i // 4), 100.0 + 60 * (i % 4), 62.0 + 20 * (i // 4))
                 for i in range(len(words))]
        image = None
        if ckpt.recipe.visual_embed:
            from PIL import Image

            image = Image.new("RGB", (612, 792), "white")
        page = prepare_page(words, boxes, 612.0, 792.0, ckpt.tokenizer, ckpt.recipe, image=image)
        out = torch_runner(ckpt.model, ckpt.tokenizer.pad_id)(page.windows)
        tokens = len(page.windows[0].input_ids)
        for head, names in HEADS.items():
            arr = out[f"{head}_logits"]
            if arr.shape != (len(page.windows), tokens, len(names)):
                raise ValueError(f"{head} logits have shape {arr.shape}, expected "
                                 f"({len(page.windows)}, {tokens}, {len(names)})")
            if not np.isfinite(arr).all():
                raise ValueError(f"{head} logits contain NaN or inf (broken weights?)")
        return f"{len(words)} words -> {tokens} tokens, logits finite for {', '.join(HEADS)}"

    def runtime() -> str:
        from invoicegen.model.data import prepare_page
        from invoicegen.model.runtime import load_runtime

        rt = load_runtime(root, backend=backend, device="cpu")
        ckpt = state["ckpt"]
        page = prepare_page(list(DUMMY_WORDS), [(10.0, 10.0, 40.0, 20.0)] * len(DUMMY_WORDS), 612.0, 792.0,
                            ckpt.tokenizer, ckpt.recipe)
        rt.run(page.windows)
        return f"backend {rt.backend}{' (int8)' if rt.quantized else ''} runs (what MODEL_BACKEND={backend or 'auto'} serves)"

    step("directory", directory)
    step("files", files, ("directory",))
    step("labels", labels, ("files",))
    step("weights", weights, ("labels",))
    step("forward pass", forward, ("weights",))
    step("serving backend", runtime, ("forward pass",))
    return report


def _version() -> str:
    from invoicegen import __version__

    return __version__


__all__ = ["Check", "VerifyReport", "verify_model"]
