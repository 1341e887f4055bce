"""The captions a page may print, as the extractor matches them: one index built from the factory's
caption tables (``synth.locales``), shared by the caption reader (``extract.captions``) and the
decoder, which never takes a caption into a party's name (``extract.decode``)."""

from __future__ import annotations

import re
from functools import cache

from invoicegen.synth.locales import LABELS, LOCALE_LABELS, LOCALES, READ_ONLY_LABELS

_PUNCT = re.compile(r"^[^\w#]+|[^\w#]+$")
LONGEST_CAPTION = 5
"""Words of the longest caption matched (longer ones are sentences: thanks, notes)."""


def token(word: str) -> str:
    """A word as captions are matched: lower case, without the punctuation around it."""
    return _PUNCT.sub("", word.casefold())


@cache
def caption_index() -> dict[tuple[str, ...], frozenset[str]]:
    """Every printed caption of the factory (and the few it does not print yet, READ_ONLY_LABELS) as
    its tokens -> the caption keys it stands for."""
    index: dict[tuple[str, ...], set[str]] = {}
    taxes = sorted({name for spec in LOCALES.values() for name in spec.tax_names})
    for table in (*LABELS.values(), *LOCALE_LABELS.values(), READ_ONLY_LABELS):
        for key, texts in table.items():
            for text in texts:
                for printed in ([text.replace("{tax}", t) for t in taxes] if "{tax}" in text else [text]):
                    tokens = tuple(t for t in (token(w) for w in printed.split()) if t)
                    if tokens and "{" not in printed and len(tokens) <= LONGEST_CAPTION:
                        index.setdefault(tokens, set()).add(key)
    return {k: frozenset(v) for k, v in index.items()}
