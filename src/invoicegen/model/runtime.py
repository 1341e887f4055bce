"""Model runtimes behind one interface: whatever runs the windows, the extractor is the same.

The ONNX runtimes import neither torch nor transformers (the checkpoint's tokenizer, recipe and
metadata are enough): that is most of the start-up time of a process that runs the default
backend (a batch worker process, a CLI call), ~1 s instead of ~6 s of CPU on the 2-core machine."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from invoicegen.model import attention_bias as ab
from invoicegen.model.checkpoint import Checkpoint, CheckpointInfo, load_checkpoint, load_checkpoint_info
from invoicegen.model.encode import Window, collate_arrays
from invoicegen.model.predict import WindowRunner
from invoicegen.model.recipes import Recipe
from invoicegen.model.tokenizer import WordTokenizer
from invoicegen.schema import HEADS

OUTPUTS = [f"{h}_logits" for h in HEADS]
"""Output names of an exported model (``model.export``)."""
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"


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


def run_each(run: WindowRunner, windows: Sequence[Window]) -> dict[str, np.ndarray]:
    """``run`` on one window at a time, outputs padded to the longest as one call's would be.

    Why: a quantised model scales its activations once per call, so in a shared call a window's
    logits depend on its neighbours and on their padding (extract() and the batch runner gave
    different results for the same page). Alone, a window's result is its own, and no padding is
    computed: 24 vs 34 ms a document on one core (200 factory invoices, a quarter of whose
    windows share a call with a longer one)."""
    if len(windows) == 1:
        return run(windows)
    outs = [run([w]) for w in windows]
    length = max(len(w.input_ids) for w in windows)
    return {k: np.concatenate([np.pad(o[k], ((0, 0), (0, length - o[k].shape[1]), (0, 0))) for o in outs])
            for k in outs[0]}


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
        from invoicegen.model.predict import torch_runner

        self._run = torch_runner(checkpoint.model, checkpoint.tokenizer.pad_id)

    def run(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        return run_each(self._run, windows) if self.quantized else self._run(windows)


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
    """An exported ONNX file in the checkpoint directory, run by onnxruntime on CPU.

    ``threads``: intra-op threads of the session (default: every core). Where several inferences
    run at once (the batch runner's model threads or worker processes), each should get its share
    of the cores: more threads than cores only fight (onnxruntime's pool threads spin-wait)."""

    backend = "onnx"

    def __init__(self, checkpoint: Checkpoint | CheckpointInfo, onnx_path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.checkpoint, self.onnx_path = checkpoint, Path(onnx_path)
        self.threads = threads or (os.cpu_count() or 1)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle pool threads sleep instead of spin-waiting: the cores are shared with the Python parts
        # of the pipeline (and, in the API, with the other requests); spinning doubled the CPU time
        # per document on 2 cores (47 vs 25 ms for a one-page invoice) and took it from them
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
        self._bias: ab.AttentionBias | None = None
        # a text-only model takes its attention bias from numpy (model.attention_bias); files exported
        # before 2026-12-07, and models with visual embeddings, take attention_mask and compute it inside
        if ab.INPUT in self._inputs:
            if ab.METADATA_KEY not in meta:
                raise ValueError(f"{onnx_path} takes an attention bias but has no '{ab.METADATA_KEY}' "
                                 "metadata: export it again with `invoicegen export`")
            self._bias = ab.AttentionBias.from_metadata(meta[ab.METADATA_KEY])

    def with_threads(self, threads: int) -> OnnxRuntime:
        """The same model in a new session with ``threads`` intra-op threads (self if it has them)."""
        if threads == self.threads:
            return self
        return OnnxRuntime(self.checkpoint, self.onnx_path, threads=threads)

    def run(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        return run_each(self._run, windows) if self.quantized else self._run(windows)

    def _run(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        batch = collate_arrays(windows, self.pad_id, labels=False)
        feeds = {k: v for k, v in batch.items() if k in self._inputs}
        if self._bias is not None:
            feeds[ab.INPUT] = self._bias(batch["bbox"], batch["attention_mask"])
        outs = self.session.run(OUTPUTS, feeds)
        return dict(zip(OUTPUTS, outs, strict=True))


def with_threads(runtime: Runtime, threads: int) -> Runtime:
    """``runtime`` with ``threads`` intra-op threads: a second session on the same ONNX file when the
    session has another number (~0.1 s); anything else as it is (torch's threads are process-wide:
    ``torch.set_num_threads``)."""
    if isinstance(runtime, OnnxRuntime):
        return runtime.with_threads(threads)
    return runtime


BACKENDS = ("auto", "torch", "torch-int8", "onnx", "onnx-int8")


def load_runtime(path: str | Path, backend: str | None = None, device: str = "cpu", *,
                 threads: int | None = None) -> Runtime:
    """Load a checkpoint directory into a runtime. ``backend`` (default: MODEL_BACKEND or auto):
    ``auto`` uses an ONNX file found in the checkpoint (INT8 first), else torch. ``threads``: the
    ONNX session's intra-op threads (default: every core; torch's are process-wide, set by the caller)."""
    path = Path(path)
    backend = (backend or os.environ.get("MODEL_BACKEND") or "auto").lower()
    if backend not in BACKENDS:
        raise ValueError(f"MODEL_BACKEND must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        found = [f for f in (ONNX_INT8_FILE, ONNX_FILE) if (path / f).exists()]
        backend = ("onnx-int8" if found[0] == ONNX_INT8_FILE else "onnx") if found and device == "cpu" else "torch"
    if backend.startswith("onnx"):
        info = load_checkpoint_info(path)  # no torch model: the ONNX file is the model
        onnx_path = path / (ONNX_INT8_FILE if backend == "onnx-int8" else ONNX_FILE)
        if not onnx_path.exists():
            raise FileNotFoundError(f"{onnx_path} not found: run `invoicegen export --model {path}` first")
        return OnnxRuntime(info, onnx_path, threads=threads)
    checkpoint = load_checkpoint(path, device=device)
    if backend == "torch-int8":
        runtime = TorchRuntime(torch_int8(checkpoint))
        runtime.quantized = True
        return runtime
    return TorchRuntime(checkpoint)
