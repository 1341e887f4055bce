"""Generate a labelled dataset: PDFs, page PNGs, ``documents.jsonl``, ``manifest.json``, ``stats.json``.

Every document is drawn from its own RNG seeded by ``(seed, index)``, so the output does not depend
on the number of workers or on the order in which they finish: same seed -> same bytes.
The train/val/test split is **by layout** (test layouts never appear in training), fixed by
``split_seed`` (independent of ``seed``, so datasets generated with different seeds share the split).
With ``mix`` > 0 a share of the documents is drawn on *composed* layouts (new structures made of the
training layouts' blocks, never equal to a val/test layout); they all belong to the train split.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from invoicegen.schema import ENTITIES, LabelledDocument, field_key
from invoicegen.synth.layouts import (
    LAYOUT_GROUPS,
    LAYOUTS,
    MIX_PREFIX,
    Layout,
    compose_layout,
    kind_groups,
    layout_by_id,
    layouts_for_kind,
)
from invoicegen.synth.locales import KINDS, LOCALES, choose_locale

DEFAULT_SPLIT_SEED = 20240101
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1


def split_layouts(split_seed: int = DEFAULT_SPLIT_SEED) -> dict[str, str]:
    """layout id -> "train" | "val" | "test"; each layout group (``LAYOUT_GROUPS``) split apart, so that
    adding a group leaves the split of the others as it was."""
    out: dict[str, str] = {}
    for group in LAYOUT_GROUPS.values():
        ids = sorted(group)
        random.Random(f"split:{split_seed}:{len(ids)}").shuffle(ids)
        n_test = max(1, round(TEST_FRACTION * len(ids)))
        n_val = max(1, round(VAL_FRACTION * len(ids)))
        for k, lid in enumerate(ids):
            out[lid] = "test" if k < n_test else ("val" if k < n_test + n_val else "train")
    return out


def split_of(layout_id: str, splits: dict[str, str]) -> str:
    """The split of a document's layout; composed layouts are always training layouts."""
    return "train" if layout_id.startswith(MIX_PREFIX) else splits[layout_id]


@dataclass
class GenConfig:
    out: Path
    seed: int = 0
    kinds: list[str] = field(default_factory=lambda: list(KINDS))
    locales: list[str] = field(default_factory=lambda: list(LOCALES))
    layouts: list[str] | None = None
    dpi: int = 150
    augment: float = 0.0
    ocr: str | None = None
    """Take the training words of augmented pages from this OCR engine (invoicegen.ocr), if any."""
    preview: int = 0
    verify: bool = False
    png_compress: int = 3
    mix: float = 0.0
    """Share of documents drawn on composed training layouts."""
    split_seed: int = DEFAULT_SPLIT_SEED


def _printed_fields(pages) -> tuple[set[str], dict[str, str]]:
    """Entities that appear on the pages and the text of each entity's first instance."""
    present: set[str] = set()
    first: dict[str, list[str]] = {}
    done: set[str] = set()
    for p in pages:
        for word, tag in zip(p.words, p.ner, strict=True):
            if tag == "O":
                continue
            ent = tag[2:]
            present.add(ent)
            if tag.startswith("B-"):
                if ent in first:
                    done.add(ent)
                else:
                    first[ent] = [word]
            elif ent in first and ent not in done:
                first[ent].append(word)
    return present, {field_key(k): " ".join(v) for k, v in first.items()}


def _clean_record(record: dict, present: set[str], printed: dict[str, str]) -> dict:
    """Ground truth of what the page shows: fields and columns not printed become null."""
    from invoicegen.synth.layouts import COLUMN_ENTITY

    for ent in ENTITIES:
        key = field_key(ent)
        if key in record and ent not in present:
            record[key] = None
    for col, ent in COLUMN_ENTITY.items():
        if ent not in present:
            for item in record["line_items"]:
                item[col] = None
    record["printed"] = {k: v for k, v in printed.items() if not k.startswith("item_")}
    return record


def sample_document(seed: int, index: int, *, kinds=None, locales=None, layouts=None, kind: str | None = None,
                    locale: str | None = None, layout: str | None = None, n_items: int | None = None,
                    mix: float = 0.0, split_seed: int = DEFAULT_SPLIT_SEED):
    """Draw and render document ``index`` of seed ``seed``: (record, fmt, rendered, rng).

    ``kind`` / ``locale`` / ``layout`` force a choice (tests, benchmarks); otherwise they are drawn
    from ``kinds`` / ``locales`` / ``layouts`` (with probability ``mix``, a composed training layout
    instead). A document whose pagination does not converge is
    replaced by another draw (attempt 1, 2, ...), deterministically."""
    from invoicegen.synth.records import choose_kind, get_faker, make_record
    from invoicegen.synth.render import render_document

    last_error = None
    for attempt in range(4):
        rng = random.Random(f"{seed}:{index}:{attempt}")
        allowed = [locale] if locale else list(locales or LOCALES)
        k = kind or choose_kind(rng, kinds or list(KINDS), allowed)
        loc = locale or choose_locale(rng, k, allowed)
        pool = [lid for lid in layouts_for_kind(k) if layouts is None or lid in layouts]
        if layout is None and not pool:
            raise ValueError(f"no layout for kind {k}")
        if layout is not None and layout not in layouts_for_kind(k) and (
                layout in LAYOUTS or layout_by_id(layout).template != LAYOUTS[layouts_for_kind(k)[0]].template):
            raise ValueError(f"layout {layout} does not draw kind {k}")
        lay = layout or rng.choice(pool)
        if layout is None and mix > 0 and rng.random() < mix:
            lay = _composed(rng, k, split_seed)
        fake = get_faker(loc)
        fake.seed_instance(rng.getrandbits(63))
        rec, fmt = make_record(rng, fake, k, loc, n_items=n_items)
        try:
            return rec, fmt, render_document(rec, fmt, lay, rng, f"s{seed}-{index:06d}"), rng
        except RuntimeError as exc:  # pagination that does not converge: draw another document
            last_error = exc
    raise RuntimeError(f"document {index}: {last_error}")


def _composed(rng: random.Random, kind: str, split_seed: int) -> str:
    return compose_layout(rng, *_layout_pools(kind_groups(kind), split_seed)).id


@lru_cache(maxsize=8)
def _layout_pools(groups: tuple[str, ...], split_seed: int) -> tuple[list[Layout], list[Layout]]:
    """(training layouts, held-out layouts) of a kind's layout groups: what composed layouts are made
    of and avoid."""
    splits = split_layouts(split_seed)
    family = [lid for group in groups for lid in LAYOUT_GROUPS[group]]
    return ([LAYOUTS[lid] for lid in family if splits[lid] == "train"],
            [LAYOUTS[lid] for lid in family if splits[lid] != "train"])


def generate_one(index: int, cfg: GenConfig) -> dict:
    """Render document ``index`` and write its files; returns its JSONL line and stats."""
    from invoicegen.synth.render import labelled_pages, png_bytes, rasterize, verify_words

    rec, fmt, rendered, rng = sample_document(cfg.seed, index, kinds=cfg.kinds, locales=cfg.locales,
                                              layouts=cfg.layouts, mix=cfg.mix, split_seed=cfg.split_seed)
    kind, locale, layout, doc_id = rec.kind, rec.locale, rendered.layout, f"s{cfg.seed}-{index:06d}"
    out = cfg.out
    pdf_rel = f"pdf/{doc_id}.pdf"
    (out / pdf_rel).write_bytes(rendered.pdf)
    images = rasterize(rendered.pdf, cfg.dpi)
    pages = rendered.pages
    augmented = False
    aug_info: dict = {}
    if cfg.augment > 0 and rng.random() < cfg.augment:
        from invoicegen.synth.augment import augment_document

        images, pages, aug_info = augment_document(images, pages, cfg.dpi, rng, kind=kind, ocr=cfg.ocr)
        augmented = True
    rels = []
    for k, img in enumerate(images):
        rel = f"png/{doc_id}_p{k}.png"
        (out / rel).write_bytes(png_bytes(img, cfg.png_compress))
        rels.append(rel)
    lpages = labelled_pages(pages, rels, cfg.dpi)
    mismatches = verify_words(rendered.pdf, rendered.pages) if cfg.verify else []
    present, printed = _printed_fields(lpages)
    record = _clean_record(rec.to_json(), present, printed)
    if fmt.currency_style != "none":  # every amount carries the currency: it is on the page
        record["currency"] = rec.currency
    record["format"] = {"date_pattern": fmt.date_pattern, "group": fmt.group, "decimal": fmt.decimal,
                        "currency_style": fmt.currency_style, "currency_symbol": fmt.symbol}
    record["augmentation"] = aug_info or None
    doc = LabelledDocument(id=doc_id, kind=kind, locale=locale, layout=layout, pdf=pdf_rel, augmented=augmented,
                           pages=lpages, record=record)
    if index < cfg.preview:
        from invoicegen.synth.preview import draw_preview

        for k, img in enumerate(images):
            draw_preview(img, lpages[k], cfg.dpi).save(out / "preview" / f"{doc_id}_p{k}.png")
    stats = {
        "kind": kind, "locale": locale, "layout": layout, "pages": len(lpages), "augmented": augmented,
        "words": sum(len(p.words) for p in lpages), "mismatches": len(mismatches),
        "approx_words": sum(wb.approx for p in rendered.pages for wb in p.words),
        "ner": Counter(t[2:] for p in lpages for t in p.ner if t.startswith("B-")),
        "table": Counter(t for p in lpages for t in p.table), "cell": Counter(t for p in lpages for t in p.cell),
        "rows": len(rec.items), "chunks": len(rendered.chunks),
    }
    return {"index": index, "id": doc_id, "layout": layout, "line": doc.model_dump_json(), "stats": stats}


_CFG: GenConfig | None = None


def _init_worker(cfg: GenConfig) -> None:
    global _CFG
    _CFG = cfg


def _work(index: int) -> dict:
    assert _CFG is not None
    return generate_one(index, _CFG)


def generate(n: int, cfg: GenConfig, workers: int = 1, progress: bool = True) -> dict:
    """Generate ``n`` documents into ``cfg.out``; returns the stats dictionary."""
    out = cfg.out
    for sub in ("pdf", "png") + (("preview",) if cfg.preview else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    splits = split_layouts(cfg.split_seed)
    results_iter: Iterable[dict]
    if workers > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(cfg,), maxtasksperchild=200)
        results_iter = pool.imap(_work, range(n), chunksize=1)
    else:
        pool = None
        _init_worker(cfg)
        results_iter = (_work(i) for i in range(n))
    if progress:
        from tqdm import tqdm

        results_iter = tqdm(results_iter, total=n, desc="generate", unit="doc", smoothing=0.1)
    agg: dict = {"documents": 0, "pages": 0, "words": 0, "mismatches": 0, "approx_words": 0, "augmented": 0,
                 "multi_page": 0}
    counters: dict[str, Counter] = {k: Counter() for k in ("kind", "locale", "layout", "split", "ner", "table",
                                                          "cell")}
    manifest_docs: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    try:
        with open(out / "documents.jsonl", "w", encoding="utf-8") as fh:
            for res in results_iter:
                fh.write(res["line"] + "\n")
                st = res["stats"]
                split = split_of(res["layout"], splits)
                manifest_docs[split].append(res["id"])
                agg["documents"] += 1
                agg["pages"] += st["pages"]
                agg["words"] += st["words"]
                agg["mismatches"] += st["mismatches"]
                agg["approx_words"] += st["approx_words"]
                agg["augmented"] += int(st["augmented"])
                agg["multi_page"] += int(st["pages"] > 1)
                for key in ("kind", "locale"):
                    counters[key][st[key]] += 1
                counters["layout"][MIX_PREFIX if res["layout"].startswith(MIX_PREFIX) else res["layout"]] += 1
                counters["split"][split] += 1
                for key in ("ner", "table", "cell"):
                    counters[key].update(st[key])
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    manifest = {
        "seed": cfg.seed, "split_seed": cfg.split_seed, "n": n, "dpi": cfg.dpi, "augment": cfg.augment,
        "mix": cfg.mix,
        "kinds": cfg.kinds, "locales": cfg.locales, "documents_file": "documents.jsonl",
        "split_by": "layout",
        "layouts": {split: sorted(lid for lid, s in splits.items() if s == split) for split in ("train", "val", "test")},
        "splits": manifest_docs,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    stats = {**agg, **{k: dict(sorted(v.items())) for k, v in counters.items()}}
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    return stats
