"""Throughput of the batch engines on born-digital invoices (the bar: local runner >= 1.5x a plain
sequential loop on 2 cores).

Usage: python benchmarks/bench_batch.py [--n 200] [--model DIR] [--docs DIR | --keep DIR] [--no-ray] [--json FILE]

Generates ``--n`` invoices with the factory into a temp directory (or takes the PDFs under
``--docs``), then measures docs/s for: a plain loop of ``Extractor.extract`` one file at a time; the
local runner (threads and processes), interleaved over ``--repeats`` runs with the best of each
shown; the Ray engine on a local Ray with 2 CPUs (cluster start-up timed apart). Model: ``--model``, else models/invoicegen-small when present, else a tiny model
trained here for a minute on the generated documents. All engines write to fresh output
directories; the load average is printed because a busy machine skews every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _generate(n: int, out: Path, seed: int) -> Path:
    from invoicegen.synth.dataset import GenConfig, generate

    t = time.perf_counter()
    generate(n, GenConfig(out=out, seed=seed), workers=2)
    print(f"generated {n} invoices in {time.perf_counter() - t:.0f} s")
    return out


def _model(args: argparse.Namespace, data: Path | None, work: Path) -> Path:
    if args.model:
        return Path(args.model)
    shipped = REPO / "models" / "invoicegen-small"
    if shipped.is_dir():
        return shipped
    if data is None:
        raise SystemExit("no model: pass --model (models/invoicegen-small does not exist)")
    from invoicegen.model.recipes import get_recipe
    from invoicegen.model.train import TrainConfig, train

    out = work / "tiny-model"
    t = time.perf_counter()
    train(TrainConfig(data=data, out=out, recipe=get_recipe("tiny").with_overrides(epochs=1), progress=False,
                      max_train_docs=40))
    print(f"no shipped model: trained a tiny one in {time.perf_counter() - t:.0f} s")
    return out


def _sequential(extractor: Any, pdfs: list[Path]) -> dict[str, Any]:
    t = time.perf_counter()
    for p in pdfs:
        extractor.extract(p)
    seconds = time.perf_counter() - t
    return {"engine": "sequential loop", "seconds": seconds, "docs_per_second": len(pdfs) / seconds}


def _local(loader: Any, src: Path, out: Path, use_threads: bool, workers: int, batch_size: int) -> dict[str, Any]:
    from invoicegen.deployment.batch_runner import AsyncBatchRunner

    runner = AsyncBatchRunner(loader, batch_size=batch_size, num_workers=workers, use_threads=use_threads,
                              progress=False)
    stats = runner.process_directory(src, out)
    assert stats.processed == stats.total and not stats.failed, stats.line()
    kind = "threads" if use_threads else "processes"
    return {"engine": f"local runner ({workers} {kind}, batch {batch_size})", "seconds": stats.seconds,
            "docs_per_second": stats.docs_per_second}


def _ray(model: Path, src: Path, out: Path, batch_size: int) -> dict[str, Any] | None:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        print("ray is not installed: skipping the Ray engine (pip install 'invoicegen[ray]')")
        return None
    from invoicegen.deployment.ray_engine import RayBatchEngine

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    startup = time.perf_counter() - t
    try:
        stats = RayBatchEngine(model, batch_size=batch_size, progress=False).run(src, out)
    finally:
        ray.shutdown()
    assert stats.processed == stats.total and not stats.failed, stats.line()
    return {"engine": f"ray engine (2 CPUs, batch {batch_size})", "seconds": stats.seconds,
            "docs_per_second": stats.docs_per_second, "startup_seconds": startup}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="invoices to generate")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--docs", type=Path, help="use this factory dataset (or folder of PDFs) instead of generating")
    ap.add_argument("--keep", type=Path, help="generate into this directory and keep it (reuse with --docs)")
    ap.add_argument("--model", help="checkpoint directory")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2, help="loader threads/processes of the local runner")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the local engines (best is shown)")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        data = None
        if args.docs:  # a factory dataset directory (PDFs under pdf/) or any folder of PDFs
            is_dataset = (args.docs / "documents.jsonl").is_file()
            data = args.docs if is_dataset else None
            src = args.docs / "pdf" if is_dataset else args.docs
        else:
            data = _generate(args.n, args.keep or work / "factory", args.seed)
            src = data / "pdf"
        pdfs = sorted(p for p in src.rglob("*.pdf"))
        model = _model(args, data, work)
        load_before = os.getloadavg()
        print(f"{len(pdfs)} PDFs, model {model}, {os.cpu_count()} CPUs, load average {load_before[0]:.1f}")

        from invoicegen.deployment.model_loader import ModelLoader

        loader = ModelLoader(model)
        extractor = loader.load_model()
        extractor.extract(pdfs[0])  # warm-up (lazy imports, first-call allocations)
        # interleaved repeats, best of each: other processes on a shared machine only ever slow a run
        # down, so the fastest repeat is the least disturbed one
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in range(args.repeats):
            for row in (_sequential(extractor, pdfs),
                        _local(loader, src, work / f"out-threads-{r}", True, args.workers, args.batch_size),
                        _local(loader, src, work / f"out-processes-{r}", False, args.workers, args.batch_size)):
                runs.setdefault(row["engine"], []).append(row)
        rows = []
        for engine_runs in runs.values():
            best = max(engine_runs, key=lambda x: x["docs_per_second"])
            best["all_docs_per_second"] = [round(x["docs_per_second"], 2) for x in engine_runs]
            rows.append(best)
        if not args.no_ray:
            r = _ray(model, src, work / "out-ray", args.batch_size)
            if r:
                rows.append(r)
        base = rows[0]["docs_per_second"]
        print(f"\n{'engine':45} {'seconds':>8} {'docs/s':>8} {'vs loop':>8}")
        for r in rows:
            r["ratio"] = r["docs_per_second"] / base
            extra = f"  (+{r['startup_seconds']:.1f} s Ray start-up)" if "startup_seconds" in r else ""
            if "all_docs_per_second" in r and len(r["all_docs_per_second"]) > 1:
                extra += f"  (all runs: {', '.join(f'{v:.2f}' for v in r['all_docs_per_second'])})"
            print(f"{r['engine']:45} {r['seconds']:8.1f} {r['docs_per_second']:8.2f} {r['ratio']:7.2f}x{extra}")
        best_local = max(r["ratio"] for r in rows if r["engine"].startswith("local"))
        load_after = os.getloadavg()
        print(f"\nbar: local runner >= 1.50x the sequential loop: {'PASS' if best_local >= 1.5 else 'FAIL'} "
              f"({best_local:.2f}x); load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
        if args.json:
            args.json.write_text(json.dumps({"docs": len(pdfs), "model": str(model), "rows": rows,
                                             "load_average": [load_before[0], load_after[0]]}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
