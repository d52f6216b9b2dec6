"""The checks a draft must pass to become a training pair. Each drop is counted by reason.

    malformed          the generator's output could not be parsed
    ungrounded         the answer is not in its chunk (normalised containment, or token overlap)
    answer_in_question the question gives its answer away
    length             question or answer outside the word bounds
    duplicate          the same question and answer again (normalised)
    near_duplicate     a question this close (embedding cosine) to one of another fact
    round_trip         (optional) the engine, reading the chunk, answers something else

Paraphrases of one fact are meant to be alike, so near-duplicates are only looked for
between different facts.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ragtune.core.records import Draft
from ragtune.core.text import normalize

PUNCTUATION = re.compile(r"[^\w\s]")
REASONS = ("malformed", "ungrounded", "answer_in_question", "length", "duplicate", "near_duplicate", "round_trip", "removed")


def holds(text: str, answer: str) -> bool:
    """The text says the answer word for word (case, punctuation, articles and line breaks aside),
    on word boundaries: "Rollo" is not in "Rollonia" nor "all" in "generally"."""
    a = _words(answer)
    return bool(a) and f" {a} " in f" {_words(text)} "


def grounded(answer: str, text: str, min_overlap: float) -> bool:
    """The answer is in the text, verbatim after normalising, or by enough of its tokens."""
    if holds(text, answer):
        return True
    words, present = _words(answer).split(), set(_words(text).split())
    return bool(words) and sum(w in present for w in words) / len(words) >= min_overlap


def _words(text: str) -> str:
    """SQuAD's normalisation, with punctuation parting words rather than deleted, so "Tesla's"
    holds "Tesla" and "$40,000/year" holds "40,000" (SQuAD's makes them "teslas", "40000year")."""
    return normalize(PUNCTUATION.sub(" ", text))


def check(draft: Draft, chunk_text: str, cfg) -> str | None:
    """The first per-draft reason to drop it, or None to keep it."""
    if draft.error or not draft.question.strip() or not draft.answer.strip():
        return "malformed"
    if not grounded(draft.answer, chunk_text, cfg.grounding_overlap):
        return "ungrounded"
    a, q = normalize(draft.answer), normalize(draft.question)
    if a and f" {a} " in f" {q} ":
        return "answer_in_question"
    if (
        not cfg.min_question_words <= len(draft.question.split()) <= cfg.max_question_words
        or len(draft.answer.split()) > cfg.max_answer_words
    ):
        return "length"
    return None


@dataclass
class Keyed:
    """A draft that passed `check`, with the group it belongs to across the whole dataset."""

    draft: Draft
    chunk_id: str
    group: str


def exact_duplicates(items: list[Keyed], counts: Counter) -> list[Keyed]:
    """The same question with the same answer, normalised, anywhere: the first one is kept."""
    seen, out = set(), []
    for it in items:
        key = (normalize(it.draft.question), normalize(it.draft.answer))
        if key in seen:
            counts["duplicate"] += 1
        else:
            seen.add(key)
            out.append(it)
    return out


def near_duplicates(items: list[Keyed], vectors: np.ndarray, threshold: float, counts: Counter) -> np.ndarray:
    """A keep-mask: a question this close (cosine) to an earlier kept one of another fact goes."""
    keep = np.ones(len(items), dtype=bool)
    if threshold >= 1 or not items:
        return keep
    groups = np.array([hash(it.group) for it in items])
    for start in range(0, len(items), 1024):  # blocks keep the similarity matrix small
        sims = vectors[start : start + 1024] @ vectors.T
        for row, i in enumerate(range(start, min(start + 1024, len(items)))):
            close = (sims[row, :i] >= threshold) & keep[:i] & (groups[:i] != groups[i])
            keep[i] = not close.any()
    counts["near_duplicate"] += int((~keep).sum())
    return keep


def max_similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Leakage check: the largest cosine between a row of `a` and one of `b`, and the mean of each row's best."""
    if len(a) == 0 or len(b) == 0:
        return 0.0, 0.0
    best = np.concatenate([(a[s : s + 1024] @ b.T).max(axis=1) for s in range(0, len(a), 1024)])
    return float(best.max()), float(best.mean())
