"""Batched inference over encoded pages: window logits merged back to one row per word."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from invoicegen.model.data import ModelPage
from invoicegen.model.encode import Window, collate, merge_window_logits
from invoicegen.schema import HEADS

if TYPE_CHECKING:  # torch only for the torch backend: onnxruntime inference starts without it
    import torch

HEAD_NAMES = tuple(HEADS)

WindowRunner = Callable[[Sequence[Window]], dict[str, np.ndarray]]
"""Runs a batch of windows through a model and returns ``{head}_logits`` arrays [B, T, L]."""


def torch_runner(model: torch.nn.Module, pad_id: int) -> WindowRunner:
    """A WindowRunner for a torch MultiTaskLayoutLMv3 in eval mode."""
    import torch

    def run(windows: Sequence[Window]) -> dict[str, np.ndarray]:
        batch = collate(windows, pad_id)
        batch = {k: v for k, v in batch.items() if not k.endswith("_labels")}
        with torch.inference_mode():
            out = model(**batch)
        return {f"{h}_logits": out[f"{h}_logits"].float().numpy() for h in HEAD_NAMES}

    return run


def predict_pages(pages: Sequence[ModelPage], run: WindowRunner, batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    """Per page, per head: word-level logits ``[n_words, n_labels]`` in model order."""
    flat = [(pi, wi) for pi, p in enumerate(pages) for wi in range(len(p.windows))]
    flat.sort(key=lambda t: -len(pages[t[0]].windows[t[1]].input_ids))
    token_logits: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for chunk in _batches(flat, [len(pages[pi].windows[wi].input_ids) for pi, wi in flat], batch_size):
        out = run([pages[pi].windows[wi] for pi, wi in chunk])
        for b, (pi, wi) in enumerate(chunk):
            n = len(pages[pi].windows[wi].input_ids)
            token_logits[(pi, wi)] = {h: out[f"{h}_logits"][b, :n] for h in HEAD_NAMES}
    results = []
    for pi, page in enumerate(pages):
        per_head = {}
        for h in HEAD_NAMES:
            logits = [token_logits[(pi, wi)][h] for wi in range(len(page.windows))]
            per_head[h] = merge_window_logits(page.windows, logits, len(page.words))
        results.append(per_head)
    return results


MIN_FILL = 0.75
"""A window shares a batch only with windows at most 1/MIN_FILL times its length: padding is computed
like any token (attention quadratically), and sorting alone left a quarter of the tokens padding."""


def _batches(items: list, lengths: list[int], batch_size: int) -> list[list]:
    """``items`` (sorted longest first) cut into batches of at most ``batch_size`` with bounded padding."""
    batches: list[list] = []
    longest = 0
    for item, n in zip(items, lengths, strict=True):
        if not batches or len(batches[-1]) == batch_size or n < MIN_FILL * longest:
            batches.append([])
            longest = n
        batches[-1].append(item)
    return batches


def score_pages(pages: Sequence[ModelPage], run: WindowRunner, batch_size: int = 16) -> dict[str, dict[str, float]]:
    """Span P/R/F1 per head (entities, table rows, cells) of a runner on gold-labelled pages."""
    from invoicegen.model.metrics import head_scores  # seqeval pulls in scikit-learn and scipy

    logits = predict_pages(pages, run, batch_size=batch_size)
    gold: dict[str, list[list[str]]] = {h: [] for h in HEAD_NAMES}
    pred: dict[str, list[list[str]]] = {h: [] for h in HEAD_NAMES}
    for page, lg in zip(pages, logits, strict=True):
        assert page.gold is not None, "score_pages needs gold-labelled pages"
        for h in HEAD_NAMES:
            gold[h].append(page.gold[h])
            pred[h].append([HEADS[h][i] for i in lg[h].argmax(-1)])
    return head_scores(gold, pred)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
