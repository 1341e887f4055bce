"""Throughput of the batch engines on born-digital invoices against a plain sequential loop (the bar:
local runner >= 1.5x the loop on 2 cores).

Usage: python benchmarks/bench_batch.py [--n 200] [--model DIR] [--docs DIR | --keep DIR] [--no-ray]
                                        [--repeats 3] [--json FILE]

Generates ``--n`` invoices with the factory into a temp directory (or takes the PDFs under
``--docs``). Every engine runs in a fresh Python process, as a user would start it, so imports and
model loading count:

* ``sequential loop``: ``Extractor.load()`` (the default backend and thread settings), then
  ``Extractor.extract`` one file at a time, each result written as ``<path under the input>.json``
  and named by that path, as the runners do (no fsync);
* ``local runner, threads`` / ``processes``: ``AsyncBatchRunner`` with its defaults (fsync on),
  ``start()`` first (loads the model / spawns the worker processes and loads theirs);
* ``ray engine``: a private local Ray with 2 CPUs (``ray.init`` counted as start-up).

Each process does one warm-up extraction of the packaged sample invoice before the clock of the run
starts (the worker processes do theirs in their initializer). Reported per engine: start-up (process
start to ready), run (the documents), end-to-end (the whole process, measured from outside), docs/s
of the run and end to end, the ratios to the loop, and how many outputs are identical to the loop's
(JSON without ``timings_ms``). The local engines are repeated ``--repeats`` times, interleaved, best of
each (other processes on a shared machine only ever slow a run down). The load average is printed
because a busy machine skews every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()  # a child's start-up is measured from here (imports included)
REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "src" / "invoicegen" / "samples" / "sample_invoice.pdf"
MODES = ("loop", "threads", "processes")


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


# ------------------------------------------------------------------------------------------------
# One engine, in a child process
# ------------------------------------------------------------------------------------------------


def _child(mode: str, model: Path, src: Path, out: Path, workers: int, batch_size: int) -> dict[str, Any]:
    if mode == "loop":
        from invoicegen.deployment.batch_io import result_json
        from invoicegen.extract.pipeline import Extractor

        extractor = Extractor.load(model)
        extractor.extract(SAMPLE)  # warm-up
        startup = time.perf_counter() - T0
        pdfs = sorted(src.rglob("*.pdf"))
        out.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        for p in pdfs:
            rel = p.relative_to(src).as_posix()  # the runners name a document by its path under the input
            target = out / (rel + ".json")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(result_json(extractor.extract(p, filename=rel)))
        return {"startup": startup, "run": time.perf_counter() - t, "docs": len(pdfs)}
    if mode == "ray":
        import ray

        from invoicegen.deployment.ray_engine import RayBatchEngine

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
        startup = time.perf_counter() - T0
        try:
            stats = RayBatchEngine(model, batch_size=batch_size, progress=False).run(src, out)
        finally:
            ray.shutdown()
    else:
        from invoicegen.deployment.batch_runner import AsyncBatchRunner
        from invoicegen.deployment.model_loader import ModelLoader

        loader = ModelLoader(model)
        runner = AsyncBatchRunner(loader, batch_size=batch_size, num_workers=workers,
                                  use_threads=mode == "threads", progress=False)
        runner.start()
        if mode == "threads":
            loader.model.extract(SAMPLE)  # warm-up (the worker processes warm up in start())
        startup = time.perf_counter() - T0
        stats = runner.process_directory(src, out)
    assert stats.processed == stats.total and not stats.failed, stats.line()
    return {"startup": startup, "run": stats.seconds, "docs": stats.processed}


def _run_child(mode: str, args: argparse.Namespace, model: Path, src: Path, out: Path) -> dict[str, Any]:
    workers = args.thread_workers if mode == "threads" else args.workers
    cmd = [sys.executable, __file__, "--child", mode, "--model", str(model), "--docs", str(src), "--out", str(out),
           "--workers", str(workers), "--batch-size", str(args.batch_size)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    e2e = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(mode=mode, workers=workers, end_to_end=e2e)
    return row


def _outputs(out: Path) -> dict[str, Any]:
    found = {}
    for p in sorted(out.rglob("*.json")):
        data = json.loads(p.read_text())
        data.pop("timings_ms", None)
        found[p.relative_to(out).as_posix()] = data
    return found


# ------------------------------------------------------------------------------------------------
# The parent
# ------------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="invoices to generate")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--docs", type=Path, help="use this factory dataset (or folder of PDFs) instead of generating")
    ap.add_argument("--keep", type=Path, help="generate into this directory and keep it (reuse with --docs)")
    ap.add_argument("--model", help="checkpoint directory")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    ap.add_argument("--thread-workers", type=int, default=4, help="loader threads of the threads mode (default: 4)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the local engines (best is shown)")
    ap.add_argument("--modes", default=",".join(MODES), help="local engines to run (loop is the baseline)")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the numbers to this file")
    ap.add_argument("--child", choices=(*MODES, "ray"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        assert args.model and args.docs and args.out
        row = _child(args.child, Path(args.model), args.docs, args.out, args.workers, args.batch_size)
        print(json.dumps(row))
        return

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
        if any(p.suffix.lower() != ".pdf" for p in src.rglob("*") if p.is_file()):  # the loop reads PDFs only
            only = work / "pdf"
            shutil.copytree(src, only, ignore=lambda d, names: [n for n in names if not n.lower().endswith(".pdf")
                                                                and not (Path(d) / n).is_dir()])
            src = only
        n_docs = len(list(src.rglob("*.pdf")))
        model = _model(args, data, work)
        load_before = os.getloadavg()
        print(f"{n_docs} PDFs, model {model}, {os.cpu_count()} CPUs, load average {load_before[0]:.1f}, "
              f"MODEL_BACKEND={os.environ.get('MODEL_BACKEND', 'auto')}")

        modes = [m for m in args.modes.split(",") if m]
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in range(args.repeats):
            for mode in ["loop", *[m for m in modes if m != "loop"]]:
                row = _run_child(mode, args, model, src, work / f"out-{mode}-{r}")
                row["out"] = str(work / f"out-{mode}-{r}")
                runs.setdefault(mode, []).append(row)
                print(f"  {mode:10} run {row['run']:6.2f} s  start-up {row['startup']:5.2f} s  "
                      f"end-to-end {row['end_to_end']:6.2f} s", flush=True)
        if not args.no_ray:
            row = _run_child("ray", args, model, src, work / "out-ray")
            row["out"] = str(work / "out-ray")
            runs["ray"] = [row]
            print(f"  {'ray':10} run {row['run']:6.2f} s  start-up {row['startup']:5.2f} s  "
                  f"end-to-end {row['end_to_end']:6.2f} s", flush=True)

        reference = _outputs(Path(runs["loop"][0]["out"]))
        rows = []
        for mode_runs in runs.values():
            best = min(mode_runs, key=lambda x: x["run"])
            best["run_docs_per_second"] = best["docs"] / best["run"]
            best["e2e_docs_per_second"] = best["docs"] / min(x["end_to_end"] for x in mode_runs)
            best["end_to_end"] = min(x["end_to_end"] for x in mode_runs)
            best["startup"] = min(x["startup"] for x in mode_runs)
            best["all_runs"] = [round(x["run"], 2) for x in mode_runs]
            outs = _outputs(Path(best["out"]))
            best["identical"] = sum(outs.get(k) == v for k, v in reference.items())
            best["outputs"] = len(outs)
            rows.append(best)
        base = rows[0]
        print(f"\n{'engine':34} {'start-up':>8} {'run':>7} {'docs/s':>7} {'ratio':>6} {'e2e':>7} {'docs/s':>7} "
              f"{'ratio':>6}  identical to loop")
        for r in rows:
            r["ratio"] = r["run_docs_per_second"] / base["run_docs_per_second"]
            r["e2e_ratio"] = r["e2e_docs_per_second"] / base["e2e_docs_per_second"]
            name = {"loop": "sequential Extractor.extract loop", "threads": f"local runner, {r['workers']} threads",
                    "processes": f"local runner, {r['workers']} processes",
                    "ray": "ray engine, local Ray (2 CPUs)"}[r["mode"]]
            print(f"{name:34} {r['startup']:7.2f}s {r['run']:6.2f}s {r['run_docs_per_second']:7.2f} "
                  f"{r['ratio']:5.2f}x {r['end_to_end']:6.2f}s {r['e2e_docs_per_second']:7.2f} {r['e2e_ratio']:5.2f}x  "
                  f"{r['identical']}/{len(reference)}  (runs: {', '.join(f'{v:.2f}' for v in r['all_runs'])} s)")
        local = [r for r in rows if r["mode"] in ("threads", "processes")]
        load_after = os.getloadavg()
        if local:
            best_run = max(r["ratio"] for r in local)
            best_e2e = max(r["e2e_ratio"] for r in local)
            print(f"\nbar: local runner >= 1.50x the sequential loop: run {best_run:.2f}x "
                  f"({'PASS' if best_run >= 1.5 else 'FAIL'}), end to end {best_e2e:.2f}x "
                  f"({'PASS' if best_e2e >= 1.5 else 'FAIL'}); load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
        if args.json:
            args.json.write_text(json.dumps({"docs": n_docs, "model": str(model), "rows": rows,
                                             "load_average": [load_before[0], load_after[0]]}, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
