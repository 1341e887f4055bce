"""Report pictures: confusion matrix, per-entity F1, per-field accuracy, page overlays.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, no global backend
switch), so evaluating inside a server or a test process never needs a display."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from invoicegen.evaluation.factory import PageEval
from invoicegen.evaluation.metrics import Confusion, Span, spans
from invoicegen.schema import BBox

GOLD_COLOUR = "#1a9641"
PRED_COLOUR = "#d7191c"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=fig.dpi)
    return path


def confusion_png(conf: Confusion, path: Path, title: str = "Word-level entity confusion (row-normalised)") -> Path:
    """Heat map of the row-normalised confusion (gold rows, predicted columns)."""
    n = len(conf.labels)
    rates = np.array([[conf.rate(i, j) for j in range(n)] for i in range(n)])
    size = max(5.0, 0.3 * n + 2.5)
    fig = Figure(figsize=(size + 1.0, size), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), conf.labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), conf.labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title, fontsize=10)
    for i in range(n):
        for j in range(n):
            if rates[i, j] >= 0.01 and (i == j or rates[i, j] >= 0.02):
                ax.text(j, i, f"{rates[i, j]:.2f}"[1:] if rates[i, j] < 1 else "1", ha="center", va="center",
                        fontsize=5, color="white" if rates[i, j] > 0.6 else "black")
    fig.colorbar(im, ax=ax, shrink=0.7)
    return _save(fig, path)


def bar_png(values: Mapping[str, float | None], path: Path, title: str, xlabel: str,
            notes: Mapping[str, str] | None = None) -> Path:
    """Horizontal bars (one per key, in the given order) with an optional note after each bar."""
    keys = list(values)
    vals = [values[k] or 0.0 for k in keys]
    fig = Figure(figsize=(7.5, max(2.0, 0.26 * len(keys) + 1.2)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    colours = ["#2b83ba" if v >= 0.9 else "#fdae61" if v >= 0.7 else "#d7191c" for v in vals]
    ax.barh(range(len(keys)), vals, color=colours)
    ax.set_yticks(range(len(keys)), keys, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    for i, (k, v) in enumerate(zip(keys, vals, strict=True)):
        ax.text(v + 0.01, i, f"{v:.3f}" + (f"  {notes[k]}" if notes and k in notes else ""), va="center",
                fontsize=6)
    return _save(fig, path)


def _line_boxes(boxes: Sequence[BBox], span: Span) -> list[BBox]:
    """A span's words joined into one box per printed line (a wrapped span gives several)."""
    out: list[list[float]] = []
    for b in boxes[span[1]:span[2]]:
        if out and min(out[-1][3], b[3]) - max(out[-1][1], b[1]) > 0.3 * (b[3] - b[1]):
            last = out[-1]
            out[-1] = [min(last[0], b[0]), min(last[1], b[1]), max(last[2], b[2]), max(last[3], b[3])]
        else:
            out.append(list(b))
    return [(o[0], o[1], o[2], o[3]) for o in out]


def _page_axes(image: Any | None, width: float, height: float, title: str) -> tuple[Figure, Any]:
    inches = 8.5
    fig = Figure(figsize=(inches, inches * height / max(width, 1.0) + 0.4), dpi=150, layout="constrained")
    ax = fig.add_subplot()
    if image is not None:
        ax.imshow(np.asarray(image.convert("RGB")), extent=(0, width, height, 0))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    return fig, ax


def overlay_png(page: PageEval, image: Any | None, path: Path, title: str = "") -> Path:
    """The page (dataset PNG, or blank) with gold entity spans and predicted spans drawn; the type
    of every span that is not exactly right is written next to it."""
    fig, ax = _page_axes(image, page.width, page.height, title or f"{page.doc_id} page {page.index + 1}")
    if image is None:  # no page image in the dataset: print the words so the page can be read
        for w, (x0, _, _, y1) in zip(page.words, page.boxes, strict=True):
            ax.text(x0, y1, w, fontsize=4, color="#606060", va="bottom")
    gold, pred = set(spans(page.gold["ner"])), set(spans(page.pred.get("ner", [])))
    for span in gold:
        for i, (x0, y0, x1, y1) in enumerate(_line_boxes(page.boxes, span)):
            ax.add_patch(Rectangle((x0 - 1.5, y0 - 1.5), x1 - x0 + 3, y1 - y0 + 3, fill=False, lw=1.2,
                                   ls="--", edgecolor=GOLD_COLOUR))
            if i == 0 and span not in pred:
                ax.text(x0, y1 + 1.5, span[0], fontsize=4.5, color=GOLD_COLOUR, va="top")
    for span in pred:
        for i, (x0, y0, x1, y1) in enumerate(_line_boxes(page.boxes, span)):
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=0.8, edgecolor=PRED_COLOUR))
            if i == 0 and span not in gold:
                ax.text(x0, y0 - 1.5, span[0], fontsize=4.5, color=PRED_COLOUR, va="bottom")
    ax.legend(handles=[Patch(fill=False, edgecolor=GOLD_COLOUR, ls="--", label="gold"),
                       Patch(fill=False, edgecolor=PRED_COLOUR, label="predicted")],
              loc="upper right", fontsize=6, framealpha=0.8)
    return _save(fig, path)


def fields_overlay_png(image: Any, width: float, height: float, boxes: Sequence[tuple[str, BBox, bool | None]],
                       path: Path, title: str = "") -> Path:
    """A real page with predicted field boxes: correct in gold's colour, wrong in red, unscored grey."""
    fig, ax = _page_axes(image, width, height, title)
    for name, (x0, y0, x1, y1), ok in boxes:
        colour = "#808080" if ok is None else (GOLD_COLOUR if ok else PRED_COLOUR)
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=1.0, edgecolor=colour))
        ax.text(x0, y0 - 1.5, name, fontsize=4, color=colour, va="bottom")
    ax.legend(handles=[Patch(fill=False, edgecolor=GOLD_COLOUR, label="correct"),
                       Patch(fill=False, edgecolor=PRED_COLOUR, label="wrong"),
                       Patch(fill=False, edgecolor="#808080", label="not scored")],
              loc="upper right", fontsize=6, framealpha=0.8)
    return _save(fig, path)
