"""Citations: `[n]` in an answer's text, resolved to the n-th chunk of its prompt.

The rag prompt numbers its chunks `[1]`, `[2]`, ... (engine/prompts.py), best first, and a
model that writes is asked to cite them inline; extractive answers are written with them.
A citation to a number the prompt did not hold is removed from the text and counted: a
link to nothing would look like evidence. A small model that writes often leaves sentences
uncited; `attribute` cites each such sentence to the chunk that holds most of its words, and
the answer counts those citations apart from the model's own.
"""

from __future__ import annotations

import re

from ragtune.core.records import Citation, Hit
from ragtune.rag.lexical import tokenize

SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
ATTRIBUTE_SHARE = 0.6  # of a sentence's content words, found in one chunk, to cite that chunk for it

# "[1]", "[1, 3]", "[1][2]", "[1-2]" ; not "[a]" or a list index inside code.
MARKER = re.compile(r"\s?\[(\d{1,3}(?:\s*[,;–-]\s*\d{1,3})*)\]")


def citation(n: int, hit: Hit, quote: str = "", bold: tuple[int, int] | None = None) -> Citation:
    """The citation of `hit`, the n-th chunk of the prompt."""
    c = hit.chunk
    return Citation(n, c.id, c.source, c.page, c.section, quote, bold)


def resolve(text: str, hits: list[Hit]) -> tuple[str, list[Citation], int]:
    """`text` with its unknown citations removed, the citations it makes, and how many it dropped.

    Citations come in the order the text first makes them, each chunk once.
    """
    cited: dict[int, Citation] = {}
    dropped = 0

    def keep(m: re.Match) -> str:
        nonlocal dropped
        numbers = _numbers(m.group(1))
        good = [n for n in numbers if 1 <= n <= len(hits)]
        dropped += len(numbers) - len(good)
        for n in good:
            cited.setdefault(n, citation(n, hits[n - 1]))
        return (" " if m.group(0).startswith(" ") else "") + "".join(f"[{n}]" for n in good) if good else ""

    out = MARKER.sub(keep, text)
    return out, list(cited.values()), dropped


def attribute(text: str, hits: list[Hit], share: float = ATTRIBUTE_SHARE) -> tuple[str, int]:
    """`text` with each uncited sentence cited to the chunk holding `share` of its words, and how many were."""
    chunks = [set(tokenize(h.chunk.text)) for h in hits]
    added = 0
    out, last = [], 0
    for m in [*SENTENCE_END.finditer(text), None]:
        end = m.start() if m else len(text)
        sentence = text[last:end]
        words = set(tokenize(sentence))
        if words and chunks and not MARKER.search(sentence):
            overlap = [len(words & c) / len(words) for c in chunks]
            best = max(range(len(chunks)), key=overlap.__getitem__)
            if overlap[best] >= share:
                body = sentence.rstrip(".!?:;, ")
                sentence = f"{body} [{best + 1}]{sentence[len(body) :]}"
                added += 1
        out.append(sentence + (m.group(0) if m else ""))
        last = m.end() if m else end
    return "".join(out), added


def strip(text: str) -> str:
    """The text without its citation markers: what is scored against a reference answer."""
    return " ".join(MARKER.sub("", text).split())


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group):
        ends = [int(x) for x in re.split(r"\s*[–-]\s*", part) if x]
        if len(ends) == 2 and 0 < ends[1] - ends[0] < 10:
            out += range(ends[0], ends[1] + 1)
        else:
            out += ends
    return list(dict.fromkeys(out))
