"""Question noise: real users type fast. A noisy copy of a question teaches the adapter that
"whn was teh tower COMPLETED" asks the same thing.

    delete  drop a character        insert  double or add a neighbouring character
    swap    swap two neighbours     case    random capitals in a few words
    order   move one word a place (the question mark stays last)

Each noisy question changes one to three places, never inside the answer's own words, so
the pair stays grounded.
"""

from __future__ import annotations

import random

from ragtune.core.text import normalize

KEYS = "qwertyuiopasdfghjklzxcvbnm"


def noisy(question: str, answer: str, kind: str, rng: random.Random) -> str:
    """`question` with `kind` noise applied in one to three places outside the answer."""
    protected = set(normalize(answer).split())
    words = question.rstrip("?").split()
    editable = [i for i, w in enumerate(words) if len(w) > 3 and normalize(w) not in protected]
    if not editable:
        return question
    if kind == "order":
        i = rng.choice(range(len(words) - 1)) if len(words) > 1 else 0
        words[i : i + 2] = words[i : i + 2][::-1]
    else:
        for i in rng.sample(editable, min(len(editable), rng.randint(1, 3))):
            words[i] = _edit(words[i], kind, rng)
    out = " ".join(words) + ("?" if question.rstrip().endswith("?") else "")
    return out if out != question else _edit(question, "swap", rng)


def _edit(word: str, kind: str, rng: random.Random) -> str:
    j = rng.randrange(1, len(word) - 1) if len(word) > 2 else 0
    if kind == "delete":
        return word[:j] + word[j + 1 :]
    if kind == "insert":
        return word[:j] + rng.choice([word[j], rng.choice(KEYS)]) + word[j:]
    if kind == "swap":
        return word[:j] + word[j + 1 : j + 2] + word[j] + word[j + 2 :] if j + 1 < len(word) else word[::-1]
    if kind == "case":
        return "".join(c.upper() if rng.random() < 0.5 else c for c in word)
    raise ValueError(f"unknown noise kind {kind!r}")
