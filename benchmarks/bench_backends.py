"""Runtime backends side by side: torch fp32, torch int8, ORT fp32, ORT int8.

Usage: python benchmarks/bench_backends.py --model models/invoicegen-small --data data/factory
         [--split test] [--max-docs 300] [--repeats 15]

For each backend: median latency of one model call at batch 1 and batch 8 (real windows from the
split), documents/s over the split (all windows, batch 8), model size on disk, and span F1 of the
three heads on the split. ONNX files are exported into a temporary directory if the checkpoint has
none. Prints a markdown table and the speed-up of each backend over torch fp32."""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch

from invoicegen.model.checkpoint import load_checkpoint
from invoicegen.model.data import iter_documents, load_split_ids, prepare_labelled
from invoicegen.model.export import ONNX_FILE, ONNX_INT8_FILE, export_onnx
from invoicegen.model.predict import predict_pages, score_pages
from invoicegen.model.runtime import OnnxRuntime, Runtime, TorchRuntime, torch_int8


def torch_size(model: torch.nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--max-docs", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(2)

    tmp = Path(tempfile.mkdtemp())
    onnx_fp32 = args.model / ONNX_FILE if (args.model / ONNX_FILE).exists() else export_onnx(args.model, tmp / ONNX_FILE)
    onnx_int8 = (args.model / ONNX_INT8_FILE if (args.model / ONNX_INT8_FILE).exists()
                 else export_onnx(args.model, tmp / ONNX_INT8_FILE, int8=True))
    base = load_checkpoint(args.model)
    runtimes: dict[str, tuple[Runtime, int]] = {
        "torch fp32": (TorchRuntime(base), torch_size(base.model)),
    }
    q = torch_int8(load_checkpoint(args.model))
    runtimes["torch int8"] = (TorchRuntime(q), torch_size(q.model))
    runtimes["ORT fp32"] = (OnnxRuntime(load_checkpoint(args.model), onnx_fp32), onnx_fp32.stat().st_size)
    runtimes["ORT int8"] = (OnnxRuntime(load_checkpoint(args.model), onnx_int8), onnx_int8.stat().st_size)

    ids = load_split_ids(args.data).get(args.split, set())
    docs = [d for d in iter_documents(args.data) if d.id in ids][: args.max_docs]
    pages = [p for d in docs for p in prepare_labelled(d, base.tokenizer, base.recipe)]
    windows = sorted((w for p in pages for w in p.windows), key=lambda w: -len(w.input_ids))
    one = [windows[len(windows) // 2]]
    eight = windows[len(windows) // 2: len(windows) // 2 + 8]
    print(f"{len(docs)} {args.split} documents, {len(pages)} pages, {len(windows)} windows "
          f"(median window {len(one[0].input_ids)} tokens)")

    rows = []
    for name, (rt, size) in runtimes.items():
        lat = {}
        for label, batch in (("b1", one), ("b8", eight)):
            rt.run(batch)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                rt.run(batch)
                times.append(time.perf_counter() - t)
            lat[label] = statistics.median(times) * 1000
        t = time.perf_counter()
        predict_pages(pages, rt.run, batch_size=8)
        docs_s = len(docs) / (time.perf_counter() - t)
        scores = score_pages(pages, rt.run, batch_size=8)
        rows.append((name, lat["b1"], lat["b8"], docs_s, size / 1e6, scores["ner"]["f1"],
                     scores["table_row"]["f1"], scores["cell"]["f1"]))
        print(f"  {name}: done", flush=True)

    ref = rows[0]
    print("\n| backend | batch 1 ms | batch 8 ms | speed-up b8 | docs/s | MB | entity F1 | row F1 | cell F1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.1f} | {r[2]:.1f} | {ref[2] / r[2]:.2f}x | {r[3]:.1f} | {r[4]:.1f} | "
              f"{r[5]:.4f} | {r[6]:.4f} | {r[7]:.4f} |")
    print("\nF1 loss vs torch fp32 (points): " + ", ".join(f"{r[0]} {100 * (ref[5] - r[5]):+.2f}" for r in rows[1:]))


if __name__ == "__main__":
    main()
