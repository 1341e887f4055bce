"""Tag sequences: constrained Viterbi for valid IOB2, and grouping word tags into entity instances.

Reading order is line by line, so an entity that spans lines beside another block (a two-line
address next to the invoice date) comes back interleaved. ``group_entities`` therefore lets an
``I-X`` word join the most recent open ``X`` instance nearby rather than demanding adjacency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from invoicegen.schema import NER_LABELS, OUTSIDE, BBox


def _allowed_transitions(labels: Sequence[str]) -> np.ndarray:
    """allowed[i, j]: tag j may follow tag i under strict IOB2."""
    n = len(labels)
    allowed = np.ones((n, n), dtype=bool)
    for j, tag in enumerate(labels):
        if tag.startswith("I-"):
            ent = tag[2:]
            for i, prev in enumerate(labels):
                allowed[i, j] = prev in (f"B-{ent}", f"I-{ent}")
    return allowed


_NER_ALLOWED = _allowed_transitions(NER_LABELS)


def constrained_viterbi(log_probs: np.ndarray, labels: Sequence[str] = NER_LABELS) -> list[int]:
    """Most probable tag sequence (sum of per-word log-probabilities) that is valid IOB2."""
    n, k = log_probs.shape
    if n == 0:
        return []
    allowed = _NER_ALLOWED if tuple(labels) == NER_LABELS else _allowed_transitions(labels)
    penalty = np.where(allowed, 0.0, -np.inf)
    start_ok = np.array([not t.startswith("I-") for t in labels])
    score = np.where(start_ok, log_probs[0], -np.inf)
    back = np.zeros((n, k), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + penalty
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + log_probs[t]
    path = [int(score.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


@dataclass
class Entity:
    """One entity instance: its type and the words (indices) it covers, in reading order."""

    type: str
    words: list[int] = field(default_factory=list)


def _joins(words: Sequence[BBox], b: BBox) -> bool:
    """May word box ``b`` continue an instance whose word boxes are ``words``? It must sit on the
    last word's line or the next one, and overlap the instance horizontally (or follow it closely):
    a wrapped IBAN or address line starts back at the left edge of the instance."""
    a = words[-1]
    h = max(a[3] - a[1], b[3] - b[1], 1e-6)
    same_line = abs((a[1] + a[3]) - (b[1] + b[3])) / 2 <= 0.6 * h
    next_line = -0.5 * h <= b[1] - a[3] <= 1.5 * h
    x0, x1 = min(w[0] for w in words), max(w[2] for w in words)
    return (same_line or next_line) and min(x1, b[2]) - max(x0, b[0]) > -2 * h


def _wraps(a: BBox, b: BBox) -> bool:
    """Does ``b`` start the line right below the line that ends with ``a`` (left of ``a``)?"""
    h = max(a[3] - a[1], b[3] - b[1], 1e-6)
    return -0.5 * h <= b[1] - a[3] <= 1.5 * h and b[0] < a[0]


def beside(a: BBox, b: BBox) -> bool:
    """Is ``b`` the next word after ``a`` on the same line, within about a word space?"""
    h = max(a[3] - a[1], b[3] - b[1], 1e-6)
    return _same_line(a, b) and -0.2 * h <= b[0] - a[2] <= 1.2 * h


def _span(tag: str) -> tuple[str, bool] | None:
    """(span type, continues a span?) of an entity tag (``I-X``) or a table role (``ROW_I``)."""
    if tag.startswith(("B-", "I-")):
        return tag[2:], tag[0] == "I"
    if tag in ("ROW_B", "ROW_I"):
        return "ROW", tag == "ROW_I"
    return None


def fill_islands(tags: Sequence[str], boxes: Sequence[BBox]) -> list[str]:
    """Entity tags or table roles (reading order) with one-word holes closed: a word tagged otherwise
    between a word of span X and a word that continues X (``I-X``, ``ROW_I``), all three side by side
    on one line, joins X. A small model drops single words out of a span ("DE [811] 907 980" with
    811 read as an address word, "Ergonomic [office] chair" with office outside the row); a value is
    almost never broken by exactly one foreign word within a word space."""
    out = list(tags)
    for i in range(1, len(tags) - 1):
        after, before, own = _span(tags[i + 1]), _span(out[i - 1]), _span(tags[i])
        if after is None or not after[1] or before is None or before[0] != after[0]:
            continue
        if own is not None and own[0] == after[0]:
            continue
        if beside(boxes[i - 1], boxes[i]) and beside(boxes[i], boxes[i + 1]):
            out[i] = tags[i + 1]
    return out


_PARTY_NAME_ADDRESS = {"SUPPLIER_NAME": "SUPPLIER_ADDRESS", "BUYER_NAME": "BUYER_ADDRESS"}


def whole_name_lines(tags: Sequence[str], boxes: Sequence[BBox]) -> list[str]:
    """Entity tags (reading order) where a party's name takes its text line: side-by-side words of
    the name and of the same party's address on one line all become the name when the address goes
    on below that line. A small model often starts the address inside the name line ("Royal
    [Uittenbosch]", "[Keltenie] NV" read as address words), while a party block prints its name on a
    line of its own above the address. A one-line address ("ACME GmbH, Main St 5, Springfield")
    does not go on below and is left alone."""
    out = list(tags)
    kind = [t[2:] if t.startswith(("B-", "I-")) else "" for t in tags]
    for name, address in _PARTY_NAME_ADDRESS.items():
        for run in _runs(boxes, [i for i, k in enumerate(kind) if k in (name, address)]):
            types = {kind[i] for i in run}
            if types != {name, address}:
                continue
            bottom = max(boxes[i][3] for i in run)
            below = next((k for k in range(run[-1] + 1, len(tags))
                          if kind[k] == address and boxes[k][3] - 0.5 * (boxes[k][3] - boxes[k][1]) >= bottom), None)
            if below is None:
                continue
            out[run[0]] = f"B-{name}"
            for i in run[1:]:
                out[i] = f"I-{name}"
            out[below] = f"B-{address}"
    return out


def _runs(boxes: Sequence[BBox], words: Sequence[int]) -> list[list[int]]:
    """``words`` (ascending reading-order positions) split into runs of consecutive words side by
    side on one line."""
    runs: list[list[int]] = []
    for i in words:
        if runs and runs[-1][-1] == i - 1 and beside(boxes[i - 1], boxes[i]):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def snap_row_starts(tags: Sequence[str], boxes: Sequence[BBox], ner: Sequence[str] | None = None) -> list[str]:
    """Table roles (reading order) repaired with the geometry of rows: row words on a line that is
    mostly header belong to the header; a row starts at the first row word of a text line and at
    most once per line; the page's first row line starts a row; and
    (given entity tags) a line that brings a second ITEM_AMOUNT into a row starts a new one. A small
    model often starts a row at the description when an unfamiliar column (a quantity, a SKU) comes
    first, or misses the start of a row whose neighbour it got right. Also, a word left out of the
    table that continues the row's item entity beside it ("(pack of [12)]") joins the row."""
    out = list(tags)
    if ner is not None:
        for i in range(1, len(out)):
            if (out[i] not in ("ROW_B", "ROW_I") and out[i - 1] in ("ROW_B", "ROW_I") and ner[i].startswith("I-ITEM_")
                    and ner[i - 1][2:] == ner[i][2:] and beside(boxes[i - 1], boxes[i])):
                out[i] = "ROW_I"
    row_open = row_has_amount = False
    for line in _lines(boxes):
        words = [i for i in line if out[i] in ("ROW_B", "ROW_I")]
        header = [i for i in line if out[i] == "HEADER"]
        if len(header) > len(words):  # "Unit [price]" on the header line: a header word, not a row
            for i in words:
                out[i] = "HEADER"
            continue
        if not words:
            continue
        amount = ner is not None and any(ner[i].endswith("-ITEM_AMOUNT") for i in words)
        if any(out[i] == "ROW_B" for i in words) or not row_open or (amount and row_has_amount):
            for i in words:
                out[i] = "ROW_I"
            out[words[0]] = "ROW_B"
            row_open, row_has_amount = True, False
        row_has_amount = row_has_amount or amount
    return out


def _lines(boxes: Sequence[BBox]) -> list[list[int]]:
    """Consecutive words (reading order) split into text lines: a line ends where the next word is
    not beside it on the same line."""
    lines: list[list[int]] = []
    for i, b in enumerate(boxes):
        if lines and _same_line(boxes[i - 1], b) and b[0] >= boxes[i - 1][0]:
            lines[-1].append(i)
        else:
            lines.append([i])
    return lines


def _same_line(a: BBox, b: BBox) -> bool:
    h = max(a[3] - a[1], b[3] - b[1], 1e-6)
    return abs((a[1] + a[3]) - (b[1] + b[3])) / 2 <= 0.5 * h


def group_entities(tags: Sequence[str], boxes: Sequence[BBox]) -> list[Entity]:
    """Entity instances from word tags in reading order. ``B-X`` opens an instance, unless it directly
    follows an ``X`` word on the same line (then it continues it); ``I-X`` joins the nearest open ``X``
    instance close by, else opens one. This repairs the broken IOB2 a small model produces."""
    entities: list[Entity] = []
    open_by_type: dict[str, list[Entity]] = {}
    last_of_word: dict[int, Entity] = {}
    for i, tag in enumerate(tags):
        if tag == OUTSIDE:
            continue
        prefix, ent = tag[0], tag[2:]
        target = None
        prev = last_of_word.get(i - 1)
        if prev is not None and prev.type == ent and beside(boxes[i - 1], boxes[i]):
            # "€" + "1.234,00" or "20." + "Oktober" + "2020" tagged B, B: one value, not two
            target = prev
        elif prefix == "I" and prev is not None and prev.type == ent and _wraps(boxes[i - 1], boxes[i]):
            target = prev  # the value goes on at the start of the next line ("GB 256 3663 / 44")
        elif prefix == "I":
            for cand in reversed(open_by_type.get(ent, [])):
                if _joins([boxes[w] for w in cand.words], boxes[i]):
                    target = cand
                    break
        if target is None:
            target = Entity(ent)
            entities.append(target)
            open_by_type.setdefault(ent, []).append(target)
        target.words.append(i)
        last_of_word[i] = target
    return entities


def relabel_bio(tags: Sequence[str], order: Sequence[int]) -> list[str]:
    """Re-tag a page whose words are reordered by ``order`` (new position -> old index) so that the
    first word of each original entity instance, in the new order, carries ``B-``."""
    instance = [-1] * len(tags)
    current = -1
    for i, tag in enumerate(tags):
        if tag == OUTSIDE:
            continue
        if tag.startswith("B-") or i == 0 or tags[i - 1] == OUTSIDE or tags[i - 1][2:] != tag[2:]:
            current += 1
        instance[i] = current
    seen: set[int] = set()
    out = []
    for old in order:
        tag = tags[old]
        if tag == OUTSIDE:
            out.append(OUTSIDE)
            continue
        prefix = "I" if instance[old] in seen else "B"
        seen.add(instance[old])
        out.append(f"{prefix}-{tag[2:]}")
    return out


def instance_ids(roles: Sequence[str], begin: str, inside: str) -> list[int | None]:
    """Instance number of each word from begin/inside roles in the source order (None elsewhere);
    an ``inside`` word with nothing open starts an instance."""
    ids: list[int | None] = []
    current = -1
    for i, role in enumerate(roles):
        if role == begin or (role == inside and (i == 0 or roles[i - 1] not in (begin, inside))):
            current += 1
        ids.append(current if role in (begin, inside) else None)
    return ids


def group_roles(keys: Sequence[object | None], begin: str, inside: str, outside: str = "O") -> list[str]:
    """Begin/inside roles from group keys in the model's word order: the first word of each group
    (a row or a cell instance) is ``begin``; a None key is ``outside``."""
    seen: set[object] = set()
    out = []
    for key in keys:
        if key is None:
            out.append(outside)
        elif key in seen:
            out.append(inside)
        else:
            seen.add(key)
            out.append(begin)
    return out
