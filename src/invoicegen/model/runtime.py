"""Model runtimes behind one interface: whatever runs the windows, the extractor is the same."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from invoicegen.model.checkpoint import Checkpoint, load_checkpoint
from invoicegen.model.encode import Window, collate
from invoicegen.model.export import ONNX_FILE, ONNX_INT8_FILE, OUTPUTS
from invoicegen.model.predict import torch_runner
from invoicegen.model.recipes import Recipe
from invoicegen.model.tokenizer import WordTokenizer


class Runtime(Protocol):
    """A loaded model: tokenizer + recipe for encoding, ``run`` for logits, and what it is."""

    name: str
    version: str
    backend: str
    quantized: bool
    tokenizer: WordTokenizer
    recipe: Recipe
    temperature: float
    """Divides the entity logits before softmax (fitted on validation data at training time)."""

    def run(self, windows: Sequence[Window]) -> dict[str, np.ndarray]: ...


class TorchRuntime:
    """The checkpoint's PyTorch model (fp32 on CPU)."""

    backend = "torch"
    quantized = False

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.model = checkpoint.model
        self.tokenizer = checkpoint.tokenizer
        self.recipe = checkpoint.recipe
        self.name = checkpoint.name
        self.version = checkpoint.version
        self.temperature = float(checkpoint.meta.get("temperature", 1.0))
        self._run = torch_runner(checkpoint.model, checkpoint.tokenizer.pad_id)

    def run(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        return self._run(windows)


def torch_int8(checkpoint: Checkpoint) -> Checkpoint:
    """Dynamic INT8 of the Linear layers. The rel_pos* Linear layers are left out: LayoutLMv3 uses
    them as lookup tables and quantising them breaks the forward pass (ENVIRONMENT-NOTES)."""
    import torch

    skip = {name for name, _ in checkpoint.model.named_modules() if "rel_pos" in name}
    targets = {name for name, m in checkpoint.model.named_modules()
               if isinstance(m, torch.nn.Linear) and name not in skip}
    checkpoint.model = torch.ao.quantization.quantize_dynamic(checkpoint.model, targets, dtype=torch.qint8)
    return checkpoint


class OnnxRuntime:
    """An exported ONNX file in the checkpoint directory, run by onnxruntime on CPU."""

    backend = "onnx"

    def __init__(self, checkpoint: Checkpoint, onnx_path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.quantized = meta.get("quantized") == "true"
        self.tokenizer = checkpoint.tokenizer
        self.recipe = checkpoint.recipe
        self.name = checkpoint.name
        self.version = checkpoint.version
        self.temperature = float(checkpoint.meta.get("temperature", 1.0))
        self.pad_id = checkpoint.tokenizer.pad_id
        self._inputs = {i.name for i in self.session.get_inputs()}

    def run(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        batch = collate(windows, self.pad_id)
        feeds = {k: v.numpy() for k, v in batch.items() if k in self._inputs}
        outs = self.session.run(OUTPUTS, feeds)
        return dict(zip(OUTPUTS, outs, strict=True))


BACKENDS = ("auto", "torch", "torch-int8", "onnx", "onnx-int8")


def load_runtime(path: str | Path, backend: str | None = None, device: str = "cpu") -> Runtime:
    """Load a checkpoint directory into a runtime. ``backend`` (default: MODEL_BACKEND or auto):
    ``auto`` uses an ONNX file found in the checkpoint (INT8 first), else torch."""
    path = Path(path)
    backend = (backend or os.environ.get("MODEL_BACKEND") or "auto").lower()
    if backend not in BACKENDS:
        raise ValueError(f"MODEL_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    checkpoint = load_checkpoint(path, device=device)
    if backend == "auto":
        found = [f for f in (ONNX_INT8_FILE, ONNX_FILE) if (path / f).exists()]
        backend = ("onnx-int8" if found[0] == ONNX_INT8_FILE else "onnx") if found and device == "cpu" else "torch"
    if backend.startswith("onnx"):
        onnx_path = path / (ONNX_INT8_FILE if backend == "onnx-int8" else ONNX_FILE)
        if not onnx_path.exists():
            raise FileNotFoundError(f"{onnx_path} not found: run `invoicegen export --model {path}` first")
        return OnnxRuntime(checkpoint, onnx_path)
    if backend == "torch-int8":
        runtime = TorchRuntime(torch_int8(checkpoint))
        runtime.quantized = True
        return runtime
    return TorchRuntime(checkpoint)
