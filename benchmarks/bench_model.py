"""CPU forward latency of the multi-task model per 512-token window (the model bar: <= 80 ms).

Usage: python benchmarks/bench_model.py [--model DIR] [--recipe small] [--repeats 20]
Without --model a randomly initialised model of the recipe is timed (speed does not depend on the
weights)."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from invoicegen.model.checkpoint import load_checkpoint
from invoicegen.model.multitask import MultiTaskLayoutLMv3, backbone_config
from invoicegen.model.recipes import get_recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model")
    ap.add_argument("--recipe", default="small")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        model = load_checkpoint(args.model).model
    else:
        recipe = get_recipe(args.recipe)
        model = MultiTaskLayoutLMv3(backbone_config(recipe, recipe.vocab_size)).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {params:,}  threads: {args.threads}")
    for batch, length in ((1, 512), (8, 512), (1, 256)):
        ids = torch.randint(5, model.config.vocab_size, (batch, length))
        box = torch.randint(0, 500, (batch, length, 4))
        box[..., 2:] += box[..., :2]
        mask = torch.ones(batch, length, dtype=torch.long)
        times = []
        with torch.inference_mode():
            for i in range(args.repeats + 3):
                t = time.perf_counter()
                model(input_ids=ids, bbox=box, attention_mask=mask)
                if i >= 3:
                    times.append(time.perf_counter() - t)
        med = statistics.median(times) * 1000
        print(f"batch {batch} x {length}: median {med:.1f} ms/call, {med / batch:.1f} ms/window")


if __name__ == "__main__":
    main()
