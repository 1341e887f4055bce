"""Checkpoint directories: config.json, model.safetensors, tokenizer.json, labels.json, recipe.json,
README.md (model card). Loadable with ``load_checkpoint(dir)`` in the spirit of ``from_pretrained``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoicegen.model.recipes import Recipe
from invoicegen.model.tokenizer import WordTokenizer
from invoicegen.schema import HEADS

if TYPE_CHECKING:  # torch and transformers (~4 s of imports) only where the torch model is built
    from transformers import LayoutLMv3Config

    from invoicegen.model.multitask import MultiTaskLayoutLMv3

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
LABELS = "labels.json"
RECIPE = "recipe.json"
CARD = "README.md"
META = "training.json"


class CheckpointError(ValueError):
    """A checkpoint directory is missing files or does not match this version's label schema."""


class _Named:
    meta: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.name))

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "0"))


@dataclass
class Checkpoint(_Named):
    model: MultiTaskLayoutLMv3
    tokenizer: WordTokenizer
    recipe: Recipe
    meta: dict[str, Any]
    path: Path


@dataclass
class CheckpointInfo(_Named):
    """Everything of a checkpoint but the torch model: what an exported (ONNX) model runs with.
    Loading it imports neither torch nor transformers."""

    tokenizer: WordTokenizer
    recipe: Recipe
    meta: dict[str, Any]
    path: Path


def save_checkpoint(path: str | Path, model: MultiTaskLayoutLMv3, tokenizer: WordTokenizer, recipe: Recipe,
                    meta: dict[str, Any], *, fp16: bool = False, card: str | None = None) -> Path:
    """Write a checkpoint directory. ``fp16`` halves the size on disk; loading casts back to fp32."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16 if fp16 and v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    save_file(state, str(path / WEIGHTS), metadata={"format": "pt"})
    config = model.config.to_dict()
    config["invoicegen"] = {"loss_weights": model.loss_weights}
    (path / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
    (path / LABELS).write_text(json.dumps({h: list(labels) for h, labels in HEADS.items()}, indent=2))
    (path / RECIPE).write_text(json.dumps(recipe.to_dict(), indent=2))
    (path / META).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    tokenizer.save(path)
    if card is not None:
        (path / CARD).write_text(card)
    return path


def is_checkpoint(path: str | Path) -> bool:
    """Is ``path`` an InvoiceGen checkpoint directory (rather than a pretrained LayoutLMv3)?"""
    return (Path(path) / RECIPE).exists() and (Path(path) / LABELS).exists()


def load_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """The tokenizer, recipe and metadata of a checkpoint directory (checked like
    :func:`load_checkpoint`), without building the torch model."""
    path = Path(path)
    for name in (WEIGHTS, CONFIG, LABELS, RECIPE):
        if not (path / name).exists():
            raise CheckpointError(f"{path} is not an InvoiceGen checkpoint: {name} is missing")
    labels = json.loads((path / LABELS).read_text())
    if {h: tuple(v) for h, v in labels.items()} != HEADS:
        raise CheckpointError(f"{path} was trained with a different label schema than this InvoiceGen version")
    recipe = Recipe.from_dict(json.loads((path / RECIPE).read_text()))
    meta = json.loads((path / META).read_text()) if (path / META).exists() else {}
    return CheckpointInfo(WordTokenizer.load(path), recipe, meta, path)


def load_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    """Load a checkpoint directory written by ``save_checkpoint`` (weights cast to fp32)."""
    from safetensors.torch import load_file
    from transformers import LayoutLMv3Config

    from invoicegen.model.multitask import MultiTaskLayoutLMv3

    info = load_checkpoint_info(path)
    path = info.path
    raw = json.loads((path / CONFIG).read_text())
    extra = raw.pop("invoicegen", {})
    config = LayoutLMv3Config.from_dict(raw)
    config._attn_implementation = "eager"
    model = MultiTaskLayoutLMv3(config, loss_weights=extra.get("loss_weights"))
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path / WEIGHTS)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the model (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    model.to(device).eval()
    return Checkpoint(model, info.tokenizer, info.recipe, info.meta, path)


def load_base_backbone(model: MultiTaskLayoutLMv3, base: str | Path) -> None:
    """Initialise the backbone from a pretrained LayoutLMv3 directory (``save_pretrained`` layout)."""
    from transformers import LayoutLMv3Model

    pretrained = LayoutLMv3Model.from_pretrained(str(base))
    missing, unexpected = model.backbone.load_state_dict(pretrained.state_dict(), strict=False)
    if unexpected:
        raise CheckpointError(f"{base}: unexpected backbone weights {unexpected[:5]}")


def base_config(base: str | Path, recipe: Recipe) -> LayoutLMv3Config:
    """A pretrained directory's config, with the settings this project relies on."""
    from transformers import LayoutLMv3Config

    cfg = LayoutLMv3Config.from_pretrained(str(base))
    cfg.visual_embed = recipe.visual_embed and cfg.visual_embed
    cfg._attn_implementation = "eager"
    return cfg
