"""Invoice factory throughput: documents/s with PDF + PNG pages (150 dpi) on K worker processes.

    python benchmarks/bench_generate.py --n 60 --workers 2

Prints wall-clock documents/s, CPU seconds per document (all processes) and the load average, since
on a shared machine other jobs take cores: ``2 / cpu_s_per_doc`` is what two free cores deliver.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--augment", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--out", type=Path, default=None, help="Keep the output here (default: a temp dir).")
    ap.add_argument("--json", action="store_true", help="Print one JSON line.")
    args = ap.parse_args()

    from invoicegen.synth.dataset import GenConfig, generate

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "bench"
        warm = Path(tmp) / "warm"
        generate(1, GenConfig(out=warm, seed=args.seed + 1), workers=1, progress=False)  # imports, fonts
        load0 = os.getloadavg()[0]
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        stats = generate(args.n, GenConfig(out=out, seed=args.seed, dpi=args.dpi, augment=args.augment),
                         workers=args.workers, progress=False)
        wall = time.perf_counter() - t0
        cpu = _cpu_seconds() - cpu0
        load1 = os.getloadavg()[0]
    result = {
        "documents": stats["documents"], "pages": stats["pages"], "workers": args.workers, "dpi": args.dpi,
        "augment": args.augment, "wall_s": round(wall, 2), "docs_per_s": round(stats["documents"] / wall, 2),
        "cpu_s_per_doc": round(cpu / stats["documents"], 3),
        "docs_per_s_on_free_cores": round(args.workers * stats["documents"] / cpu, 2),
        "multi_page": stats["multi_page"], "load_avg_before_after": [round(load0, 2), round(load1, 2)],
    }
    if args.json:
        print(json.dumps(result))
        return
    for k, v in result.items():
        print(f"{k:>26}: {v}")


if __name__ == "__main__":
    main()
