"""The multi-task LayoutLMv3 model: tokenizer, encoding, heads, training and checkpoints."""
