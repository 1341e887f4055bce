"""LayoutLMv3 backbone with three per-token heads: entity tags, table role and cell role."""

from __future__ import annotations

import types

import torch
from torch import nn
from transformers import LayoutLMv3Config, LayoutLMv3Model
from transformers.models.layoutlmv3.modeling_layoutlmv3 import LayoutLMv3Encoder

from invoicegen.model.recipes import Recipe
from invoicegen.schema import HEADS, IGNORE_INDEX

DEFAULT_LOSS_WEIGHTS = {"ner": 1.0, "table": 0.7, "cell": 0.5}


def backbone_config(recipe: Recipe, vocab_size: int, pad_token_id: int = 1) -> LayoutLMv3Config:
    """LayoutLMv3Config for a recipe. With ``recipe.attention_bias`` the 1D relative and 2D spatial
    attention biases are on (they tell "same line" apart from "next line" directly); the model then
    restores their gradient, see ``train_attention_biases``."""
    cfg = LayoutLMv3Config(
        vocab_size=vocab_size,
        hidden_size=recipe.hidden_size,
        num_hidden_layers=recipe.num_hidden_layers,
        num_attention_heads=recipe.num_attention_heads,
        intermediate_size=recipe.intermediate_size,
        coordinate_size=recipe.coordinate_size,
        shape_size=recipe.shape_size,
        max_position_embeddings=514,
        hidden_dropout_prob=recipe.dropout,
        attention_probs_dropout_prob=recipe.dropout,
        has_relative_attention_bias=recipe.attention_bias,
        has_spatial_attention_bias=recipe.attention_bias,
        visual_embed=recipe.visual_embed,
        pad_token_id=pad_token_id,
    )
    cfg._attn_implementation = "eager"
    return cfg


def _lookup_with_grad(encoder: LayoutLMv3Encoder, positions: torch.Tensor, bias: nn.Linear, num_buckets: int,
                      max_distance: int) -> torch.Tensor:
    """``LayoutLMv3Encoder._relative_position_lookup`` without its ``torch.no_grad()``: the bias of
    every (query, key) pair is ``bias.weight[:, bucket(key - query)]``, shape (batch, heads, L, L)."""
    distances = torch.arange(-max_distance, max_distance + 1, device=positions.device)
    buckets = encoder.relative_position_bucket(distances, num_buckets=num_buckets, max_distance=max_distance)
    positions = positions.int()
    pair = (positions.unsqueeze(-2) - positions.unsqueeze(-1)).clamp(-max_distance, max_distance) + max_distance
    table = bias.weight[:, buckets].t().contiguous()  # (2 * max_distance + 1, heads)
    # rows of the transposed table, not columns of the table: onnxruntime's Gather copies a column
    # entry by entry (three such lookups were 37 % of the INT8 model's time), a row in one piece
    rows = table.index_select(0, pair.flatten())
    return rows.view(*pair.shape, table.shape[1]).permute(0, 3, 1, 2)


def train_attention_biases(backbone: LayoutLMv3Model) -> None:
    """Let the relative/spatial attention-bias tables learn. transformers (4.57, 5.x) looks them up
    under ``torch.no_grad()``, so they would stay at their random initial values for the whole
    training (ENVIRONMENT-NOTES); this also covers a pretrained ``--base`` backbone, which has them on."""
    encoder = backbone.encoder
    if not (encoder.has_relative_attention_bias or encoder.has_spatial_attention_bias):
        return
    if not hasattr(encoder, "_relative_position_lookup"):
        raise RuntimeError("this transformers version has no LayoutLMv3Encoder._relative_position_lookup; "
                           "the attention-bias gradient cannot be restored")
    encoder._relative_position_lookup = types.MethodType(_lookup_with_grad, encoder)  # type: ignore[method-assign]


class MultiTaskLayoutLMv3(nn.Module):
    """``forward`` returns ``ner_logits``, ``table_logits``, ``cell_logits`` (and ``loss`` given labels)."""

    def __init__(self, config: LayoutLMv3Config, loss_weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.config = config
        self.loss_weights = dict(loss_weights or DEFAULT_LOSS_WEIGHTS)
        self.backbone = LayoutLMv3Model(config)
        train_attention_biases(self.backbone)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.heads = nn.ModuleDict({name: nn.Linear(config.hidden_size, len(labels))
                                    for name, labels in HEADS.items()})
        for head in self.heads.values():
            assert isinstance(head, nn.Linear)
            nn.init.normal_(head.weight, std=config.initializer_range)
            nn.init.zeros_(head.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        bbox: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        ner_labels: torch.Tensor | None = None,
        table_labels: torch.Tensor | None = None,
        cell_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        out = self.backbone(input_ids=input_ids, bbox=bbox, attention_mask=attention_mask,
                            pixel_values=pixel_values if self.config.visual_embed else None)
        hidden = self.dropout(out.last_hidden_state[:, : input_ids.shape[1]])
        result = {f"{name}_logits": head(hidden) for name, head in self.heads.items()}
        labels = {"ner": ner_labels, "table": table_labels, "cell": cell_labels}
        if any(v is not None for v in labels.values()):
            loss = hidden.new_zeros(())
            for name, lab in labels.items():
                if lab is None:
                    continue
                logits = result[f"{name}_logits"]
                head_loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab.reshape(-1),
                                                        ignore_index=IGNORE_INDEX)
                result[f"{name}_loss"] = head_loss.detach()
                loss = loss + self.loss_weights.get(name, 1.0) * head_loss
            result["loss"] = loss
        return result
