"""The additive attention bias of text-only windows, computed with numpy outside the ONNX graph.

LayoutLMv3 adds to the attention score of every (query, key) pair a learned bias of their distance in
the sequence and of their x and y distances on the page, then the padding mask. Inside the exported
graph that is three (length², heads) Gathers of which onnxruntime copies every row on its own, three
dequantisations and transposes, and one more Add per layer for the mask: 24 % of the INT8 model's time
on one thread. Here each table is gathered heads-first in one numpy call, the sequence part depends on
the length alone (computed once), and the padding goes into the same tensor, which the graph adds to
the scores once per layer (``model.export``): 42.6 -> 36.7 ms of model time per invoice on one thread.

The tables come from the exported model (``model.export.attention_bias``), bucketed and divided by
√(head size) there, with the model's own bucket function, and travel in the ONNX file's metadata, so
the ``.onnx`` file stays the whole model. This module needs neither torch nor transformers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import numpy as np

METADATA_KEY = "attention_bias"
"""The ONNX metadata entry that holds the tables (a model exported with an ``attention_bias`` input)."""
INPUT = "attention_bias"
"""The graph input that takes the (batch, heads, length, length) bias in place of ``attention_mask``."""

MASKED = np.finfo(np.float32).min
"""What a padding key adds to a score (as transformers' mask): its softmax weight is 0."""


@dataclass(frozen=True)
class DistanceTable:
    """``table[h, d + max_distance]``: head ``h``'s bias for distance ``d`` (key minus query), clamped
    to ±max_distance, scaled."""

    table: np.ndarray
    max_distance: int

    def lookup(self, positions: np.ndarray) -> np.ndarray:
        """(heads, n, n) biases of every pair of the ``n`` positions."""
        index = positions[None, :] - positions[:, None]
        index += self.max_distance
        # mode="clip" clamps the index into the table: exactly the clamp of the distance to ±max_distance
        return np.take(self.table, index, axis=1, mode="clip")


class AttentionBias:
    """``bias(bbox, attention_mask)`` -> the (batch, heads, length, length) float32 tensor the graph adds
    to its attention scores. ``sequence`` is the bias of the 1D distance, ``x`` and ``y`` those of the
    boxes' left edges and bottom edges (LayoutLMv3's choice); a model without them has none."""

    def __init__(self, sequence: DistanceTable | None = None, x: DistanceTable | None = None,
                 y: DistanceTable | None = None) -> None:
        self.sequence, self.x, self.y = sequence, x, y
        tables = [t for t in (sequence, x, y) if t is not None]
        self.heads = tables[0].table.shape[0] if tables else 1
        self._sequence_bias = np.zeros((self.heads, 0, 0), np.float32)

    def __call__(self, bbox: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        n, length = attention_mask.shape
        out = np.zeros((n, self.heads, length, length), np.float32)
        for i in range(n):
            o = out[i]
            if self.sequence is not None:
                o[...] = self._sequence_part(length)
            for table, column in ((self.x, 0), (self.y, 3)):
                if table is not None:
                    o += table.lookup(bbox[i, :, column].astype(np.intp))
            padding = attention_mask[i] == 0
            if padding.any():
                o[:, :, padding] = MASKED
        return out

    def _sequence_part(self, length: int) -> np.ndarray:
        """The 1D part depends on the length alone and is Toeplitz: a shorter window's is the top-left
        block of a longer one's. One array for the longest length seen so far (4 MB at 512 tokens)."""
        cached = self._sequence_bias
        if cached.shape[1] < length:
            assert self.sequence is not None
            cached = self._sequence_bias = self.sequence.lookup(np.arange(length, dtype=np.intp))
        return cached[:, :length, :length]

    def to_metadata(self) -> str:
        """JSON with each table's float32 bytes in base64 (exact, and a tenth of the size as text)."""
        parts = {}
        for name in ("sequence", "x", "y"):
            t: DistanceTable | None = getattr(self, name)
            if t is not None:
                table = np.ascontiguousarray(t.table, dtype="<f4")
                parts[name] = {"max_distance": t.max_distance, "shape": list(table.shape),
                               "float32": base64.b64encode(table.tobytes()).decode("ascii")}
        return json.dumps(parts)

    @classmethod
    def from_metadata(cls, text: str) -> AttentionBias:
        parts = {}
        for name, p in json.loads(text).items():
            table = np.frombuffer(base64.b64decode(p["float32"]), dtype="<f4").reshape(p["shape"])
            parts[name] = DistanceTable(np.ascontiguousarray(table, dtype=np.float32), int(p["max_distance"]))
        return cls(**parts)
