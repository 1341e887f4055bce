"""The body of ``invoicegen generate`` (kept here so that cli.py stays a thin registry)."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def _split_list(values: list[str] | None, allowed, what: str) -> list[str]:
    if not values:
        return list(allowed)
    items = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        typer.echo(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})", err=True)
        raise typer.Exit(2)
    return items


def print_stats(stats: dict, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    n = stats["documents"]
    console.print(f"[bold]{n} documents[/], {stats['pages']} pages, {stats['words']} words in {seconds:.1f} s "
                  f"({n / max(seconds, 1e-9):.2f} docs/s); multi-page {stats['multi_page']}, "
                  f"augmented {stats['augmented']}, box mismatches {stats['mismatches']}")
    for key in ("kind", "locale", "split"):
        table = Table(title=key, show_header=False)
        for name, count in stats[key].items():
            table.add_row(name, str(count))
        console.print(table)
    table = Table(title="entity instances (B- tags)", show_header=False)
    for name, count in sorted(stats["ner"].items(), key=lambda kv: -kv[1]):
        table.add_row(name, str(count))
    console.print(table)
    console.print("table roles:", stats["table"], " cell roles:", stats["cell"])
    console.print(f"layouts used ({len(stats['layout'])}): "
                  + ", ".join(f"{name} {count}" for name, count in stats["layout"].items()))


def run_generate(*, n: int, out: Path, seed: int, workers: int, kinds, locales, augment: float, dpi: int,
                 preview: int, ocr: str | None, verify: bool, split_seed: int | None, mix: float = 0.0) -> dict:
    from invoicegen.synth.dataset import DEFAULT_SPLIT_SEED, GenConfig, generate
    from invoicegen.synth.locales import KINDS, LOCALES, kind_allows

    if n < 1 or workers < 1 or dpi < 36 or not 0 <= augment <= 1 or not 0 <= mix <= 1:
        typer.echo("need --n >= 1, --workers >= 1, --dpi >= 36, 0 <= --augment <= 1 and 0 <= --mix <= 1", err=True)
        raise typer.Exit(2)
    kind_list, locale_list = _split_list(kinds, KINDS, "kinds"), _split_list(locales, tuple(LOCALES), "locales")
    lonely = [k for k in kind_list if not any(kind_allows(k, loc) for loc in locale_list)]
    if lonely:
        typer.echo(f"kinds not drawn in the locales {', '.join(locale_list)}: "
                   + "; ".join(f"{k} (drawn in {', '.join(lc for lc in LOCALES if kind_allows(k, lc))})"
                               for k in lonely), err=True)
        raise typer.Exit(2)
    cfg = GenConfig(out=Path(out), seed=seed, kinds=kind_list,
                    locales=locale_list, dpi=dpi, augment=augment, ocr=ocr,
                    preview=preview, verify=verify, mix=mix,
                    split_seed=DEFAULT_SPLIT_SEED if split_seed is None else split_seed)
    t0 = time.perf_counter()
    stats = generate(n, cfg, workers=workers)
    print_stats(stats, time.perf_counter() - t0)
    return stats
