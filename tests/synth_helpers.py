"""Helpers shared by the factory tests."""

from __future__ import annotations


def instances(pages, entity: str) -> list[str]:
    """The printed text of every instance of ``entity`` on labelled pages (IOB2 tags), in order."""
    out: list[list[str]] = []
    cur: list[str] | None = None
    for p in pages:
        for word, tag in zip(p.words, p.ner, strict=True):
            if tag == f"B-{entity}":
                cur = [word]
                out.append(cur)
            elif tag == f"I-{entity}" and cur is not None:
                cur.append(word)
            else:
                cur = None
    return [" ".join(x) for x in out]
