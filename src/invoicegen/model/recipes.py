"""Named model + training recipes. A recipe fixes the architecture and the training defaults so a
checkpoint can say exactly how it was made (`--recipe small`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Recipe:
    name: str
    # architecture (LayoutLMv3Config fields)
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    coordinate_size: int
    shape_size: int
    vocab_size: int = 8000
    visual_embed: bool = False
    # 1D relative + 2D spatial attention biases (LayoutLMv3's spatial-aware self-attention)
    attention_bias: bool = True
    dropout: float = 0.1
    # training defaults
    epochs: int = 8
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    patience: int = 3
    max_length: int = 512
    window_overlap: int = 128
    loss_weights: dict[str, float] = field(default_factory=lambda: {"ner": 1.0, "table": 0.7, "cell": 0.5})

    def __post_init__(self) -> None:
        if 4 * self.coordinate_size + 2 * self.shape_size != self.hidden_size:
            raise ValueError(f"recipe {self.name}: 4*coordinate_size + 2*shape_size must equal hidden_size")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def architecture(self) -> tuple[Any, ...]:
        """The fields that shape the network (a checkpoint trains on only with the same ones)."""
        return (self.hidden_size, self.num_hidden_layers, self.num_attention_heads, self.intermediate_size,
                self.coordinate_size, self.shape_size, self.visual_embed, self.attention_bias)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def with_overrides(self, **overrides: Any) -> Recipe:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


RECIPES: dict[str, Recipe] = {
    # for tests: trains in seconds
    "tiny": Recipe("tiny", hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                   coordinate_size=12, shape_size=8, vocab_size=2000, dropout=0.0, learning_rate=2e-3,
                   epochs=30, batch_size=4, warmup_ratio=0.0, patience=100),
    # the shipped default: ~5.5M parameters, < 80 ms per 512-token window on 2 CPU cores
    "small": Recipe("small", hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                    coordinate_size=48, shape_size=32),
    # layoutlmv3-base geometry, for fine-tuning from a pretrained directory with --base
    "base": Recipe("base", hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                   coordinate_size=128, shape_size=128, vocab_size=50265, learning_rate=5e-5, epochs=5),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}") from None
