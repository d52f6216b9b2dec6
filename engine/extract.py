"""Extractive answers: the sentences of the retrieved chunks that answer an open question.

A span cannot answer "how", "why" or "which ... (several)", so these get one to three whole
sentences of the chunks, in reading order, each cited `[n]`; a list question gets bullets. A
sentence scores the model's mean log-prob of it as the answer (in the span reader's prompt and
pass) plus the reader's checks: configs/spans.yaml has the weights, bench/answers.py measures
them. The documents' own structure counts too: a list answers a list question, and the answer
under a document's own question (an FAQ) that matches the user's is read whole.
`quote_span` quotes a factoid's sentence the same way, its span in bold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ragtune.core.records import Citation, Hit
from ragtune.engine.cite import citation
from ragtune.loaders import JSON_SUFFIXES

BULLET = re.compile(r"^\s*(?:[-*•▪‣◦]|\d{1,2}[.)])\s+")
FIELD = re.compile(r"^[a-z_]{2,20}:\s+")  # a JSON field's name, as the JSON loader writes it: "answer: Yes, ..."
QUOTE_WORDS = 40  # a longer sentence is quoted around its span, with ellipses


@dataclass(frozen=True)
class Sentence:
    """One sentence (or list item) of a retrieved chunk, with the reader's checks."""

    text: str
    hit: int  # its chunk's place among the hits: it is cited as [hit + 1]
    pos: int  # its place within the chunk: reading order
    evidence: float  # share of the question's content words (by stem) it holds, each weighted by its rarity if known
    bullet: bool = False  # a list item: a bulleted line, or a line under one that ends with ":"
    intro: bool = False  # introduces a list: ends with ":"
    faq: float = 0.0  # the evidence of the document's own question it answers (an FAQ), if any
    block: int = -1  # which of its chunk's questions it answers: one answer is read whole
    heading: float = 0.0  # the evidence of its chunk's heading: "Evaluation > Metrics" for "Which metrics ...?"

    @property
    def words(self) -> int:
        return len(self.text.split())


def split_sentences(hits: list[Hit], question: str, weight=None) -> list[Sentence]:
    """The sentences and list items of every hit's chunk, in order, with their evidence.

    `weight(word)`: how much a question word counts towards evidence (its rarity in the corpus,
    rag/lexical.py `Lexical.idf`); each counts 1 without it.
    """
    from ragtune.engine.spans import _nlp

    nlp = _nlp()
    asked = _weighted(nlp, question, weight)
    out = []
    for h, hit in enumerate(hits):
        pos, block, faq, items, seen = 0, -1, 0.0, False, False
        heading = _evidence(asked, _stems_of(nlp, hit.chunk.heading()))
        fields = Path(hit.chunk.source).suffix.lower() in JSON_SUFFIXES  # elsewhere "base: ..." is a list item's label
        for raw in hit.chunk.text.splitlines():
            bullet = bool(BULLET.match(raw))
            line = " ".join((FIELD.sub("", BULLET.sub("", raw)) if fields else BULLET.sub("", raw)).split())
            if not line:
                items = items and not seen  # a blank line ends a list, unless it comes before the first item
                continue
            implied = items and not bullet  # a line under one that ends with ":" is an item, bulleted or not
            seen = seen or implied
            if line.endswith("?"):  # the document's own question: what follows answers it
                block, faq = block + 1, _evidence(asked, _stems_of(nlp, line))
            for sent in [line] if bullet else [s.text.strip() for s in nlp(line).sents]:
                if (len(sent.split()) < 3 and not bullet) or sent.endswith("?"):  # a heading, a fragment, or a question: never an answer
                    continue
                share = _evidence(asked, _stems_of(nlp, sent))
                out.append(
                    Sentence(sent, h, pos, share, bullet=bullet or implied, intro=sent.endswith(":"), faq=faq, block=block, heading=heading)
                )
                pos += 1
            if line.endswith(":"):
                items, seen = True, False
            elif not (implied or bullet):
                items = False
    return out


def rank(
    sentences: list[Sentence],
    lm: list[float],
    similarity: list[float],
    cfg,
    head: list[float] | None = None,
    is_list: bool = False,
) -> list[tuple[float, Sentence]]:
    """Sentences by total score, best first. `lm`: each one's mean log-prob per token as the
    answer; `similarity`: the cosine of its embedding with the question's; `head`: the reader
    head's relevance of each (engine/head.py), if the adapter has one; `is_list`: the question
    asks for several things, which a list holds."""
    head = head or [0.0] * len(sentences)
    scored = [
        (
            cfg.sentence_lm_weight * lp
            + cfg.sentence_head_weight * r
            + cfg.sentence_evidence_weight * s.evidence
            + cfg.sentence_dense_weight * d
            + cfg.sentence_faq_weight * s.faq
            + cfg.sentence_heading_weight * s.heading
            + (cfg.sentence_list_weight if is_list and (s.bullet or s.intro) else 0.0)
            - cfg.sentence_rank_weight * s.hit
            - cfg.sentence_length_weight * max(0, s.words - QUOTE_WORDS) / QUOTE_WORDS,
            s,
        )
        for s, lp, d, r in zip(sentences, lm, similarity, head)
    ]
    return sorted(scored, key=lambda t: -t[0])


def choose(ranked: list[tuple[float, Sentence]], sentences: list[Sentence], is_list: bool, cfg) -> list[Sentence]:
    """The answer's sentences, in reading order: the best one, then any that score within
    `sentence_margin` of it while the answer stays under `max_words` (of its chunk alone, with
    `one_chunk`: another chunk's sentence mostly adds a citation that holds no answer); a list question takes
    the items that follow a list's opening line, or its best items; the answer to a document's
    own question that matches the user's (by `faq_match`) is read from its start."""
    if not ranked:
        return []
    best_score, best = ranked[0]
    if best.faq >= cfg.faq_match > 0:
        return _answer_of(best, sentences, cfg.max_words)
    if is_list:
        items = _list_after(best, sentences)
        if items:
            return items[: cfg.max_list_items]
    chosen, words = [best], best.words
    for score, s in ranked[1:]:
        if len(chosen) >= cfg.max_sentences or score < best_score - cfg.sentence_margin:
            break
        if words + s.words <= cfg.max_words and s.text != best.text and not (cfg.one_chunk and s.hit != best.hit):
            chosen.append(s)
            words += s.words
    return sorted(chosen, key=lambda s: (s.hit, s.pos))


def render(chosen: list[Sentence], hits: list[Hit], is_list: bool) -> tuple[str, list[Citation]]:
    """The answer's text, each sentence followed by its `[n]`, and the citations it makes."""
    cites: dict[int, Citation] = {}
    last: dict[int, int] = {}  # each chunk's last quoted sentence: a gap between two is marked " … "
    lines = []
    for s in chosen:
        n = s.hit + 1
        quote = cites[n].quote + (" " if last[n] + 1 == s.pos else " … ") + s.text if n in cites else s.text
        cites[n], last[n] = citation(n, hits[s.hit], quote), s.pos
        lines.append(f"{s.text} [{n}]")
    bulleted = is_list and len(chosen) > 1
    text = "\n".join(f"- {line}" for line in lines) if bulleted else " ".join(lines)
    return text, list(cites.values())


def quote_span(span: str, sentence: str, n: int, hit: Hit) -> tuple[str, Citation]:
    """A factoid answer: the span, then the sentence it came from as a quote, cited.

    The citation's `bold` gives the span's place in the quote, for the app to embolden.
    """
    quote = _around(sentence, span) if sentence else span
    at = quote.find(span)
    cited = citation(n, hit, quote, (at, at + len(span)) if at >= 0 else None)
    return f'{span}: "{quote}" [{n}]', cited


def baseline(question: str, hits: list[Hit], top: int = 2) -> str:
    """The cheap baseline bench/answers.py beats: the two sentences of the top two chunks that
    share the most words with the question, in reading order."""
    sents = split_sentences(hits[:top], question)
    best = sorted(sents, key=lambda s: -s.evidence)[:2]
    return " ".join(s.text for s in sorted(best, key=lambda s: (s.hit, s.pos)))


def _answer_of(best: Sentence, sentences: list[Sentence], max_words: int) -> list[Sentence]:
    """The answer that `best` belongs to, under a document's own question, from its first
    sentence while it stays under `max_words` (its first sentence whatever its length)."""
    chosen, words = [], 0
    for s in sentences:
        if s.hit == best.hit and s.block == best.block:
            if chosen and words + s.words > max_words:
                break
            chosen.append(s)
            words += s.words
    return chosen


def _list_after(best: Sentence, sentences: list[Sentence]) -> list[Sentence]:
    """The list a list question's best sentence opens, or belongs to."""
    same = [s for s in sentences if s.hit == best.hit]
    at = next(i for i, s in enumerate(same) if s.pos == best.pos)
    if best.bullet:  # back up to the list's first item
        while at > 0 and same[at - 1].bullet:
            at -= 1
        start = at
    elif best.intro or (at + 1 < len(same) and same[at + 1].bullet):
        start = at + 1
    else:
        return []
    items = []
    for s in same[start:]:
        if not s.bullet:
            break
        items.append(s)
    return items if len(items) > 1 else []


def _around(sentence: str, span: str) -> str:
    """A long sentence cut to about QUOTE_WORDS words around the span."""
    words = sentence.split()
    if len(words) <= QUOTE_WORDS or span not in sentence:
        return sentence
    at = len(sentence[: sentence.find(span)].split())
    lo = max(0, min(at - QUOTE_WORDS // 2, len(words) - QUOTE_WORDS))
    hi = lo + QUOTE_WORDS
    return ("… " if lo else "") + " ".join(words[lo:hi]) + (" …" if hi < len(words) else "")


def _weighted(nlp, question: str, weight) -> dict[str, float]:
    """The question's content stems, each with its word's weight (1 without `weight`)."""
    words = [w.lower_ for w in nlp.tokenizer(question) if not (w.is_stop or w.is_punct)]
    return {stem: weight(w) if weight else 1.0 for w in words for stem in _stems([w])}


def _stems_of(nlp, text: str) -> set[str]:
    return _stems(t.lower_ for t in nlp.tokenizer(text) if not (t.is_stop or t.is_punct))


def _evidence(asked: dict[str, float], words: set[str]) -> float:
    """The weighted share of the question's stems that `words` holds."""
    total = sum(asked.values())
    return sum(v for k, v in asked.items() if k in words) / total if total else 0.0


def _stems(words) -> set[str]:
    """Crude stems: "ingested", "ingesting" and "ingest" meet at their first five letters."""
    return {w[:5] if len(w) > 5 else w for w in words if any(c.isalnum() for c in w)}
