"""A question about one of several documents names its document when it would be ambiguous without.

"What were net sales in fiscal 2023?" has an answer in every filing of an index of three. When
the chunk's title leads with a name ("Netflix, Inc. Form 10-K (...)") and the question does not
say it, the title is set first: "In Netflix, Inc. Form 10-K (...), what ...?". A question that
names something of its own is specific enough, unless it also says "our" or "the Company": for
a company's document only a person counts, since a place or an agency it names ("What remains
subject to examination by the IRS?") could be asked of any filing; for another subject (an
article on Warsaw), any name does. Every generator's questions pass through here
(`Subjects.name_in`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from ragtune.core.records import Chunk, Draft

# Entities that say what a question is about (a date or an amount does not).
NAMING = frozenset({"PERSON", "ORG", "GPE", "NORP", "FAC", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW"})
# Those that make a question about a company's document specific: every filing names the IRS.
COMPANY_NAMING = frozenset({"PERSON"})
# Subjects that stand for the document's own company (or author) and name nobody out of context.
GENERIC_SUBJECT = re.compile(r"\b(?:we|our|us|the (?:company|registrant|corporation|group|firm))\b", re.IGNORECASE)
# Words of a company's name that do not tell one company from another.
LEGAL_FORMS = {"inc", "plc", "corp", "corporation", "ltd", "llc", "company", "co", "group", "holdings", "the", "and", "form"}
LOWERED_FIRST = {"what", "when", "where", "who", "whom", "which", "how", "why", "in", "on", "at", "by", "the", "a", "an", "to", "for"}


class Subjects:
    """Titles read as subjects with spaCy, loaded on first use and cached per title."""

    def __init__(self):
        self._nlp = None

    @property
    def nlp(self):
        if self._nlp is None:
            import spacy

            from ragtune.core import offline

            self._nlp = spacy.load(offline.spacy_model_path())
        return self._nlp

    @lru_cache(maxsize=256)  # noqa: B019 - one instance lives for one synth run
    def of(self, title: str) -> tuple[str, tuple[str, ...], frozenset[str]]:
        """The title as a question's subject, the words of the name it leads with ("Netflix") and the
        entity kinds that make a question about it specific; ("", (), NAMING) for a title that does not
        lead with a name ("Search and retrieval")."""
        ents = self.nlp(title).ents if title else ()
        lead = next((e for e in ents if e.label_ in NAMING and e.start == 0), None)
        words = tuple(w for w in re.findall(r"[a-z][a-z'-]+", lead.text.lower()) if w not in LEGAL_FORMS) if lead else ()
        if not words:
            return "", (), NAMING
        return title.split(";")[0].strip(), words, COMPANY_NAMING if lead.label_ == "ORG" else NAMING

    def name_in(self, drafts: list[Draft], chunk: Chunk) -> list[Draft]:
        """`drafts` of `chunk` from a generator that does not parse sentences itself (an LLM's): each
        question gets its subject when it needs one, judged by the names its evidence sentence holds."""
        subject, name, kinds = self.of(chunk.title)
        if not subject:
            return drafts
        return [
            d if d.error else replace(d, question=with_subject(d.question, subject, name, self.names(d.evidence, kinds))) for d in drafts
        ]

    def names(self, sentence: str, kinds: frozenset[str]) -> list[str]:
        """The names of these `kinds` of entity in `sentence`."""
        return [e.text for e in self.nlp(sentence).ents if e.label_ in kinds] if sentence else []


def with_subject(question: str, subject: str, name: tuple[str, ...], names: list[str]) -> str:
    """The question with `subject` (its document's title) set first, unless it already says the
    subject's `name`, or says one of `names` (its sentence's) without saying "we" or "the Company"."""
    if not subject or any(re.search(rf"\b{re.escape(w)}\b", question, re.IGNORECASE) for w in name):
        return question
    if not GENERIC_SUBJECT.search(question) and any(n in question for n in names):
        return question
    first = question.split(" ", 1)[0]
    body = question[0].lower() + question[1:] if first.lower() in LOWERED_FIRST else question
    return f"In {subject}, {body}"
