"""LayoutLMv3 backbone with three per-token heads: entity tags, table role and cell role."""

from __future__ import annotations

import torch
from torch import nn
from transformers import LayoutLMv3Config, LayoutLMv3Model

from invoicegen.model.recipes import Recipe
from invoicegen.schema import HEADS, IGNORE_INDEX

DEFAULT_LOSS_WEIGHTS = {"ner": 1.0, "table": 0.7, "cell": 0.5}


def backbone_config(recipe: Recipe, vocab_size: int, pad_token_id: int = 1) -> LayoutLMv3Config:
    """LayoutLMv3Config for a recipe. Relative/spatial attention biases are off: transformers looks
    them up under no_grad, so they would never train (ENVIRONMENT-NOTES); layout still enters through
    the x/y/w/h embeddings, which do train."""
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
        has_relative_attention_bias=False,
        has_spatial_attention_bias=False,
        visual_embed=recipe.visual_embed,
        pad_token_id=pad_token_id,
    )
    cfg._attn_implementation = "eager"
    return cfg


class MultiTaskLayoutLMv3(nn.Module):
    """``forward`` returns ``ner_logits``, ``table_logits``, ``cell_logits`` (and ``loss`` given labels)."""

    def __init__(self, config: LayoutLMv3Config, loss_weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.config = config
        self.loss_weights = dict(loss_weights or DEFAULT_LOSS_WEIGHTS)
        self.backbone = LayoutLMv3Model(config)
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
