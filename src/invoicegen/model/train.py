"""``invoicegen train``: fit the multi-task model on a factory dataset.

AdamW with linear warm-up and decay, gradient accumulation and clipping, autocast on CUDA,
early stopping on validation entity F1 with the best checkpoint kept, resumable from the last
epoch, seeded, progress bars and a JSONL log of per-epoch metrics."""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from invoicegen.model.checkpoint import (
    base_config,
    is_checkpoint,
    load_base_backbone,
    load_checkpoint,
    save_checkpoint,
)
from invoicegen.model.data import ModelPage, iter_documents, length_batches, load_split_ids, prepare_labelled
from invoicegen.model.encode import collate
from invoicegen.model.multitask import MultiTaskLayoutLMv3, backbone_config
from invoicegen.model.predict import HEAD_NAMES, predict_pages, score_pages, torch_runner
from invoicegen.model.recipes import Recipe
from invoicegen.model.tokenizer import WordTokenizer
from invoicegen.schema import HEADS

log = logging.getLogger(__name__)

RESUME_DIR = "_resume"
LOG_FILE = "train_log.jsonl"


@dataclass
class TrainConfig:
    data: Path
    out: Path
    recipe: Recipe
    base: Path | None = None
    resume: bool = False
    seed: int = 13
    max_minutes: float | None = None
    max_train_docs: int | None = None
    fp16_weights: bool = True
    progress: bool = True


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate_pages(model: MultiTaskLayoutLMv3, pages: Sequence[ModelPage], pad_id: int,
                   batch_size: int = 16) -> dict[str, Any]:
    """Span P/R/F1 per head on gold-labelled pages (model in eval mode)."""
    model.eval()
    return score_pages(pages, torch_runner(model, pad_id), batch_size=batch_size)


def fit_temperature(model: MultiTaskLayoutLMv3, pages: Sequence[ModelPage], pad_id: int) -> float:
    """Temperature T for the entity head that minimises validation NLL (softmax(logits / T)), so the
    confidences the extractor reports are calibrated probabilities, not raw softmax scores."""
    model.eval()
    logits = predict_pages(pages, torch_runner(model, pad_id), batch_size=16)
    x = np.concatenate([lg["ner"] for lg in logits])
    y = np.array([HEADS["ner"].index(t) for p in pages if p.gold for t in p.gold["ner"]])
    if len(y) == 0:
        return 1.0

    def nll(t: float) -> float:
        z = x / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))
    return float(min(grid, key=nll))


def _lr_lambda(total: int, warmup: int, deadline: float | None = None):  # type: ignore[no-untyped-def]
    """Linear warm-up, then linear decay to 0 at the last step. With a wall-time ``deadline`` the decay
    also follows the clock, so a run stopped by ``--max-minutes`` still ends at a small learning rate
    instead of being cut off at full speed."""
    begin = time.time()

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        left = (total - step) / max(1, total - warmup)
        if deadline is not None:
            left = min(left, (deadline - time.time()) / max(1e-9, deadline - begin))
        return max(0.0, left)

    return f


def _mix_note(recipe: dict[str, Any]) -> str:
    if not recipe.get("mix"):
        return ""
    return (f"\n- {recipe['mix']:.0%} of the documents were drawn on composed layouts: new page structures made of the"
            "\n  training layouts' blocks, never equal to a val/test layout (column orders that only held-out"
            "\n  layouts use stay unseen)")


def _generate_command(data: Path, recipe: dict[str, Any]) -> str:
    """The ``invoicegen generate`` command that rebuilds the training data (empty without a manifest)."""
    if not {"n", "seed"} <= recipe.keys():
        return ""
    extra = "".join(f" --{k} {recipe[k]}" for k in ("augment", "mix") if recipe.get(k))
    return f"invoicegen generate --n {recipe['n']} --out {data} --seed {recipe['seed']}{extra}\n"


def _model_card(cfg: TrainConfig, meta: dict[str, Any]) -> str:
    test = meta.get("test_metrics") or {}
    rows = "\n".join(f"| {h} | {m['precision']:.4f} | {m['recall']:.4f} | {m['f1']:.4f} |"
                     for h, m in test.items())
    return f"""# InvoiceGen model: {meta['name']}

Multi-task LayoutLMv3 (entity tags, table rows, table cells) trained **from scratch** by
`invoicegen train` on synthetic documents from the InvoiceGen factory. No pretrained weights.

## Reproduce
```
{_generate_command(cfg.data, meta.get('data_recipe', {}))}{meta['command']}
```

## Data
- dataset: `{cfg.data}` ({meta['n_train_docs']} train / {meta['n_val_docs']} val / {meta['n_test_docs']} test documents;
  splits by layout: the test layouts never appear in training){_mix_note(meta.get('data_recipe', {}))}
- data recipe: {json.dumps(meta.get('data_recipe', {}), sort_keys=True)}

## Model
- recipe `{cfg.recipe.name}`: hidden {cfg.recipe.hidden_size}, {cfg.recipe.num_hidden_layers} layers,
  {cfg.recipe.num_attention_heads} heads, ffn {cfg.recipe.intermediate_size}, vocab {meta['vocab_size']},
  visual embedding {'on' if cfg.recipe.visual_embed else 'off'}; {meta['parameters']:,} parameters
- weights stored as {'fp16' if cfg.fp16_weights else 'fp32'} (loaded as fp32)

## Training
- seed {cfg.seed}; {meta['epochs_run']} epochs (best: {meta['best_epoch']}), {meta['train_minutes']:.1f} min
- hardware: {meta['hardware']}

## Held-out layouts (test split), span P/R/F1 (seqeval strict IOB2)
| head | precision | recall | F1 |
|---|---|---|---|
{rows}

These numbers are on synthetic documents of unseen layouts. Real invoices are harder: see the
evaluation reports for accuracy on real data.
"""


def train(cfg: TrainConfig, command: str = "") -> dict[str, Any]:
    """Train and write the best checkpoint to ``cfg.out``; returns the training metadata."""
    seed_everything(cfg.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    recipe = cfg.recipe
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    resume_dir = out / RESUME_DIR
    started = time.time()

    splits = load_split_ids(cfg.data)
    docs = {name: [] for name in ("train", "val", "test")}  # type: dict[str, list]
    for doc in iter_documents(cfg.data):
        for name in docs:
            if doc.id in splits.get(name, ()):
                docs[name].append(doc)
    if cfg.max_train_docs:
        docs["train"] = docs["train"][: cfg.max_train_docs]
    if not docs["train"]:
        raise ValueError(f"{cfg.data}: no training documents in the manifest's train split")
    if not docs["val"]:
        docs["val"] = docs["train"][: max(1, len(docs["train"]) // 10)]

    # tokenizer and model: an InvoiceGen checkpoint's (training goes on from it), a pretrained
    # LayoutLMv3's, a resumed run's, or a new BPE trained on the training words and a new model
    if cfg.base is not None and is_checkpoint(cfg.base):
        ckpt = load_checkpoint(cfg.base)
        if ckpt.recipe.architecture() != recipe.architecture():
            raise ValueError(f"--base {cfg.base} is a '{ckpt.recipe.name}' model: train it with --recipe "
                             f"{ckpt.recipe.name}")
        tokenizer, model = ckpt.tokenizer, ckpt.model.train()
    else:
        if cfg.base is not None:
            tokenizer = WordTokenizer.load(cfg.base)
        elif cfg.resume and resume_dir.exists():
            tokenizer = WordTokenizer.load(resume_dir)
        else:
            tokenizer = WordTokenizer.train((w for d in docs["train"] for p in d.pages for w in p.words),
                                            vocab_size=recipe.vocab_size)
        config = (base_config(cfg.base, recipe) if cfg.base is not None
                  else backbone_config(recipe, tokenizer.vocab_size, tokenizer.pad_id))
        model = MultiTaskLayoutLMv3(config, loss_weights=recipe.loss_weights)
        if cfg.base is not None:
            load_base_backbone(model, cfg.base)

    def encode(name: str) -> list[ModelPage]:
        return [p for d in tqdm(docs[name], desc=f"encode {name}", disable=not cfg.progress)
                for p in prepare_labelled(d, tokenizer, recipe, cfg.data)]

    train_pages, val_pages = encode("train"), encode("val")
    windows = [w for p in train_pages for w in p.windows]
    steps_per_epoch = -(-len(windows) // recipe.batch_size) // recipe.grad_accum or 1
    total_steps = steps_per_epoch * recipe.epochs
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "norm" in name else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=recipe.learning_rate)
    deadline = started + 60 * cfg.max_minutes if cfg.max_minutes else None
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(total_steps, int(recipe.warmup_ratio * total_steps), deadline))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    amp_dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16

    start_epoch, best_epoch, bad_epochs = 0, -1, 0
    best_score: tuple[float, ...] = (-1.0,)
    if cfg.resume and (resume_dir / "state.pt").exists():
        state = torch.load(resume_dir / "state.pt", map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_score, best_epoch, bad_epochs = (state["epoch"] + 1, tuple(state["best_score"]),
                                                            state["best_epoch"], state["bad_epochs"])
        log.info("resumed after epoch %d (best val F1 %.4f)", state["epoch"], best_score[0])

    meta: dict[str, Any] = {
        "name": out.name, "version": time.strftime("%Y.%m.%d"), "recipe": recipe.name, "seed": cfg.seed,
        "command": command, "n_train_docs": len(docs["train"]), "n_val_docs": len(docs["val"]),
        "n_test_docs": len(docs["test"]), "n_train_windows": len(windows), "vocab_size": tokenizer.vocab_size,
        "parameters": sum(p.numel() for p in model.parameters()), "base": str(cfg.base) if cfg.base else None,
        "hardware": f"{platform.machine()} {os.cpu_count()} CPU threads, torch {torch.__version__}, {device}",
    }
    manifest_path = cfg.data / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        meta["data_recipe"] = {k: v for k, v in manifest.items() if k != "splits"}

    rng = np.random.default_rng(cfg.seed)
    for _ in range(start_epoch):  # the same batch order as an uninterrupted run
        length_batches(windows, recipe.batch_size, rng)
    epoch = start_epoch - 1
    out_of_time = False
    # a resumed run continues its log; a fresh run into an old checkpoint directory starts a new one
    with open(out / LOG_FILE, "a" if start_epoch else "w", encoding="utf-8") as log_fh:
        for epoch in range(start_epoch, recipe.epochs):
            model.train()
            batches = length_batches(windows, recipe.batch_size, rng)
            sums = {k: 0.0 for k in ("loss", *(f"{h}_loss" for h in HEAD_NAMES))}
            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not cfg.progress)
            t0 = time.time()
            for step, batch_windows in enumerate(bar):
                batch = {k: v.to(device) for k, v in collate(batch_windows, tokenizer.pad_id).items()}
                with torch.autocast(device, dtype=amp_dtype, enabled=device == "cuda"):
                    result = model(**batch)
                (result["loss"] / recipe.grad_accum).backward()
                if (step + 1) % recipe.grad_accum == 0 or step + 1 == len(batches):
                    torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                for k in sums:
                    sums[k] += float(result[k].detach())
                bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.4f}")
                if cfg.max_minutes and (time.time() - started) / 60 > cfg.max_minutes:
                    out_of_time = True
                    break
            n = max(1, step + 1)
            val = evaluate_pages(model, val_pages, tokenizer.pad_id)
            record = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
                      "lr": scheduler.get_last_lr()[0], **{f"train_{k}": v / n for k, v in sums.items()},
                      **{f"val_{h}_{m}": v for h, ms in val.items() for m, v in ms.items()}}
            log_fh.write(json.dumps(record) + "\n")
            log_fh.flush()
            log.info("epoch %d: %s", epoch + 1, record)
            if cfg.progress:
                tqdm.write(f"epoch {epoch + 1}: loss {record['train_loss']:.4f} val entity F1 "
                           f"{val['ner']['f1']:.4f} row F1 {val['table_row']['f1']:.4f} cell F1 {val['cell']['f1']:.4f}")
            # entity F1 decides; table-row and cell F1 break ties
            score = (val["ner"]["f1"], val["table_row"]["f1"], val["cell"]["f1"])
            if score > best_score:
                best_score, best_epoch, bad_epochs = score, epoch + 1, 0
                save_checkpoint(out, model, tokenizer, recipe, {**meta, "best_val": val}, fp16=cfg.fp16_weights)
            else:
                bad_epochs += 1
            resume_dir.mkdir(exist_ok=True)
            tokenizer.save(resume_dir)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch, "best_score": list(best_score),
                        "best_epoch": best_epoch, "bad_epochs": bad_epochs}, resume_dir / "state.pt.tmp")
            os.replace(resume_dir / "state.pt.tmp", resume_dir / "state.pt")
            if bad_epochs >= recipe.patience or out_of_time:
                break

    # final: reload the best weights, score the held-out layouts, write the model card

    best = load_checkpoint(out)
    meta.update(epochs_run=epoch + 1, best_epoch=best_epoch, best_val_ner_f1=best_score[0],
                train_minutes=(time.time() - started) / 60, stopped_early=out_of_time)
    meta["temperature"] = fit_temperature(best.model, val_pages, tokenizer.pad_id)
    if docs["test"]:
        test_pages = encode("test")
        meta["test_metrics"] = evaluate_pages(best.model, test_pages, tokenizer.pad_id)
    save_checkpoint(out, best.model, best.tokenizer, recipe, meta, fp16=cfg.fp16_weights,
                    card=_model_card(cfg, meta))
    shutil.rmtree(resume_dir, ignore_errors=True)
    return meta
