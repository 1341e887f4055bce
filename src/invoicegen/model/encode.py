"""Words + boxes -> model windows, and window predictions -> one prediction per word.

The model always sees a page's words in the same *reading order* (lines top to bottom, words left
to right), whatever order the source gave (factory DOM order, PDF stream order, OCR order), so
training and inference agree. Pages longer than one window are split into overlapping windows;
each word's prediction is taken from the window where it sits farthest from an edge, so every
word is predicted exactly once with the most context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from invoicegen.schema import IGNORE_INDEX, BBox

if TYPE_CHECKING:  # inference through onnxruntime never imports torch (seconds of start-up per process)
    import torch

CLS_BOX = (0, 0, 0, 0)
SEP_BOX = (1000, 1000, 1000, 1000)
IMAGE_SIZE = 224


def normalize_box(box: BBox, width: float, height: float) -> tuple[int, int, int, int]:
    """Box in points -> LayoutLMv3's 0..1000 page coordinates (clipped, x0<=x1, y0<=y1)."""
    sx, sy = 1000.0 / max(width, 1e-6), 1000.0 / max(height, 1e-6)
    x0, y0, x1, y1 = (min(max(int(round(v)), 0), 1000) for v in
                      (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


@dataclass
class Window:
    """One model input: up to ``max_length`` tokens covering words ``[start, end)`` of a page."""

    input_ids: list[int]
    bbox: list[tuple[int, int, int, int]]
    word_ids: list[int]
    """Page word index (in model order) of each token, -1 for special tokens."""
    first_token: list[bool]
    start: int
    end: int
    labels: dict[str, list[int]] = field(default_factory=dict)
    pixel_values: np.ndarray | None = None


def split_windows(pieces: Sequence[Sequence[int]], max_length: int = 512, overlap: int = 128) -> list[tuple[int, int]]:
    """Word ranges ``[start, end)`` of overlapping windows holding at most ``max_length - 2`` tokens."""
    budget = max_length - 2
    n = len(pieces)
    if n == 0:
        return [(0, 0)]
    ranges: list[tuple[int, int]] = []
    start = 0
    while True:
        used, end = 0, start
        while end < n and used + len(pieces[end]) <= budget:
            used += len(pieces[end])
            end += 1
        end = max(end, start + 1)
        ranges.append((start, end))
        if end >= n:
            return ranges
        # step back so the next window repeats about `overlap` tokens of context
        back, nxt = 0, end
        while nxt > start + 1 and back + len(pieces[nxt - 1]) <= overlap:
            back += len(pieces[nxt - 1])
            nxt -= 1
        start = nxt


def encode_page(
    pieces: Sequence[Sequence[int]],
    boxes: Sequence[tuple[int, int, int, int]],
    *,
    cls_id: int,
    sep_id: int,
    labels: dict[str, Sequence[int]] | None = None,
    max_length: int = 512,
    overlap: int = 128,
    pixel_values: np.ndarray | None = None,
) -> list[Window]:
    """Windows for one page whose words (already in model order) have ``pieces`` and 0..1000 ``boxes``.
    ``labels`` (head -> one id per word) go on each word's first sub-token; others get IGNORE_INDEX."""
    windows = []
    for start, end in split_windows(pieces, max_length, overlap):
        ids, bbs, wids, first = [cls_id], [CLS_BOX], [-1], [False]
        for w in range(start, end):
            for k, piece in enumerate(pieces[w]):
                ids.append(piece)
                bbs.append(boxes[w])
                wids.append(w)
                first.append(k == 0)
        ids.append(sep_id)
        bbs.append(SEP_BOX)
        wids.append(-1)
        first.append(False)
        win_labels = {}
        if labels:
            for head, values in labels.items():
                win_labels[head] = [values[w] if f else IGNORE_INDEX for w, f in zip(wids, first, strict=True)]
        windows.append(Window(ids, bbs, wids, first, start, end, win_labels, pixel_values))
    return windows


def window_owners(windows: Sequence[Window], n_words: int) -> list[int]:
    """For each word, the window that predicts it: the one where it sits farthest from an edge."""
    owner = [-1] * n_words
    best = [-1] * n_words
    for wi, win in enumerate(windows):
        for w in range(win.start, win.end):
            margin = min(w - win.start, win.end - 1 - w)
            if margin > best[w]:
                best[w], owner[w] = margin, wi
    return owner


def merge_window_logits(windows: Sequence[Window], logits: Sequence[np.ndarray], n_words: int) -> np.ndarray:
    """Per-word logits ``[n_words, n_labels]`` from per-window token logits ``[tokens, n_labels]``."""
    n_labels = logits[0].shape[-1] if len(logits) else 0
    out = np.zeros((n_words, n_labels), dtype=np.float32)
    owners = window_owners(windows, n_words)
    for wi, (win, lg) in enumerate(zip(windows, logits, strict=True)):
        for t, (w, f) in enumerate(zip(win.word_ids, win.first_token, strict=True)):
            if f and owners[w] == wi:
                out[w] = lg[t]
    return out


def page_pixels(image) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Page image -> LayoutLMv3 pixel_values (3×224×224, scaled to [-1, 1])."""
    from PIL import Image

    img = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return arr.transpose(2, 0, 1).copy()


def collate_arrays(windows: Sequence[Window], pad_id: int, *, labels: bool = True) -> dict[str, np.ndarray]:
    """Pad a list of windows to the longest one (int64; labels padded with IGNORE_INDEX), as numpy
    arrays: what onnxruntime takes, and what :func:`collate` wraps for torch."""
    length = max(len(w.input_ids) for w in windows)
    n = len(windows)
    input_ids = np.full((n, length), pad_id, dtype=np.int64)
    bbox = np.zeros((n, length, 4), dtype=np.int64)
    mask = np.zeros((n, length), dtype=np.int64)
    heads = list(windows[0].labels) if labels else []
    label_arrays = {h: np.full((n, length), IGNORE_INDEX, dtype=np.int64) for h in heads}
    for i, w in enumerate(windows):
        k = len(w.input_ids)
        input_ids[i, :k] = w.input_ids
        bbox[i, :k] = np.asarray(w.bbox, dtype=np.int64).reshape(k, 4)
        mask[i, :k] = 1
        for h in heads:
            label_arrays[h][i, :k] = w.labels[h]
    batch = {"input_ids": input_ids, "bbox": bbox, "attention_mask": mask}
    for h, a in label_arrays.items():
        batch[f"{h}_labels"] = a
    if windows[0].pixel_values is not None:
        batch["pixel_values"] = np.stack([w.pixel_values for w in windows if w.pixel_values is not None])
    return batch


def collate(windows: Sequence[Window], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of windows to the longest one; labels padded with IGNORE_INDEX (torch tensors)."""
    import torch

    return {k: torch.from_numpy(v) for k, v in collate_arrays(windows, pad_id).items()}
