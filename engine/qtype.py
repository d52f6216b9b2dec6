"""What kind of answer a question wants: a short fact, or a passage (how, why, a list).

    classify("How many chunks does ingest write?")      -> factoid
    classify("How do I train an adapter?")              -> open
    classify("Which file formats can I ingest?")        -> open, a list

A span is the right answer to "who", "when", "how many" and "which one"; for "how", "why",
"explain", "what happens if" and "which ... (several)" it is not. Rules over the wh-word and
the asked-for noun's number (spaCy's tagger) decide; bench/answers.py measures them on the
factoid and open question sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Openings that ask for a passage, whatever follows. "how" is open unless a quantity follows.
OPEN_START = re.compile(
    r"^(?:(?:and|so|but|then|ok|okay),?\s+)?(?:why\b|how\b(?!\s+(?:many|much|long|old|far|big|large|tall|high|often|fast|"
    r"soon|early|late|wide|deep|heavy|small|few)\b)|explain\b|describe\b|summari[sz]e\b|compare\b|outline\b|"
    r"tell me\b|walk me\b|give (?:me )?an? (?:overview|summary)\b|list\b|name (?:all|the)\b|in what ways?\b)"
)
# Phrases that ask for a passage anywhere in the question.
OPEN_ANYWHERE = re.compile(
    r"\b(?:what happens|what would happen|what will happen|what is the (?:difference|purpose|point|role|reason|idea|effect|"
    r"advantage|benefit)|what are the (?:differences|advantages|benefits|steps|main|key|reasons|effects)|what does .+ do\b|"
    r"what should i|what can i do|what do i (?:do|need)|for what reason|the difference between|pros and cons|step by step|"
    r"in what order)"
)
# Plural nouns that still name one quantity or one thing.
SINGULAR_PLURALS = {
    "years",
    "days",
    "hours",
    "minutes",
    "seconds",
    "percent",
    "means",
    "series",
    "species",
    "news",
    "people",
    "times",
    "units",
    "tokens",
    "words",
    "points",
    "metres",
    "meters",
    "miles",
    "dollars",
    "steps",
}
COUNTED = re.compile(r"\bhow many\b|\bnumber of\b")


@dataclass(frozen=True)
class QuestionType:
    """The answer form a question wants."""

    kind: str  # factoid | open
    is_list: bool = False  # several items are asked for: the answer is a bulleted list
    why: str = ""  # the rule that decided, for the bench's confusion table


def classify(question: str) -> QuestionType:
    """The answer form `question` wants; see the module docstring."""
    q = " ".join(question.lower().split()).strip(" ?!.")
    if not q:
        return QuestionType("factoid", why="empty")
    if re.match(r"^(?:list|name (?:all|the))\b", q) or re.search(
        r"\bwhat are (?:all )?the (?:\w+ )?(?:steps|options|ways|kinds|types)\b", q
    ):
        return QuestionType("open", True, "list")
    if OPEN_START.search(q):
        return QuestionType("open", False, "open wh-word")
    if OPEN_ANYWHERE.search(q):
        return QuestionType("open", False, "open phrase")
    if COUNTED.search(q):
        return QuestionType("factoid", why="count")
    if re.match(
        r"^what (?:does|do) .+ (?:record|show|contain|include|list|hold|store|print|report|"
        r"write|check|need|require|offer|provide|support|cover)(?: for each [\w-]+| about [\w-]+)?$",
        q,
    ):
        return QuestionType("open", True, "what ... contain")  # "What does the manifest record?": its contents
    if _asks_several(question):
        return QuestionType("open", True, "plural noun")
    if re.match(r"^what (?:is|are) (?:an? )?[\w-]+(?: [\w-]+)?$", q) and not re.search(r"\bthe\b", q):
        return QuestionType("open", False, "definition")  # "What is ragtune?": a definition, not a name
    return QuestionType("factoid", why="default")


def _asks_several(question: str) -> bool:
    """ "Which file formats can I ingest?", "What are the four modes?": the asked-for noun is plural."""
    q = question.strip()
    if not re.match(r"^(which|what)\b", q.lower()):
        return False
    doc = _tagger()(q)
    if len(doc) > 2 and doc[1].lower_ == "are":  # "what are the four modes": the phrase after "are" decides
        run = [t for t in doc[2:] if t.pos_ not in ("DET", "NUM")]
        head = None
        for t in run:
            if t.pos_ not in ("NOUN", "PROPN", "ADJ", "VERB") and t.text != "-":
                break
            if t.text == "-":
                continue
            head = t
        return head is not None and (_plural(head) or (head.tag_ == "VBZ" and head.lower_.endswith("s")))
    # "which file formats": the first noun that is not a modifier, before any verb; one followed
    # by a determiner is a verb the tagger misread ("which flag prints the deltas").
    noun = next((t for t in doc[1:6] if t.pos_ in ("NOUN", "PROPN") and t.dep_ != "compound"), None)
    if noun is None or any(t.pos_ in ("VERB", "AUX") for t in doc[1 : noun.i]):
        return False
    after = doc[noun.i + 1] if noun.i + 1 < len(doc) else None
    return _plural(noun) and not (after is not None and after.tag_ in ("DT", "PRP$"))


def _plural(token) -> bool:
    return token.tag_ in ("NNS", "NNPS") and token.lower_ not in SINGULAR_PLURALS


@lru_cache(maxsize=1)
def _tagger():
    from ragtune.engine.spans import _nlp

    return _nlp()
