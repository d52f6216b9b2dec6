"""Boilerplate: the text every filing of a kind repeats, which says nothing about the company.

Cover-page check boxes ("Indicate by check mark whether the registrant ..."), officers'
certifications ("I, ..., certify that"), auditors' consents, signature blocks and
forward-looking-statement notices read alike in every 10-K, 10-Q and earnings release. In
one index of several filings they outrank the content for many questions (they are long,
full of the words questions use) and give synthetic questions like "What indicate by check
mark?". Ingest marks them (`Chunk.boilerplate`); retrieval ranks them low unless the query
asks for them (`asks_for`), and synth asks nothing about them.
"""

from __future__ import annotations

import re

# One match in a chunk's text marks it: phrases only boilerplate uses. "Forward-looking
# statements" is the securities-law term of art: filings use it in their notices and nowhere else.
MARKS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"indicate by check mark",
        r"(?:annual|quarterly|transition) report pursuant to section 13 or 15\(d\)",  # the cover's form check boxes
        r"washington,? d\.?c\.? 20549",  # the SEC's address, on every cover
        r"\b(?:large |non-)?accelerated filer\b",
        r"has been signed below by the following persons",
        r"exact name of registrant as specified in its charter",
        r"securities registered pursuant to section 12\([bg]\)",
        r"\bI,\s+[A-Z][\w.\- ]{1,60},\s+(?:hereby\s+)?certify",  # "I, Reed Hastings, certify that:"
        r"\bundersigned (?:hereby )?certif",
        r"section (?:302|906) of the sarbanes[- ]oxley",
        r"18 U\.?S\.?C\.?(?: section)? 1350",
        r"certifying officers?\b",  # the numbered paragraphs of a SOX 302 certification
        r"registrant.s ability to record, process, summari[sz]e and report",
        r"presented in this report our conclusions about the effectiveness",
        r"\bwe (?:hereby )?consent to the incorporation by reference",
        r"consent of independent (?:registered public accounting firm|auditors?)",
        r"has duly caused this report to be signed",
        r"forward[- ]looking statements?",
        r"safe harbor provisions",
        r"undue reliance",
    )
]
# A chunk under one of these headings (its section's last title) is boilerplate, wherever it was cut.
HEADINGS = re.compile(
    r"certifications?\b.*|signatures?|consents? of .*|exhibit index|index to exhibits|cautionary (?:statement|note)s?\b.*"
    r"|.*forward[- ]looking statements.*|safe harbou?r.*",
    re.IGNORECASE,
)

# A query with one of these asks for boilerplate itself: it is then ranked as any other text.
ASKS = re.compile(
    r"forward[- ]looking|safe harbou?r|certif(?:y|ies|ied|ication)|check mark|consent|sarbanes|section (?:302|906)"
    r"|\bfiler\b|registrant|signature|signed|cover page|boilerplate|disclaimer",
    re.IGNORECASE,
)


def is_boilerplate(text: str, section: str = "") -> bool:
    """Whether a chunk is boilerplate: one of `MARKS` is in its text, or its heading (the last title
    of its `section` path) is one of `HEADINGS`."""
    flat = " ".join(text.split())
    heading = " ".join(section.split(" > ")[-1].split())
    return bool(HEADINGS.fullmatch(heading)) or any(m.search(flat) for m in MARKS)


def asks_for(query: str) -> bool:
    """Whether a query asks about boilerplate (forward-looking statements, certifications, ...)."""
    return bool(ASKS.search(query))
