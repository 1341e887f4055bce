"""ONNX export (opset 14, dynamic batch and sequence axes) and INT8 dynamic quantisation.

The legacy TorchScript-based exporter is used: it handles LayoutLMv3 here, and the eager attention
implementation keeps the graph free of SDPA special cases (ENVIRONMENT-NOTES).

A text-only model is exported with an ``attention_bias`` input in place of ``attention_mask``: its
relative-position biases and the padding mask, which the runtime computes with numpy
(``model.attention_bias``: why) from tables written into the file's metadata. A model with visual
embeddings keeps the biases in the graph (its image patches have positions of their own)."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from invoicegen.model import attention_bias as ab
from invoicegen.model.checkpoint import Checkpoint, load_checkpoint
from invoicegen.model.multitask import MultiTaskLayoutLMv3
from invoicegen.model.runtime import ONNX_FILE, ONNX_INT8_FILE, OUTPUTS
from invoicegen.schema import HEADS

__all__ = ["ONNX_FILE", "ONNX_INT8_FILE", "OUTPUTS", "export_onnx"]


class _ExportWrapper(nn.Module):
    """Positional inputs, tuple outputs: what the ONNX exporter wants. The third input is the
    attention mask, or, for a text-only model, the whole additive attention bias: transformers takes
    a 4-D mask as it is and adds it to the scores (see ``_bias_as_input``)."""

    def __init__(self, model: nn.Module, visual: bool) -> None:
        super().__init__()
        self.model = model
        self.visual = visual

    def forward(self, input_ids: torch.Tensor, bbox: torch.Tensor, attention_mask: torch.Tensor,
                pixel_values: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids=input_ids, bbox=bbox, attention_mask=attention_mask,
                         pixel_values=pixel_values if self.visual else None)
        return tuple(out[name] for name in OUTPUTS)


def attention_bias(model: MultiTaskLayoutLMv3) -> ab.AttentionBias:
    """The model's relative-position tables as the runtime uses them: looked up with the encoder's own
    bucket function for every clamped distance, divided by √(head size) as the encoder does."""
    encoder, config = model.backbone.encoder, model.config
    scale = math.sqrt(config.hidden_size // config.num_attention_heads)

    def table(linear: nn.Linear, num_buckets: int, max_distance: int) -> ab.DistanceTable:
        distances = torch.arange(-max_distance, max_distance + 1)
        buckets = encoder.relative_position_bucket(distances, num_buckets=num_buckets, max_distance=max_distance)
        values = (linear.weight[:, buckets] / scale).detach().float().numpy()
        return ab.DistanceTable(values, max_distance)

    if not encoder.has_relative_attention_bias:  # transformers uses the 2-D bias only with the 1-D one
        return ab.AttentionBias()
    sequence = table(encoder.rel_pos_bias, config.rel_pos_bins, config.max_rel_pos)
    if not encoder.has_spatial_attention_bias:
        return ab.AttentionBias(sequence)
    return ab.AttentionBias(sequence,
                            table(encoder.rel_pos_x_bias, config.rel_2d_pos_bins, config.max_rel_2d_pos),
                            table(encoder.rel_pos_y_bias, config.rel_2d_pos_bins, config.max_rel_2d_pos))


@contextlib.contextmanager
def _bias_as_input(model: MultiTaskLayoutLMv3) -> Iterator[None]:
    """While exporting, the encoder computes no relative-position bias: the bias input holds it."""
    encoder = model.backbone.encoder
    encoder._compute_position_bias = lambda position_ids, bbox: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        del encoder._compute_position_bias


def export_onnx(checkpoint: Checkpoint | str | Path, out: str | Path, *, opset: int = 14, int8: bool = False) -> Path:
    """Write the checkpoint as ONNX (and quantise it to INT8 when asked); returns the written file."""
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fp32_path = out.with_suffix(".fp32.onnx") if int8 else out
    model = ckpt.model.eval()
    visual = bool(model.config.visual_embed)
    wrapper = _ExportWrapper(model, visual)
    seq = 16
    args: tuple[torch.Tensor, ...] = (torch.full((1, seq), 5, dtype=torch.long),
                                      torch.zeros((1, seq, 4), dtype=torch.long))
    axes: dict[str, dict[int, str]] = {"input_ids": {0: "batch", 1: "sequence"}, "bbox": {0: "batch", 1: "sequence"}}
    bias = None if visual else attention_bias(model)
    if bias is None:
        args += (torch.ones((1, seq), dtype=torch.long),)
        inputs = ["input_ids", "bbox", "attention_mask"]
        axes["attention_mask"] = {0: "batch", 1: "sequence"}
        size = model.config.input_size
        args += (torch.zeros((1, 3, size, size)),)
        inputs.append("pixel_values")
        axes["pixel_values"] = {0: "batch"}
    else:
        args += (torch.zeros((1, bias.heads, seq, seq)),)
        inputs = ["input_ids", "bbox", ab.INPUT]
        axes[ab.INPUT] = {0: "batch", 2: "sequence", 3: "sequence"}
    for name in OUTPUTS:
        axes[name] = {0: "batch", 1: "sequence"}
    with _bias_as_input(model) if bias is not None else contextlib.nullcontext():
        torch.onnx.export(wrapper, args, str(fp32_path), input_names=inputs, output_names=OUTPUTS,
                          dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
    _add_metadata(fp32_path, ckpt, bias=bias)
    if not int8:
        return fp32_path
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32_path), str(out), weight_type=QuantType.QInt8)
    _add_metadata(out, ckpt, quantized=True, bias=bias)
    fp32_path.unlink()
    return out


def _add_metadata(path: Path, ckpt: Checkpoint, quantized: bool = False, bias: ab.AttentionBias | None = None
                  ) -> None:
    import onnx

    model = onnx.load(str(path))
    meta = {"labels": json.dumps({h: list(v) for h, v in HEADS.items()}),
            "recipe": json.dumps(ckpt.recipe.to_dict()), "model_name": ckpt.name,
            "model_version": ckpt.version, "quantized": str(quantized).lower()}
    if bias is not None:
        meta[ab.METADATA_KEY] = bias.to_metadata()
    del model.metadata_props[:]
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
