"""Questions asked in another sentence's words (`synth --cross-questions`).

A rule-made question keeps its sentence's words, so a reader trained on it learns to match words;
people's questions share about 60% of their content words with the sentence that answers them
(docs/ft-rag.md, item 6). Here a fact is asked again with the question of a fact from *another*
chunk that has the same answer, found as a retriever would find it: the partner whose sentence
shares the most content words with this fact's sentence, at least two. "What broadcast Super Bowl
50 in the U.S.?" -> "CBS", over the chunk that says "CBS broadcast special episodes of its late
night talk shows as its lead-out programs for Super Bowl 50". Only a name or a figure is paired:
"two" or "the city" has partners that say something else entirely. The answer and its sentence
stay this fact's, so the reader must find the answer by its kind and its neighbours rather than
by the question's words (Fabbri et al. 2020: +14% relative F1 for an unsupervised reader).

Only train facts are paired, with train partners: an eval question must not reach the training rows.
On a folder of documents such partners are few (docs/ft-rag.md): Fabbri et al. retrieved them from
all of Wikipedia.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from ragtune.core.records import Pair
from ragtune.core.text import normalize

KIND = "cross"
MIN_SHARED = 2  # content words the two sentences share; at 1, most partners are about something else


def cross_pairs(pairs: list[Pair], pair_id) -> list[Pair]:
    """A pair of kind "cross" for each train original with a partner; `pair_id(chunk_id, question, answer)` names it."""
    from spacy.lang.en.stop_words import STOP_WORDS

    originals = [p for p in pairs if p.split == "train" and p.kind == "original" and _specific(p.answer, STOP_WORDS)]
    by_answer: dict[str, list[Pair]] = defaultdict(list)
    for p in originals:
        by_answer[normalize(p.answer)].append(p)
    # partners share the answer, so each sentence's words are counted once, the answer's left out
    words = {p.id: set(normalize(p.evidence).split()) - STOP_WORDS - set(normalize(p.answer).split()) for p in originals}
    out = []
    for p in originals:
        partner = _partner(p, by_answer[normalize(p.answer)], words)
        if partner is not None:
            out.append(replace(p, id=pair_id(p.chunk_id, partner.question, p.answer), question=partner.question, kind=KIND))
    return out


def _partner(p: Pair, same_answer: list[Pair], words: dict[str, set[str]]) -> Pair | None:
    """Of the facts with p's answer in other chunks and other sentences, the one whose sentence
    shares most content words with p's (at least MIN_SHARED; the first on ties)."""
    best, shared = None, MIN_SHARED - 1
    for q in same_answer:
        if q.chunk_id == p.chunk_id or normalize(q.evidence) == normalize(p.evidence):  # overlapping chunks repeat a sentence
            continue
        n = len(words[p.id] & words[q.id])
        if n > shared:
            best, shared = q, n
    return best


def _specific(answer: str, stop_words) -> bool:
    """A name or a figure: a digit, or a capitalised word that is not a stop word ("The")."""
    return any(c.isdigit() for c in answer) or any(w[:1].isupper() and w.lower() not in stop_words for w in answer.split())
