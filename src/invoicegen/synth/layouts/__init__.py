"""Layouts: composable Jinja2 blocks + a per-layout structure + per-document random styling.

A layout id fixes the *structure* of a page (where the header, supplier, key-value block, parties,
bank details and totals go, how key-values and the item table are drawn, which columns exist). Every
document then draws its own *style* (fonts from the installed Debian fonts, sizes, colours, logo,
captions, optional fields) from its RNG. The templates (``blocks.html.j2``, ``document.html.j2``,
``receipt.html.j2``, ``style.css.j2``) only arrange blocks; every printed word is produced here by
:func:`w` / :func:`e`; entities are marked with ``data-e`` spans so that ``render.py`` reads exact
per-word labels from the layout tree (words are measured inside each text box from its glyphs).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape

from invoicegen.synth.locales import LOCALES, captions, has_caption, tax_code
from invoicegen.synth.records import Fmt, Record, group4

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Layout:
    id: str
    template: str
    header: str
    """classic | title_left | centered | band | din | minimal | sidebar (receipts: centered | left)."""
    meta: str
    """header_right | under_title | left_column | parties_right | grid_row | below_table | end."""
    kv: str
    """inline | table | stacked | grid."""
    parties: str
    """side | stacked."""
    table: str
    """grid | zebra | lines | plain | header_fill | boxed."""
    cols: str
    totals: str
    """One of ``TOTALS_PLACEMENTS``."""
    bank: str
    """footer | below_totals | sidebar | left_of_totals."""
    footer: bool
    meta_boxed: bool = False


_D = "document"
TOTALS_PLACEMENTS = ("right", "right_box", "bar", "left", "big")
"""Where a document prints its totals block: a one-line style choice (``style.css.j2``), so composed
layouts draw it from all of these rather than from the training layouts only."""
_SPECS = [
    # id                  header       meta            kv         parties    table          cols              totals      bank              footer boxed
    ("classic-box",       "classic",   "header_right", "table",   "side",    "lines",       "std_sku",        "right",    "below_totals",   False, True),
    ("classic-grid",      "classic",   "grid_row",     "grid",    "side",    "grid",        "eu",             "right_box", "footer",        True,  False),
    ("classic-zebra",     "classic",   "header_right", "inline",  "side",    "zebra",       "full",           "right",    "left_of_totals", False, False),
    ("classic-stacked",   "classic",   "parties_right", "stacked", "side",   "plain",       "std",            "big",      "footer",         True,  False),
    ("classic-left",      "classic",   "left_column",  "table",   "side",    "header_fill", "eu_sku",         "right",    "below_totals",   False, False),
    ("classic-below",     "classic",   "below_table",  "inline",  "stacked", "lines",       "qty_first",      "right",    "footer",         True,  False),
    ("classic-boxed",     "classic",   "header_right", "table",   "side",    "boxed",       "full",           "right_box", "footer",        True,  True),
    ("titleleft-inline",  "title_left", "under_title", "inline",  "side",    "lines",       "std",            "right",    "below_totals",   False, False),
    ("titleleft-table",   "title_left", "header_right", "table",  "side",    "grid",        "full",           "right_box", "footer",        True,  False),
    ("titleleft-zebra",   "title_left", "grid_row",    "grid",    "stacked", "zebra",       "tax_col",        "right",    "left_of_totals", False, False),
    ("titleleft-boxed",   "title_left", "parties_right", "table", "side",    "boxed",       "price_first",    "big",      "footer",         True,  True),
    ("titleleft-stacked", "title_left", "left_column", "stacked", "side",    "header_fill", "price_first",    "right",    "footer",         False, False),
    ("centered-grid",     "centered",  "under_title",  "grid",    "side",    "grid",        "eu",             "right",    "footer",         True,  False),
    ("centered-lines",    "centered",  "parties_right", "table",  "side",    "lines",       "std_sku",        "bar",      "below_totals",   False, False),
    ("centered-plain",    "centered",  "left_column",  "stacked", "side",    "plain",       "qty_unit_first", "right",    "footer",         True,  False),
    ("centered-zebra",    "centered",  "below_table",  "inline",  "stacked", "zebra",       "desc_sku",       "right_box", "below_totals",  False, False),
    ("centered-boxed",    "centered",  "parties_right", "inline", "side",    "boxed",       "eu_sku",         "big",      "footer",         True,  True),
    ("band-inline",       "band",      "header_right", "inline",  "side",    "header_fill", "std",            "right",    "footer",         True,  False),
    ("band-grid",         "band",      "grid_row",     "grid",    "side",    "lines",       "full",           "big",      "below_totals",   False, False),
    ("band-table",        "band",      "parties_right", "table",  "side",    "zebra",       "eu_sku",         "right_box", "left_of_totals", False, False),
    ("band-stacked",      "band",      "under_title",  "stacked", "stacked", "plain",       "tax_col",        "bar",      "footer",         True,  False),
    ("band-left",         "band",      "left_column",  "table",   "side",    "grid",        "qty_unit_first", "left",     "below_totals",   True,  False),
    ("din-table",         "din",       "header_right", "table",   "side",    "lines",       "eu",             "right",    "footer",         True,  False),
    ("din-inline",        "din",       "header_right", "inline",  "side",    "grid",        "full",           "right",    "footer",         True,  True),
    ("din-grid",          "din",       "grid_row",     "grid",    "side",    "zebra",       "eu_sku",         "right_box", "below_totals",  False, False),
    ("din-under",         "din",       "under_title",  "inline",  "side",    "plain",       "desc_sku",       "big",      "footer",         True,  False),
    ("minimal-right",     "minimal",   "header_right", "table",   "side",    "plain",       "std",            "right",    "footer",         True,  False),
    ("minimal-grid",      "minimal",   "grid_row",     "grid",    "stacked", "lines",       "qty_first",      "left",     "footer",         True,  False),
    ("minimal-below",     "minimal",   "below_table",  "stacked", "side",    "zebra",       "std_sku",        "right",    "footer",         True,  False),
    ("minimal-end",       "minimal",   "end",          "grid",    "side",    "grid",        "tax_col",        "bar",      "footer",         True,  False),
    ("sidebar-inline",    "sidebar",   "header_right", "inline",  "stacked", "lines",       "std",            "right",    "sidebar",        False, False),
    ("sidebar-left",      "sidebar",   "left_column",  "stacked", "stacked", "zebra",       "eu",             "right_box", "sidebar",       False, False),
    ("sidebar-grid",      "sidebar",   "grid_row",     "grid",    "side",    "header_fill", "qty_first",      "big",      "below_totals",   False, False),
    ("sidebar-table",     "sidebar",   "parties_right", "table",  "side",    "plain",       "desc_sku",       "right",    "sidebar",        True,  True),
]
# Broadcast ad-buy orders / contracts / invoices: document pages around a wide schedule of spots.
_BROADCAST_SPECS = [
    ("tv-contract-grid",  "classic",   "header_right", "table",   "side",    "grid",        "bc_full",        "right",    "footer",         False, True),
    ("tv-order-lines",    "title_left", "under_title", "stacked", "stacked", "lines",       "bc_program_first", "right_box", "below_totals", True, False),
    ("tv-invoice-plain",  "minimal",   "grid_row",     "grid",    "side",    "plain",       "bc_week",        "bar",      "footer",         True,  False),
    ("tv-band-zebra",     "band",      "parties_right", "inline", "side",    "zebra",       "bc_compact",     "big",      "left_of_totals", False, False),
    ("tv-centered-boxed", "centered",  "left_column",  "table",   "side",    "boxed",       "bc_full",        "right",    "footer",         True,  False),
]
_RECEIPT_SPECS = [
    ("pos-mono-center",   "centered",  "inline",  "two_line",              "plain"),
    ("pos-sans-left",     "left",      "table",   "qty_desc_amount",       "plain"),
    ("pos-columns",       "centered",  "stacked", "desc_qty_price_amount", "lines"),
    ("pos-compact",       "left",      "inline",  "two_line",              "plain"),
]
# Till receipts with a tax-code column (Malaysian GST receipts: "SR" / "ZR" per item).
_TILL_SPECS = [
    ("pos-till-gst",      "left",      "table",   "two_line_code",              "plain"),
    ("pos-till-wide",     "centered",  "inline",  "desc_qty_price_amount_code", "lines"),
    ("pos-till-stacked",  "left",      "stacked", "qty_desc_amount_code",       "plain"),
]
LAYOUTS: dict[str, Layout] = {
    s[0]: Layout(s[0], _D, s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9], s[10])
    for s in _SPECS + _BROADCAST_SPECS
}
LAYOUTS.update({
    s[0]: Layout(s[0], "receipt", s[1], "header_right", s[2], "side", s[4], s[3], "right", "none", False)
    for s in _RECEIPT_SPECS + _TILL_SPECS
})
RECEIPT_LAYOUTS = tuple(s[0] for s in _RECEIPT_SPECS)
DOCUMENT_LAYOUTS = tuple(s[0] for s in _SPECS)
TILL_LAYOUTS = tuple(s[0] for s in _TILL_SPECS)
BROADCAST_LAYOUTS = tuple(s[0] for s in _BROADCAST_SPECS)

LAYOUT_GROUPS: dict[str, tuple[str, ...]] = {
    "document": DOCUMENT_LAYOUTS, "receipt": RECEIPT_LAYOUTS, "till": TILL_LAYOUTS, "broadcast": BROADCAST_LAYOUTS,
}
"""Layouts split into train/val/test group by group (a group added later leaves the others' split as it was)."""
_KIND_GROUPS: dict[str, tuple[str, ...]] = {"receipt": ("receipt", "till"), "broadcast_order": ("broadcast",)}


def kind_groups(kind: str) -> tuple[str, ...]:
    """The layout groups a kind is drawn on (every other kind: the document layouts)."""
    return _KIND_GROUPS.get(kind, ("document",))


def layouts_for_kind(kind: str) -> tuple[str, ...]:
    return tuple(lid for group in kind_groups(kind) for lid in LAYOUT_GROUPS[group])

MIX_PREFIX = "mix:"
"""Composed layouts are named by their structure: ``mix:<header>,<meta>,...`` (see :func:`compose_layout`)."""
_STRUCTURE = ("template", "header", "meta", "kv", "parties", "table", "cols", "totals", "bank", "footer", "meta_boxed")


def _structure(layout: Layout) -> tuple:
    return tuple(getattr(layout, f) for f in _STRUCTURE)


def layout_by_id(layout_id: str) -> Layout:
    """A named layout, or a composed one rebuilt from the structure its id spells."""
    if layout_id in LAYOUTS:
        return LAYOUTS[layout_id]
    if not layout_id.startswith(MIX_PREFIX):
        raise KeyError(f"unknown layout {layout_id!r}")
    parts = layout_id[len(MIX_PREFIX):].split(",")
    if len(parts) != len(_STRUCTURE):
        raise KeyError(f"malformed composed layout id {layout_id!r}")
    values: list[Any] = [p == "1" if f in ("footer", "meta_boxed") else p for f, p in zip(_STRUCTURE, parts, strict=True)]
    return Layout(layout_id, *values)


def compose_layout(rng: random.Random, bases: Sequence[Layout], avoid: Sequence[Layout] = ()) -> Layout:
    """A new structure made of the ``bases``' building blocks, so training sees far more page
    structures than there are named layouts. Header, meta placement and bank placement go together
    (the templates couple them), every other block is drawn on its own (the totals placement from
    all of ``TOTALS_PLACEMENTS``); a structure equal to one of ``avoid`` (held-out layouts) is never
    returned."""
    banned = {_structure(a) for a in avoid}
    for _ in range(100):
        anchor = rng.choice(bases)
        values = {f: getattr(rng.choice(bases), f) for f in _STRUCTURE}
        values.update(template=anchor.template, header=anchor.header, meta=anchor.meta, bank=anchor.bank)
        if anchor.template != "receipt":
            values["totals"] = rng.choice(TOTALS_PLACEMENTS)
        if anchor.template == "receipt":  # receipt templates take only header, kv, table and columns
            values.update(parties=anchor.parties, totals=anchor.totals, footer=anchor.footer,
                          meta_boxed=anchor.meta_boxed)
        structure = tuple(values[f] for f in _STRUCTURE)
        if structure not in banned:
            spelled = ",".join(("1" if v else "0") if isinstance(v, bool) else str(v) for v in structure)
            return Layout(MIX_PREFIX + spelled, *structure)
    raise ValueError("no new structure can be composed from these layouts")


COLUMNS: dict[str, tuple[str, ...]] = {
    "full": ("pos", "sku", "description", "quantity", "unit", "unit_price", "tax_rate", "amount"),
    "std": ("description", "quantity", "unit_price", "amount"),
    "std_sku": ("sku", "description", "quantity", "unit_price", "amount"),
    "eu": ("pos", "description", "quantity", "unit", "unit_price", "tax_rate", "amount"),
    "eu_sku": ("pos", "sku", "description", "quantity", "unit", "unit_price", "amount"),
    "qty_first": ("quantity", "description", "unit_price", "amount"),
    "qty_unit_first": ("quantity", "unit", "description", "unit_price", "tax_rate", "amount"),
    "desc_sku": ("description", "quantity", "unit", "unit_price", "amount"),
    "tax_col": ("description", "quantity", "unit_price", "tax_rate", "amount"),
    "price_first": ("pos", "description", "unit_price", "quantity", "amount"),
    "two_line": ("description", "quantity", "unit_price", "amount"),
    "qty_desc_amount": ("quantity", "description", "amount"),
    "desc_qty_price_amount": ("description", "quantity", "unit_price", "amount"),
    "two_line_code": ("description", "quantity", "unit_price", "amount", "tax_code"),
    "desc_qty_price_amount_code": ("description", "quantity", "unit_price", "amount", "tax_code"),
    "qty_desc_amount_code": ("quantity", "description", "amount", "tax_code"),
    "bc_full": ("pos", "start_date", "end_date", "days", "time", "description", "length", "quantity", "unit_price",
                "amount"),
    "bc_program_first": ("pos", "description", "time", "days", "length", "start_date", "end_date", "unit_price",
                         "quantity", "amount"),
    "bc_week": ("pos", "days", "time", "description", "length", "unit_price", "quantity", "amount"),
    "bc_compact": ("pos", "description", "start_date", "end_date", "length", "quantity", "unit_price", "amount"),
}
SCHEDULE_COLUMNS = ("start_date", "end_date", "days", "time", "length")
"""Broadcast schedule columns beside the line-item ones (cells without an entity)."""
COLUMN_ENTITY = {"sku": "ITEM_SKU", "description": "ITEM_DESCRIPTION", "quantity": "ITEM_QUANTITY",
                 "unit": "ITEM_UNIT", "unit_price": "ITEM_UNIT_PRICE", "tax_rate": "ITEM_TAX_RATE",
                 "amount": "ITEM_AMOUNT"}

FONTS = {
    "sans": ("Liberation Sans", "Arimo", "DejaVu Sans", "Noto Sans", "Open Sans", "Roboto", "Roboto Condensed",
             "FreeSans", "Open Sans Condensed", "Noto Sans Display"),
    "serif": ("Liberation Serif", "Tinos", "DejaVu Serif", "Noto Serif", "FreeSerif"),
    "mono": ("Liberation Mono", "Cousine", "DejaVu Sans Mono", "FreeMono"),
}
PALETTE = ("#1f4e79", "#2e75b6", "#c00000", "#7030a0", "#00796b", "#37474f", "#e65100", "#2e7d32", "#ad1457",
           "#455a64", "#283593", "#6d4c41", "#000000", "#0097a7", "#8d6e63", "#5d4037", "#1565c0", "#b71c1c")


# ---------------------------------------------------------------------------------------------
# Word and entity markup.
# ---------------------------------------------------------------------------------------------


def w(text: str) -> Markup:
    """Plain words (whitespace normalised); ``render.py`` measures each word inside the text box."""
    return Markup(" ").join(escape(t) for t in str(text).split())


def e(text: str, entity: str | None) -> Markup:
    """An entity instance: its words inside one ``data-e`` span (lines kept with ``<br>``)."""
    inner = Markup("<br>").join(w(line) for line in str(text).split("\n") if line.strip())
    if not entity:
        return inner
    return Markup(f'<span data-e="{entity}">') + inner + Markup("</span>")


def _ent(prefix: str | None, field: str) -> str | None:
    """``SUPPLIER_NAME`` from ("SUPPLIER", "NAME"); None for a party outside the schema (no prefix)."""
    return f"{prefix}_{field}" if prefix else None


def segs(template: str, **parts) -> Markup:
    """A caption template with placeholders (Markup or text); spacing is the template's own, so
    "{tax} ({rate})" prints "VAT (20%)" and the reader sees the word "(20%)"."""
    out = []
    for tok in re.split(r"(\{\w+\})", re.sub(r"\s+", " ", template.strip())):
        if tok.startswith("{") and tok[1:-1] in parts:
            val = parts[tok[1:-1]]
            out.append(val if isinstance(val, Markup) else escape(val))
        else:
            out.append(escape(tok))
    return Markup("").join(out)


# ---------------------------------------------------------------------------------------------
# Styling.
# ---------------------------------------------------------------------------------------------


def random_style(rng: random.Random, layout: Layout, locale: str) -> dict[str, Any]:
    receipt = layout.template == "receipt"
    family = rng.choices(["sans", "serif", "mono"], weights=[0.72, 0.22, 0.06])[0]
    if receipt:
        family = rng.choices(["mono", "sans"], weights=[0.7, 0.3])[0]
    font = rng.choice(FONTS[family])
    head_font = font if rng.random() < 0.6 else rng.choice(FONTS["sans"] + FONTS["serif"])
    accent = rng.choice(PALETTE)
    accent2 = rng.choice(PALETTE)
    dark = rng.random() < 0.5
    letter = locale == "en_US" and rng.random() < 0.85
    s: dict[str, Any] = {
        "page_w": 215.9 if letter else 210, "page_h": 279.4 if letter else 297,
        "m_top": rng.randint(10, 22), "m_side": rng.randint(12, 24), "m_bottom": rng.randint(12, 22),
        "font": font, "head_font": head_font, "logo_font": rng.choice(FONTS["sans"] + FONTS["serif"]),
        "base": rng.choice([7.5, 8, 8.5, 9, 9, 9.5, 10, 10.5]),
        "text": rng.choice(["#000", "#111", "#222", "#333", "#1a1a2e", "#2b2b2b"]),
        "lh": rng.choice([1.15, 1.2, 1.25, 1.3, 1.4]),
        "gap": rng.choice([2, 4, 6]), "vgap": rng.choice([3, 4, 5, 6, 8]),
        "title_size": rng.choice([14, 16, 18, 20, 22, 24, 28, 32]),
        "title_color": accent if rng.random() < 0.5 else "#111",
        "title_weight": rng.choice(["bold", "bold", "normal", "300"]),
        "title_ls": rng.choice([0, 0, 0, 0.02, 0.05, 0.1]),
        "cap_color": rng.choice(["inherit", "#555", "#666", "#777", accent]),
        "cap_weight": rng.choice(["bold", "normal", "normal"]),
        "cap_size": rng.choice([0.85, 0.9, 1.0, 1.0]),
        "blockcap_color": rng.choice([accent, "#555", "#000"]), "blockcap_rule": rng.random() < 0.3,
        "sname_size": rng.choice([1.0, 1.15, 1.3, 1.5]), "sname_color": accent if dark else "inherit",
        "bname_weight": rng.choice(["bold", "normal"]),
        "small": rng.choice([0.8, 0.85, 0.9, 1.0]), "muted": rng.choice(["#555", "#666", "#777", "#444"]),
        "logo_size": rng.choice([10, 12, 14, 16, 18]), "logo_bg": rng.choice([accent, accent2, "#fff", "#eee"]),
        "logo_radius": rng.choice(["50%", "0", "2mm", "30%"]), "logo_border": rng.random() < 0.3,
        "accent": accent, "accent2": accent2, "band_fg": "#fff",
        "sidebar_w": rng.choice([26, 28, 30, 32]), "sidebar_bg": rng.choice(["#f2f2f2", "#eef3f8", "#f7f3ea", accent]),
        "rule": rng.choice(["#000", "#444", "#888", "#aaa", "#ccc", accent]), "rule_w": rng.choice([0.5, 0.75, 1.0]),
        "th_rule": rng.choice(["#000", accent, "#666"]),
        "box_fill": rng.choice([None, None, "#f5f5f5", "#eef4fb", "#fbf7ef"]), "box_radius": rng.choice([0, 0, 1, 2]),
        "kv_val_align": rng.choice(["left", "left", "right"]),
        "table_size": rng.choice([0.9, 0.95, 1.0, 1.0]), "cell_pad": rng.choice([0.8, 1.0, 1.4, 1.8]),
        "zebra": rng.choice(["#f2f2f2", "#eef4fb", "#f6f6ee", "#f0f0f0"]),
        "total_size": rng.choice([1.0, 1.1, 1.2, 1.3]), "total_rule": rng.random() < 0.6,
        "total_fill": rng.choice([None, None, None, accent, "#eee"]),
    }
    s["logo_fg"] = "#fff" if s["logo_bg"] in (accent, accent2) else accent
    s["sidebar_fg"] = "#fff" if s["sidebar_bg"] == accent else "#222"
    s["total_fg"] = "#fff" if s["total_fill"] == accent else "inherit"
    header_fill = layout.table == "header_fill" or rng.random() < 0.15
    s["th_bg"] = (accent if rng.random() < 0.7 else "#e6e6e6") if header_fill else "transparent"
    s["th_fg"] = "#fff" if s["th_bg"] == accent else "inherit"
    if receipt:
        s.update(page_w=rng.choice([58, 72, 76, 80]), m_side=rng.randint(3, 6), m_top=rng.randint(4, 10),
                 m_bottom=rng.randint(4, 10), base=rng.choice([7, 7.5, 8, 8.5]), title_size=rng.choice([9, 10, 12]),
                 text=rng.choice(["#000", "#222", "#333"]), sname_size=rng.choice([1.1, 1.3, 1.5]),
                 sname_color="inherit", title_color="inherit", logo_size=rng.choice([8, 10]))
        if s["page_w"] == 58:
            s["base"] = min(s["base"], 7)
    return s


# ---------------------------------------------------------------------------------------------
# Composition.
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def env() -> Environment:
    return Environment(loader=FileSystemLoader(str(HERE)), autoescape=True, trim_blocks=True, lstrip_blocks=True)


def _initials(name: str) -> str:
    words = [x for x in re.split(r"[^\w]+", name) if x and x[0].isalpha()]
    return "".join(x[0].upper() for x in words[:2]) or "X"


def pick_columns(rng: random.Random, layout: Layout, rec: Record) -> list[str]:
    cols = list(COLUMNS[layout.cols])
    if layout.template == "receipt":
        return cols
    multi_rate = len({it.tax_rate for it in rec.items}) > 1
    has_sku = any(it.sku for it in rec.items)
    if "pos" in cols and rng.random() < 0.3:
        cols.remove("pos")
    if "start_date" in cols and rng.random() < 0.25:  # a schedule without per-line dates (the flight's)
        cols = [c for c in cols if c not in ("start_date", "end_date")]
    if "sku" in cols and (not has_sku or rng.random() < 0.2):
        cols.remove("sku")
    if "unit" in cols and rng.random() < 0.3:
        cols.remove("unit")
    if "tax_rate" in cols and not multi_rate and (rec.locale == "en_US" or rng.random() < 0.4):
        cols.remove("tax_rate")
    if "tax_rate" not in cols and multi_rate:
        cols.insert(len(cols) - 1, "tax_rate")
    if "sku" not in cols and has_sku and layout.cols != "desc_sku" and rng.random() < 0.25:
        cols.insert(0 if cols[0] != "pos" else 1, "sku")
    return cols


class Composer:
    """Builds the template context of one document (all printed words with their entity marks)."""

    def __init__(self, rec: Record, fmt: Fmt, layout: Layout, rng: random.Random, doc_id: str):
        self.rec, self.fmt, self.L, self.rng, self.doc_id = rec, fmt, layout, rng, doc_id
        self.style = random_style(rng, layout, rec.locale)
        if rec.broadcast:  # a wide schedule: small type, often a landscape page
            self.style["base"] = min(self.style["base"], 8.5)
            if rng.random() < 0.4:
                self.style["page_w"], self.style["page_h"] = self.style["page_h"], self.style["page_w"]
        self.variant = ("broadcast_invoice" if rec.broadcast.invoice else "broadcast_order") if rec.broadcast \
            else rec.kind
        """The kind as its captions name it (title, number, date): a broadcast order may be an invoice."""
        self.upper_caps = rng.random() < 0.2
        self.sep = rng.choice([":", ":", ":", ""])
        self.columns = pick_columns(rng, layout, rec)
        self.sku_in_desc = layout.cols == "desc_sku" or ("sku" not in self.columns and rng.random() < 0.5)
        self.unit_with_qty = "unit" not in self.columns and not rec.broadcast and rng.random() < 0.6
        self.pos_style = rng.choice(["{n}", "{n}.", "{n:02d}", "{n:03d}", "{n0}"])
        self.show = {k: rng.random() < p for k, p in (
            ("phone", 0.8), ("email", 0.75), ("web", 0.4), ("supplier_tax", 0.85), ("terms", 0.6),
            ("po", 0.85), ("due", 0.85), ("subtotal", 0.9), ("customer_no", 0.3), ("buyer_tax", 0.8),
            ("bank", 0.85), ("logo", 0.7), ("notes_cap", 0.5), ("thanks", 0.5), ("tax_total", 0.4),
            ("amount_due", 0.5), ("number_in_title", 0.12), ("contacts_inline", 0.35), ("base_in_tax", 0.5),
        )}
        if rec.kind == "tax_invoice":
            self.show["supplier_tax"] = self.show["buyer_tax"] = True
        self.lbl = fmt.label
        self._warm = False

    # -- small helpers ---------------------------------------------------------------------------
    def cap(self, key: str, colon: bool = True, **kw) -> Markup:
        text = self.lbl(key, **kw)
        if self.upper_caps:
            text = text.upper()
        if colon and self.sep and not text.endswith(":"):
            text += self.sep
        return w(text)

    def money(self, x: Decimal, ent: str | None, negative: bool = False) -> Markup:
        return e(self.fmt.money(x, negative=negative), ent)

    # -- blocks ------------------------------------------------------------------------------------
    def parties(self):
        """(issuer party, its entity prefix), (recipient party, prefix): a purchase order is issued by
        the buyer and addressed to the supplier; a broadcast order is addressed to the agency that
        placed it, which is no party of the schema (no prefix; the advertiser is the buyer)."""
        if self.rec.kind == "purchase_order":
            return (self.rec.buyer, "BUYER"), (self.rec.supplier, "SUPPLIER")
        if self.rec.broadcast:
            return (self.rec.supplier, "SUPPLIER"), (self.rec.broadcast.agency, None)
        return (self.rec.supplier, "SUPPLIER"), (self.rec.buyer, "BUYER")

    def supplier(self) -> dict:
        (s, P), _ = self.parties()
        rng = self.rng
        sup = P == "SUPPLIER"
        contacts = []
        if s.phone and self.show["phone"]:
            contacts.append(self.cap("phone") + Markup(" ") + e(s.phone, "SUPPLIER_PHONE" if sup else None))
        if s.email and self.show["email"]:
            email = e(s.email, "SUPPLIER_EMAIL" if sup else None)
            contacts.append(self.cap("email") + Markup(" ") + email if rng.random() < 0.7 else email)
        if s.website and self.show["web"]:
            contacts.append(w(s.website))
        if s.tax_id and self.show["supplier_tax"]:
            cap = rng.choice(self._tax_caps())
            contacts.append(w(cap + (self.sep or "")) + Markup(" ") + e(s.tax_id, f"{P}_TAX_ID"))
        rng.shuffle(contacts) if rng.random() < 0.2 else None
        dot = rng.choice(["·", "|", "•", "–"])
        addr_one = ", ".join(s.address)
        name = e(s.name, f"{P}_NAME")
        if s.reg_no:  # "ACME TRADING SDN BHD (123456-X)" or a line of its own
            if rng.random() < 0.5:
                name = name + Markup(" ") + w(f"({s.reg_no})")
            else:
                contacts.insert(0, self.cap("reg_no") + Markup(" ") + w(s.reg_no) if rng.random() < 0.5
                                else w(f"({s.reg_no})"))
        return {
            "cap": self.cap("from") if self.L.header in ("classic", "title_left") and rng.random() < 0.25 else None,
            "name": name,
            "address": e("\n".join(s.address), f"{P}_ADDRESS"),
            "oneline": e(addr_one, f"{P}_ADDRESS"),
            "oneline_full": name + Markup(" ") + w(dot) + Markup(" ")
            + e(f" {dot} ".join(s.address), f"{P}_ADDRESS"),
            "contacts": contacts,
            "contacts_inline": (Markup(" ") + w(dot) + Markup(" ")).join(contacts)
            if self.show["contacts_inline"] else None,
        }

    def _tax_caps(self) -> tuple[str, ...]:
        from invoicegen.synth.locales import LOCALES

        return LOCALES[self.rec.locale].tax_id_captions

    def buyer(self) -> dict:
        _, (b, P) = self.parties()
        rng = self.rng
        extra = []
        if b.tax_id and self.show["buyer_tax"] and P:
            extra.append(w(rng.choice(self._tax_caps()) + (self.sep or "")) + Markup(" ") + e(b.tax_id, f"{P}_TAX_ID"))
        if self.show["customer_no"] and P == "BUYER":
            extra.append(self.cap("customer_no") + Markup(" ") + w(str(rng.randint(1000, 999999))))
        if b.email and rng.random() < 0.4:
            extra.append(e(b.email, "SUPPLIER_EMAIL" if P == "SUPPLIER" else None))
        cap_key = "vendor" if P == "SUPPLIER" else ("bc_agency" if self.rec.broadcast else "bill_to")
        return {"cap": self.cap(cap_key, colon=rng.random() < 0.3), "name": e(b.name, _ent(P, "NAME")),
                "address": e("\n".join(b.address), _ent(P, "ADDRESS")), "extra": extra}

    def meta(self) -> list[tuple[Markup, Markup]]:
        r, kind, rng, fmt = self.rec, self.variant, self.rng, self.fmt
        rows = []
        num_key = f"number_{kind}" if has_caption(r.locale, f"number_{kind}") else "number"
        num_ent = "PO_NUMBER" if kind == "purchase_order" else "INVOICE_NUMBER"
        if not self.show["number_in_title"]:
            rows.append((self.cap(num_key), e(r.number, num_ent)))
        if r.broadcast:
            return self._broadcast_meta(rows)
        date_key = f"date_{kind}" if has_caption(r.locale, f"date_{kind}") else "date"
        date_val = e(fmt.date(r.date), "INVOICE_DATE")
        if r.time:
            date_val = date_val + Markup(" ") + w(r.time)
        rows.append((self.cap(date_key), date_val))
        if r.due_date and self.show["due"]:
            rows.append((self.cap("due_date"), e(fmt.date(r.due_date), "DUE_DATE")))
        if r.delivery_date and self.show["due"]:
            rows.append((self.cap("due_date_purchase_order"), w(fmt.date(r.delivery_date))))
        if r.po_number and self.show["po"]:
            rows.append((self.cap("po_ref"), e(r.po_number, "PO_NUMBER")))
        if r.invoice_reference:
            rows.append((self.cap("invoice_ref"), w(r.invoice_reference)))
        if r.payment_terms and self.show["terms"]:
            rows.append((self.cap("terms"), e(r.payment_terms, "PAYMENT_TERMS")))
        if fmt.currency_style == "none" or rng.random() < 0.12:
            rows.append((self.cap("currency"), e(r.currency, "CURRENCY")))
        if r.cashier:
            rows.append((self.cap("cashier"), w(r.cashier)))
        if r.terminal:
            rows.append((self.cap("terminal"), w(r.terminal)))
        return self._shuffled_tail(rows)

    def _shuffled_tail(self, rows: list) -> list:
        if len(rows) > 3 and self.rng.random() < 0.3:
            head, tail = rows[:2], rows[2:]
            self.rng.shuffle(tail)
            rows = head + tail
        return rows

    def _broadcast_meta(self, rows: list[tuple[Markup, Markup]]) -> list[tuple[Markup, Markup]]:
        """Header key-values of a broadcast order: the contract number (``rows``), advertiser, estimate,
        flight, product, salesperson... The advertiser is the buyer, the estimate the buyer's order number."""
        r, rng, fmt = self.rec, self.rng, self.fmt
        b = r.broadcast
        assert b is not None
        if b.alt_order and rng.random() < 0.6:
            rows.append((self.cap("bc_alt_order"), w(b.alt_order)))
        rows.append((self.cap(f"date_{self.variant}"), e(fmt.date(r.date), "INVOICE_DATE")))
        rows.append((self.cap("bc_advertiser"), e(r.buyer.name, "BUYER_NAME")))
        if r.po_number and self.show["po"]:
            rows.append((self.cap("bc_estimate"), e(r.po_number, "PO_NUMBER")))
        if rng.random() < 0.7:
            rows.append((self.cap("bc_product"), w(b.product)))
        flight = w(f"{fmt.date(b.flight_start)} - {fmt.date(b.flight_end)}")
        rows.append((self.cap("bc_period" if b.invoice and rng.random() < 0.4 else "bc_flight"), flight))
        for key, value, p in (("bc_salesperson", b.salesperson, 0.6), ("bc_market", b.market, 0.4),
                              ("bc_billing", rng.choice(["Cash", "Broadcast", "Calendar", "EOM/EOC"]), 0.3)):
            if rng.random() < p:
                rows.append((self.cap(key), w(value)))
        if r.due_date and self.show["due"]:
            rows.append((self.cap("due_date"), e(fmt.date(r.due_date), "DUE_DATE")))
        if r.payment_terms and self.show["terms"]:
            rows.append((self.cap("terms"), e(r.payment_terms, "PAYMENT_TERMS")))
        return self._shuffled_tail(rows)

    def column_header(self, key: str) -> str:
        if self.rec.broadcast:
            return self.lbl(f"col_bc_{key}")
        flavor = self.rec.flavor
        if key == "quantity" and flavor == "hourly":
            return self.lbl("col_quantity_hourly")
        if key == "unit_price" and flavor == "hourly":
            return self.lbl("col_unit_price_hourly")
        if key == "description" and flavor in ("services", "hourly"):
            return self.lbl("col_description_services")
        return self.lbl(f"col_{key}")

    def columns_ctx(self) -> list[dict]:
        upper = self.rng.random() < 0.3
        right = self.rng.random() < 0.9
        out = []
        for key in self.columns:
            head = self.column_header(key)
            if key == "amount" and self.fmt.currency_style == "none" and self.rng.random() < 0.3:
                head = f"{head} ({self.rec.currency})"
            align = "l"
            if key in ("unit_price", "amount", "tax_rate") and right:
                align = "r"
            elif key in ("quantity", "unit", "pos"):
                align = self.fmt.picks.setdefault("qty_align", self.rng.choice(["c", "r", "l"]))
            out.append({"key": key, "head": w(head.upper() if upper else head), "align": align,
                        "width": 6 if key == "pos" else None})
        return out

    def cells(self, idx: int) -> dict:
        it, fmt = self.rec.items[idx], self.fmt
        n = idx + 1
        pos = self.pos_style.replace("{n0}", str(n * 10)).format(n=n)
        desc = e(it.description, "ITEM_DESCRIPTION")
        if self.sku_in_desc and it.sku:
            sku = w(self.lbl("sku_cap") + (self.sep or "")) + Markup(" ") + e(it.sku, "ITEM_SKU")
            desc = desc + Markup('<div class="skuline">') + sku + Markup("</div>")
        qty = e(fmt.qty(it.quantity), "ITEM_QUANTITY")
        if self.unit_with_qty:
            qty = qty + Markup(" ") + e(it.unit, "ITEM_UNIT")
        if self.L.template == "receipt" and self.L.cols.startswith("two_line"):
            qty = qty + Markup(" ") + w(self.fmt.picks.setdefault("times", self.rng.choice(["x", "X", "@", "×"])))
        return {
            "pos": w(pos), "sku": e(it.sku, "ITEM_SKU") if it.sku else Markup(""), "description": desc,
            "quantity": qty, "unit": e(it.unit, "ITEM_UNIT"), "unit_price": e(fmt.item_money(it.unit_price),
                                                                             "ITEM_UNIT_PRICE"),
            "tax_rate": e(fmt.percent(it.tax_rate), "ITEM_TAX_RATE"),
            "amount": e(fmt.item_money(it.amount), "ITEM_AMOUNT"),
            "tax_code": w(tax_code(self.rec.locale, it.tax_rate)),
            **(self._schedule_cells(idx) if self.rec.broadcast else {}),
        }

    def _schedule_cells(self, idx: int) -> dict[str, Markup]:
        assert self.rec.broadcast is not None
        line, fmt = self.rec.broadcast.lines[idx], self.fmt
        return {"start_date": w(fmt.date(line.start)), "end_date": w(fmt.date(line.end)), "days": w(line.days),
                "time": w(line.time), "length": w(line.length)}

    def totals(self) -> list[tuple[Markup, Markup, bool]]:
        r, fmt, rng = self.rec, self.fmt, self.rng
        if r.broadcast:
            return self._broadcast_totals()
        rows = []
        receipt = self.L.template == "receipt"
        if self.show["subtotal"] or r.discount or r.shipping or len(r.tax_lines) > 1:
            cap = self.cap("subtotal_gross" if r.prices_include_tax else "subtotal")
            rows.append((cap, self.money(r.subtotal, "SUBTOTAL"), False))
        if r.discount:
            pct = fmt.percent(r.discount_pct) if r.discount_pct is not None else ""
            tmpl = self.lbl("discount")
            if "{pct}" in tmpl and not pct:
                tmpl = tmpl.replace("{pct}", "").strip()
            rows.append((segs(tmpl, pct=pct) + w(self.sep), self.money(r.discount, "DISCOUNT", negative=True), False))
        if r.shipping:
            rows.append((self.cap("shipping"), self.money(r.shipping, "SHIPPING"), False))
        tmpl = self.lbl("tax_included" if r.prices_include_tax else "tax_line")
        if "{base}" in tmpl and not self.show["base_in_tax"]:
            tmpl = re.sub(r"\s*\S*\s*\{base\}", "", tmpl)
        tax_rows = []
        for t in r.tax_lines:
            cap = segs(tmpl, tax=r.tax_name, rate=e(fmt.percent(t.rate), "TAX_RATE"), base=fmt.money(t.base))
            tax_rows.append((cap + w(self.sep), self.money(t.amount, "TAX_AMOUNT"), False))
        if len(r.tax_lines) > 1 and self.show["tax_total"]:
            tax_rows.append((segs(self.lbl("tax_total"), tax=r.tax_name) + w(self.sep),
                             self.money(r.tax_amount, "TAX_AMOUNT"), False))
        if not r.prices_include_tax:  # net prices: taxes are added before the total
            rows += tax_rows
        rows += self._rounding_rows()
        total_cap = self.cap("total")
        if receipt and rng.random() < 0.5:
            total_cap = w(self.lbl("total").upper() + self.sep)
        rows.append((total_cap, self.money(r.total, "TOTAL_AMOUNT"), True))
        if self.lbl("amount_due").lower() == self.lbl("total").lower():  # "Net à payer" twice would be ambiguous
            others = [o for o in captions(r.locale, "amount_due") if o.lower() != self.lbl("total").lower()]
            fmt.picks["amount_due"] = self.rng.choice(others)
        if r.prices_include_tax:  # gross prices: the tax contained in the total is stated after it
            rows += tax_rows
        if receipt:
            if r.paid_with and r.tendered is not None:
                rows.append((w(r.paid_with), w(fmt.money(r.tendered)), False))
            if r.tendered is not None and r.tendered > r.total:
                rows.append((self.cap("change"), w(fmt.money(r.tendered - r.total)), False))
        elif r.amount_paid:
            rows.append((self.cap("amount_paid"), w(fmt.money(r.amount_paid, negative=True)), False))
            rows.append((self.cap("amount_due"), self.money(r.amount_due, "AMOUNT_DUE"), True))
        elif self.show["amount_due"] and r.kind in ("invoice", "tax_invoice"):
            rows.append((self.cap("amount_due"), self.money(r.amount_due, "AMOUNT_DUE"), True))
        return rows

    def _rounding_rows(self) -> list[tuple[Markup, Markup, bool]]:
        """Where tills round the total (``LocaleSpec.cash_rounding``): the total before rounding and
        the rounding adjustment, neither of them the total."""
        r, fmt, rng = self.rec, self.fmt, self.rng
        if not LOCALES[r.locale].cash_rounding:
            return []
        rows = []
        unrounded = r.total - r.rounding
        if r.tax_lines and rng.random() < 0.6:
            key = "total_incl_tax" if r.prices_include_tax or rng.random() < 0.7 else "total_excl_tax"
            value = unrounded if key == "total_incl_tax" else unrounded - r.tax_amount
            rows.append((segs(self.lbl(key), tax=r.tax_name) + w(self.sep), w(fmt.money(value)), False))
        if r.rounding or rng.random() < 0.6:
            sign = "-" if r.rounding < 0 else ""
            rows.append((self.cap("rounding"), w(sign + fmt.money(abs(r.rounding))), False))
        return rows

    def _broadcast_totals(self) -> list[tuple[Markup, Markup, bool]]:
        """Gross amount (the total), agency commission, net amount (what an invoice asks to be paid)."""
        r, fmt = self.rec, self.fmt
        b = r.broadcast
        assert b is not None
        rows = []
        if self.rng.random() < 0.5:
            spots = sum((it.quantity for it in r.items), Decimal(0))
            rows.append((self.cap("bc_spots_total"), w(fmt.qty(spots)), False))
        rows.append((self.cap("bc_gross"), self.money(r.total, "TOTAL_AMOUNT"), not b.invoice))
        commission = segs(self.lbl("bc_commission"), pct=fmt.percent(b.commission_pct)) + w(self.sep)
        rows.append((commission, w(fmt.money(r.commission, negative=True)), False))
        rows.append((self.cap("bc_net"), self.money(r.amount_due, "AMOUNT_DUE" if b.invoice else None), b.invoice))
        return rows

    def tax_summary(self) -> dict | None:
        """A till receipt's tax summary (code, rate, amount without tax, tax), after the totals: no entity."""
        r, fmt = self.rec, self.fmt
        if self.L.template != "receipt" or not LOCALES[r.locale].cash_rounding or not r.tax_lines \
                or self.rng.random() < 0.4:
            return None
        rows = []
        for t in r.tax_lines:
            net = t.base - t.amount if r.prices_include_tax else t.base
            rows.append([w(f"{tax_code(r.locale, t.rate)} @ {fmt.percent(t.rate)}"), w(fmt.number(net)),
                         w(fmt.number(t.amount))])
        return {"cap": self.cap("tax_summary", colon=False),
                "head": [w(self.lbl("tax_summary_amount")), w(self.lbl("tax_summary_tax"))], "rows": rows}

    def bank(self) -> list[tuple[Markup, Markup]]:
        s = self.rec.supplier
        rows: list[tuple[Markup, Markup]] = []
        if not self.show["bank"] or self.rec.kind in ("purchase_order",):
            return rows
        if s.bank_name:
            rows.append((Markup(""), w(s.bank_name)))
        if s.iban:
            iban = group4(s.iban) if self.rng.random() < 0.7 else s.iban
            rows.append((w("IBAN" + (self.sep or "")), e(iban, "SUPPLIER_IBAN")))
            rows.append((w(self.lbl("bic") + (self.sep or "")), w(s.bic or "")))
        elif s.routing:
            rows.append((self.cap("routing"), w(s.routing)))
            rows.append((self.cap("account"), w(s.account or "")))
        return rows

    def footer_cols(self, sup: dict, bank: list) -> list[list[Markup]]:
        if not (self.L.footer or self.L.header == "minimal"):
            return []
        cols = [[sup["name"], sup["address"]]]
        if sup["contacts"]:
            cols.append(list(sup["contacts"]))
        if bank and self.L.bank == "footer":
            cols.append([cap + Markup(" ") + val if cap else val for cap, val in bank])
        return cols

    def build(self, chunks: list[list[int]] | None = None) -> dict:
        r, rng, lang = self.rec, self.rng, self.fmt.lang
        if chunks is None:
            chunks = [list(range(len(r.items)))]
        title_text = self.lbl(f"title_{self.variant}")
        if self.L.template != "receipt" and rng.random() < 0.25:
            title_text = title_text.upper()
        title = e(title_text, "DOC_TYPE")
        num_ent = "PO_NUMBER" if r.kind == "purchase_order" else "INVOICE_NUMBER"
        if self.show["number_in_title"]:
            title = title + Markup(" ") + e(r.number, num_ent)
        sup = self.supplier()
        bank = self.bank()
        notes = [w(n) for n in r.notes]
        if r.payment_terms and not self.show["terms"] and rng.random() < 0.5:
            notes.append(self.cap("terms") + Markup(" ") + e(r.payment_terms, "PAYMENT_TERMS"))
        if r.currency and self.fmt.currency_style == "none" and rng.random() < 0.3:
            notes.append(w(self.lbl("all_amounts_in")) + Markup(" ") + e(r.currency, "CURRENCY"))
        amounts = [it.amount for it in r.items]
        chunk_ctx = []
        running = Decimal(0)
        n_pages = len(chunks)
        for k, rows in enumerate(chunks):
            carry_in = self.fmt.money(running) if k > 0 else None
            running += sum((amounts[i] for i in rows), Decimal(0))
            carry_out = self.fmt.money(running) if k < n_pages - 1 else None
            chunk_ctx.append({
                "rows": [{"idx": i, "cells": self.cells(i)} for i in rows],
                "carry_in": w(carry_in) if carry_in else None,
                "carry_out": w(carry_out) if carry_out else None,
                "carry_in_cap": segs(self.lbl("brought_forward"), prev=str(k)),
                "carry_out_cap": segs(self.lbl("carried_forward"), next=str(k + 2)),
                "cont": (w(title_text) + Markup(" ") + e(r.number, num_ent) + Markup(" ") + w("–") + Markup(" ")
                         + w(self.lbl("page", p=k + 1, n=n_pages)) + Markup(" ") + w(self.lbl("continued"))),
            })
        logo = None
        if self.show["logo"] or self.L.header in ("centered", "band"):
            issuer = self.parties()[0][0]
            logo = {"initials": w(_initials(issuer.name)), "bars": rng.choice([0, 0, 1, 2]),
                    "wordmark": w(issuer.name.split(" ")[0]) if rng.random() < 0.3 else None}
        subtitle = None
        if r.invoice_reference and rng.random() < 0.4:
            subtitle = w(self.lbl("invoice_ref")) + Markup(" ") + w(r.invoice_reference)
        ship = None
        if r.ship_to:
            ship = {"cap": self.cap("ship_to", colon=rng.random() < 0.3), "body": e("\n".join(r.ship_to),
                                                                                   "SHIP_TO_ADDRESS")}
        meta = self.meta()
        return {
            "lang": lang, "doc_id": self.doc_id, "title": title, "subtitle": subtitle, "logo": logo,
            "supplier": sup, "buyer": self.buyer(), "ship": ship, "meta": meta,
            "columns": self.columns_ctx(), "columns_header": rng.random() < 0.5, "chunks": chunk_ctx,
            "totals": self.totals(), "tax_summary": self.tax_summary(), "bank": bank, "bank_cap": self.cap("bank", colon=False) if bank else None,
            "notes": notes, "notes_cap": self.cap("notes", colon=False) if notes and self.show["notes_cap"] else None,
            "thanks": w(self.lbl("thanks")) if self.show["thanks"] else None,
            "footer_cols": self.footer_cols(sup, bank), "split": rng.choice([50, 55, 60]),
            "totals_note": None, "bottom_id": w(f"{rng.randint(1000, 9999)} {rng.randint(10, 99)}")
            if rng.random() < 0.5 else None,
        }

    def html(self, chunks: list[list[int]] | None = None, page_h: float | None = None) -> str:
        state = self.rng.getstate()
        if not self._warm:  # first pass picks every caption, so that all passes draw the same numbers
            self.build(chunks)
            self.rng.setstate(state)
            self._warm = True
        ctx = self.build(chunks)
        self.rng.setstate(state)  # re-composition with other chunks draws the same choices
        style = dict(self.style)
        if page_h:
            style["page_h"] = page_h
        css = env().get_template("style.css.j2").render(s=style)
        return env().get_template(f"{self.L.template}.html.j2").render(d=ctx, L=self.L, css=Markup(css))
