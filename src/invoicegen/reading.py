"""Reading order: words grouped into text lines, lines top to bottom, words left to right, with a
tilted scan or photo straightened first.

One implementation serves the loader (PDF text layer, OCR) and the model's encoder, so the order the
model is trained on (synthetic scans are tilted up to 6 degrees) is the order it reads at inference.
Without the tilt correction a table row of a scan tilted by 2 degrees mixes with the next one: its
right-hand amounts sort above its own description.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from invoicegen.schema import BBox

MAX_SKEW = 0.1
"""Skew estimates are clamped to +-0.1 (about 6 degrees); larger tilts need deskewing, not sorting."""
_BLOCK = 512
"""Rows of the word-to-word comparison computed at once (bounds memory on pages of thousands of words)."""


def _right_neighbours(arr: np.ndarray) -> np.ndarray:
    """For each word, the index of the nearest word to its right on the same line (-1 if none): it
    starts at most 3 heights after the word's end and overlaps it vertically by half a height.
    Each word is the neighbour of at most one word (the closest)."""
    n = len(arr)
    heights = np.maximum(arr[:, 3] - arr[:, 1], 1e-3)
    best = np.full(n, -1)
    best_gap = np.full(n, np.inf)
    for s in range(0, n, _BLOCK):
        a = arr[s:s + _BLOCK]
        h = heights[s:s + _BLOCK, None]
        gap = arr[None, :, 0] - a[:, 2, None]
        overlap = np.minimum(a[:, 3, None], arr[None, :, 3]) - np.maximum(a[:, 1, None], arr[None, :, 1])
        ok = (gap >= -0.3 * h) & (gap <= 3 * h) & (overlap >= 0.5 * np.minimum(h, heights[None, :]))
        ok[np.arange(len(a)), np.arange(s, s + len(a))] = False
        gap = np.where(ok, gap, np.inf)
        j = gap.argmin(axis=1)
        g = gap[np.arange(len(a)), j]
        best[s:s + len(a)] = np.where(np.isfinite(g), j, -1)
        best_gap[s:s + len(a)] = g
    # a word claimed by several left neighbours stays with the closest one
    pairs = np.flatnonzero(best >= 0)
    pairs = pairs[np.argsort(best_gap[pairs], kind="stable")]
    _, first = np.unique(best[pairs], return_index=True)
    keep = np.zeros(n, dtype=bool)
    keep[pairs[first]] = True
    return np.where(keep, best, -1)


def estimate_skew(boxes: Sequence[BBox]) -> float:
    """Page tilt as a slope dy/dx (0 when it cannot tell).

    Words are chained to their nearest right neighbour on the same line; each chain long enough
    (3+ words, 8+ heights wide) gives a least-squares slope of its word centres; the median wins.
    Axis-aligned boxes of tilted words keep their centres, so this needs no pixels."""
    if len(boxes) < 3:
        return 0.0
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    nxt = _right_neighbours(arr)
    cx, cy = (arr[:, 0] + arr[:, 2]) / 2, (arr[:, 1] + arr[:, 3]) / 2
    heights = arr[:, 3] - arr[:, 1]
    has_left = np.zeros(len(arr), dtype=bool)
    has_left[nxt[nxt >= 0]] = True
    slopes: list[float] = []
    for start in np.flatnonzero(~has_left & (nxt >= 0)):
        chain = [int(start)]
        while nxt[chain[-1]] >= 0 and len(chain) <= len(arr):
            chain.append(int(nxt[chain[-1]]))
        xs, ys = cx[chain], cy[chain]
        if len(chain) < 3 or xs[-1] - xs[0] < 8 * heights[chain].mean():
            continue
        dx = xs - xs.mean()
        sxx = float(dx @ dx)
        if sxx > 0:
            slopes.append(float(dx @ (ys - ys.mean())) / sxx)
    if not slopes:
        return 0.0
    slopes.sort()
    return max(-MAX_SKEW, min(MAX_SKEW, slopes[len(slopes) // 2]))


def reading_order(boxes: Sequence[BBox], skew: float | None = None) -> list[int]:
    """Indices of ``boxes`` in reading order.

    A word joins a line when its vertical centre, straightened by ``skew`` (dy/dx; default:
    :func:`estimate_skew`), lies within half a height of the line's centre; this tolerates small
    baseline shifts (OCR boxes, mixed font sizes) without merging real lines. At 1 degree the two
    ends of an A4 line differ by 9 pt, more than half a line, so left and right columns would swap
    without the straightening."""
    if not boxes:
        return []
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if skew is None:
        skew = estimate_skew(boxes)
    centre = (arr[:, 1] + arr[:, 3]) / 2 - skew * (arr[:, 0] + arr[:, 2]) / 2
    heights = np.maximum(arr[:, 3] - arr[:, 1], 1e-3)
    lines: list[list[int]] = []
    line_c = line_h = 0.0
    for i in np.lexsort((arr[:, 0], centre)):
        c, h = centre[i], heights[i]
        if lines and abs(c - line_c) <= 0.5 * min(h, line_h):
            line = lines[-1]
            line.append(int(i))
            n = len(line)
            line_c += (c - line_c) / n
            line_h += (h - line_h) / n
        else:
            lines.append([int(i)])
            line_c, line_h = c, h
    return [i for line in lines for i in sorted(line, key=lambda j: arr[j, 0])]
