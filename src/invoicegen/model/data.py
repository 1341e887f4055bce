"""Factory datasets -> encoded pages for training and evaluation.

A dataset directory holds ``documents.jsonl`` (one ``schema.LabelledDocument`` per line) and
``manifest.json`` (document ids per split; splits are by layout so test layouts are unseen)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invoicegen.model.bio import group_roles, instance_ids, relabel_bio
from invoicegen.model.encode import Window, encode_page, normalize_box, page_pixels
from invoicegen.model.recipes import Recipe
from invoicegen.model.tokenizer import WordTokenizer
from invoicegen.reading import reading_order
from invoicegen.schema import (
    CELL_LABEL2ID,
    NER_LABEL2ID,
    TABLE_LABEL2ID,
    BBox,
    LabelledDocument,
    LabelledPage,
)

DOCUMENTS = "documents.jsonl"
MANIFEST = "manifest.json"


@dataclass
class ModelPage:
    """A page's words in model (reading) order, ready for windows; gold tags when known."""

    words: list[str]
    boxes: list[BBox]
    """Boxes in points, model order."""
    order: list[int]
    """Model position -> index in the source word list."""
    windows: list[Window]
    gold: dict[str, list[str]] | None = None
    doc_id: str = ""
    page: int = 0


def iter_documents(data_dir: str | Path) -> Iterator[LabelledDocument]:
    with open(Path(data_dir) / DOCUMENTS, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield LabelledDocument.model_validate_json(line)


def load_split_ids(data_dir: str | Path) -> dict[str, set[str]]:
    """Document ids per split from ``manifest.json`` (``{"splits": {"train": [...], ...}}``)."""
    manifest = json.loads((Path(data_dir) / MANIFEST).read_text())
    splits = manifest.get("splits", manifest)
    return {name: set(ids) for name, ids in splits.items() if isinstance(ids, list)}


def gold_roles(page: LabelledPage, order: Sequence[int]) -> dict[str, list[str]]:
    """The page's labels re-expressed for the model's word order: B-/begin roles go to the first
    word of each entity, row and cell instance *in reading order*."""
    ner = relabel_bio(page.ner, order)
    row_keys = [page.row[i] if page.table[i] in ("ROW_B", "ROW_I") and page.row[i] >= 0 else None
                for i in order]
    rows = group_roles(row_keys, "ROW_B", "ROW_I")
    table = ["HEADER" if page.table[i] == "HEADER" else r for i, r in zip(order, rows, strict=True)]
    cell_ids = instance_ids(page.cell, "CELL_B", "CELL_I")
    cell = group_roles([cell_ids[i] for i in order], "CELL_B", "CELL_I")
    return {"ner": ner, "table": table, "cell": cell}


def prepare_page(
    words: Sequence[str],
    boxes: Sequence[BBox],
    width: float,
    height: float,
    tokenizer: WordTokenizer,
    recipe: Recipe,
    *,
    gold: LabelledPage | None = None,
    image: object | None = None,
    order: Sequence[int] | None = None,
) -> ModelPage:
    """Order, tokenize and window one page. With ``gold``, windows carry label ids for training.
    ``order``: the words' reading order when the caller already has it (``document`` sorts every
    loaded page with the same ``reading_order``), so it is not estimated twice."""
    order = list(order) if order is not None else reading_order(boxes)
    o_words = [words[i] for i in order]
    o_boxes = [boxes[i] for i in order]
    pieces = tokenizer.encode_words(o_words)
    norm = [normalize_box(b, width, height) for b in o_boxes]
    tags = gold_roles(gold, order) if gold is not None else None
    label_ids: dict[str, Sequence[int]] | None = None
    if tags is not None:
        label_ids = {"ner": [NER_LABEL2ID[t] for t in tags["ner"]],
                     "table": [TABLE_LABEL2ID[t] for t in tags["table"]],
                     "cell": [CELL_LABEL2ID[t] for t in tags["cell"]]}
    pixels = page_pixels(image) if (recipe.visual_embed and image is not None) else None
    windows = encode_page(pieces, norm, cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id, labels=label_ids,
                          max_length=recipe.max_length, overlap=recipe.window_overlap, pixel_values=pixels)
    return ModelPage(o_words, o_boxes, list(order), windows, tags)


def prepare_labelled(doc: LabelledDocument, tokenizer: WordTokenizer, recipe: Recipe,
                     data_dir: Path | None = None) -> list[ModelPage]:
    """Encoded pages of a labelled document (page images loaded only for visual recipes)."""
    pages = []
    for page in doc.pages:
        image = None
        if recipe.visual_embed and page.image and data_dir is not None:
            from PIL import Image

            image = Image.open(data_dir / page.image)
        mp = prepare_page(page.words, page.bboxes, page.width, page.height, tokenizer, recipe, gold=page,
                          image=image)
        mp.doc_id, mp.page = doc.id, page.index
        pages.append(mp)
    return pages


def length_batches(windows: Sequence[Window], batch_size: int, rng: np.random.Generator) -> list[list[Window]]:
    """Batches of similar-length windows (less padding = faster CPU steps), in random order."""
    idx = rng.permutation(len(windows))
    # sort inside chunks of 50 batches: similar lengths together, still shuffled across the epoch
    chunk = batch_size * 50
    batches = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s:s + chunk], key=lambda i: len(windows[i].input_ids))
        batches += [[windows[i] for i in part[b:b + batch_size]] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches
