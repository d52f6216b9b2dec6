"""Text normalisation shared by synthesis and evaluation, so "grounded" and "correct" mean the same match."""

from __future__ import annotations


def normalize(text: str) -> str:
    """SQuAD's normalisation (torchmetrics'): lower case, no punctuation, no articles, single spaces."""
    from torchmetrics.functional.text.squad import _normalize_text

    return _normalize_text(text)
