"""Word-level front end of a byte-level BPE tokenizer.

The model labels *words*; the tokenizer turns each word into sub-tokens. Byte-level BPE never
meets an unknown character, which matters for OCR noise and seven languages of accents."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer
from tokenizers.implementations import ByteLevelBPETokenizer

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
"""RoBERTa/LayoutLMv3 order: ids 0..4, so a pretrained LayoutLMv3 vocabulary lines up."""

MAX_PIECES_PER_WORD = 12
"""Long junk words (URLs, OCR garbage) are cut so one word cannot eat a window."""

TOKENIZER_FILE = "tokenizer.json"


class WordTokenizer:
    """Encodes pre-split words into sub-token ids, one list per word."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.cls_id = self._id("<s>")
        self.pad_id = self._id("<pad>")
        self.sep_id = self._id("</s>")
        self.unk_id = self._id("<unk>")
        self._cache: dict[str, list[int]] = {}

    def _id(self, token: str) -> int:
        idx = self.tokenizer.token_to_id(token)
        if idx is None:
            raise ValueError(f"tokenizer has no {token} token")
        return idx

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> WordTokenizer:
        bpe = ByteLevelBPETokenizer(add_prefix_space=True)
        special: list[str | AddedToken] = list(SPECIAL_TOKENS)
        bpe.train_from_iterator(iter(texts), vocab_size=vocab_size, min_frequency=min_frequency,  # type: ignore[arg-type]
                                special_tokens=special, show_progress=False)
        return cls(bpe._tokenizer)

    @classmethod
    def load(cls, directory: str | Path) -> WordTokenizer:
        """Load ``tokenizer.json`` or, as pretrained LayoutLMv3 directories ship, vocab.json + merges.txt."""
        directory = Path(directory)
        if (directory / TOKENIZER_FILE).exists():
            return cls(Tokenizer.from_file(str(directory / TOKENIZER_FILE)))
        if (directory / "vocab.json").exists() and (directory / "merges.txt").exists():
            bpe = ByteLevelBPETokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"),
                                        add_prefix_space=True)
            return cls(bpe._tokenizer)
        raise FileNotFoundError(f"no tokenizer in {directory} (expected {TOKENIZER_FILE} or vocab.json+merges.txt)")

    def save(self, directory: str | Path) -> None:
        self.tokenizer.save(str(Path(directory) / TOKENIZER_FILE))

    def encode_words(self, words: list[str]) -> list[list[int]]:
        """Sub-token ids for each word (never empty: an empty word becomes ``<unk>``)."""
        missing = [w for w in dict.fromkeys(words) if w not in self._cache]
        if missing:
            for word, enc in zip(missing, self.tokenizer.encode_batch(missing, add_special_tokens=False),
                                 strict=True):
                self._cache[word] = enc.ids[:MAX_PIECES_PER_WORD] or [self.unk_id]
            if len(self._cache) > 200_000:
                self._cache.clear()
        return [self._cache[w] for w in words]
