"""ONNX export (opset 14, dynamic batch and sequence axes) and INT8 dynamic quantisation.

The legacy TorchScript-based exporter is used: it handles LayoutLMv3 here, and the eager attention
implementation keeps the graph free of SDPA special cases (ENVIRONMENT-NOTES)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from invoicegen.model.checkpoint import Checkpoint, load_checkpoint
from invoicegen.model.runtime import ONNX_FILE, ONNX_INT8_FILE, OUTPUTS
from invoicegen.schema import HEADS

__all__ = ["ONNX_FILE", "ONNX_INT8_FILE", "OUTPUTS", "export_onnx"]


class _ExportWrapper(nn.Module):
    """Positional inputs, tuple outputs: what the ONNX exporter wants."""

    def __init__(self, model: nn.Module, visual: bool) -> None:
        super().__init__()
        self.model = model
        self.visual = visual

    def forward(self, input_ids: torch.Tensor, bbox: torch.Tensor, attention_mask: torch.Tensor,
                pixel_values: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, bbox=bbox, attention_mask=attention_mask,
                         pixel_values=pixel_values if self.visual else None)
        return tuple(out[name] for name in OUTPUTS)


def export_onnx(checkpoint: Checkpoint | str | Path, out: str | Path, *, opset: int = 14, int8: bool = False) -> Path:
    """Write the checkpoint as ONNX (and quantise it to INT8 when asked); returns the written file."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fp32_path = out.with_suffix(".fp32.onnx") if int8 else out
    visual = bool(ckpt.model.config.visual_embed)
    wrapper = _ExportWrapper(ckpt.model.eval(), visual)
    seq = 16
    args: tuple[torch.Tensor, ...] = (torch.full((1, seq), 5, dtype=torch.long),
                                      torch.zeros((1, seq, 4), dtype=torch.long),
                                      torch.ones((1, seq), dtype=torch.long))
    inputs = ["input_ids", "bbox", "attention_mask"]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "bbox": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"}}
    if visual:
        size = ckpt.model.config.input_size
        args += (torch.zeros((1, 3, size, size)),)
        inputs.append("pixel_values")
        axes["pixel_values"] = {0: "batch"}
    for name in OUTPUTS:
        axes[name] = {0: "batch", 1: "sequence"}
    torch.onnx.export(wrapper, args, str(fp32_path), input_names=inputs, output_names=OUTPUTS,
                      dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    _add_metadata(fp32_path, ckpt)
    if not int8:
        return fp32_path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32_path), str(out), weight_type=QuantType.QInt8)
    _add_metadata(out, ckpt, quantized=True)
    fp32_path.unlink()
    return out


def _add_metadata(path: Path, ckpt: Checkpoint, quantized: bool = False) -> None:
    import onnx

    model = onnx.load(str(path))
    meta = {"labels": json.dumps({h: list(v) for h, v in HEADS.items()}),
            "recipe": json.dumps(ckpt.recipe.to_dict()), "model_name": ckpt.name,
            "model_version": ckpt.version, "quantized": str(quantized).lower()}
    del model.metadata_props[:]
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
