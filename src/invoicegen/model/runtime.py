"""Model runtimes behind one interface: whatever runs the windows, the extractor is the same."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from invoicegen.model.checkpoint import Checkpoint, load_checkpoint
from invoicegen.model.encode import Window
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
        self._run = torch_runner(checkpoint.model, checkpoint.tokenizer.pad_id)

    def run(self, windows: Sequence[Window]) -> dict[str, np.ndarray]:
        return self._run(windows)


def load_runtime(path: str | Path, device: str = "cpu") -> Runtime:
    """Load a checkpoint directory into a runtime."""
    return TorchRuntime(load_checkpoint(path, device=device))
