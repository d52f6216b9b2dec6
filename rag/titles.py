"""A document's title, which every chunk carries: the answer to "which document is this from?".

With several documents of one kind in an index (three companies' filings), a chunk's text
rarely names its company; the title, prepended to what is embedded and shown with every
source, does. In order, the first that gives one:

1. the loader's title (`Loaded.title`): a JSON `title` field, or PDF metadata that the first page bears out;
2. an SEC filing's cover page: registrant, form and period, "Netflix, Inc. Form 10-K (fiscal
   year ended December 31, 2017)" (cover pages open with "UNITED STATES SECURITIES AND
   EXCHANGE COMMISSION", which no reader would call the title);
3. the first heading, on the first page for a paged document, unless it is such cover words;
4. a paged document's first line, when it reads as a headline (a press release's), even as a table's caption;
5. the file's name: `NETFLIX_2017_10K.pdf` -> `NETFLIX 2017 10K`.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from ragtune.core.records import Document
from ragtune.rag.lexical import tokenize

TITLE_CHARS = 100  # a longer "title" is a paragraph taken for a heading
HEADLINE_WORDS = 16  # a first line this short, without a closing period, is a headline
CREDIBLE_SHARE = 0.5  # of a metadata title's words found on the first page
COVER_DOCUMENTS = 40  # an SEC cover page fits in a file's first elements

REGISTRANT = re.compile(r"\(\s*exact name of registrant as specified in its charter\s*\)", re.IGNORECASE)
FORM = re.compile(r"\bFORM\s+(10-K|10-Q|8-K|20-F|40-F|S-1|10-KT|10-QT)\b", re.IGNORECASE)
PERIOD = re.compile(r"\bfor the (fiscal year|quarterly period) ended:?\s+([A-Z][a-z]+\.? \d{1,2}, ?\d{4})", re.IGNORECASE)
# Words of a cover page or a book's front matter that head a document without naming it.
GENERIC = re.compile(
    r"(?:\s*(?:united states|securities and exchange commission|washington,? d\.? ?c\.?(?: \d{5})?|form [\w-]+|table of contents"
    r"|contents|index|part [ivx\d]+|documents incorporated by reference|cover page|[\W_]+))+",
    re.IGNORECASE,
)


def document_title(documents: list[Document], path: Path, loaded_title: str = "") -> str:
    """The title of the file at `path` with these `documents`, by the order of the module docstring."""
    title = _credible(loaded_title.strip(), documents) or sec_cover_title(documents) or _heading(documents) or _headline(documents)
    title = " ".join((title or path.stem.replace("_", " ")).split())
    return textwrap.shorten(title, TITLE_CHARS, placeholder=" …")


def _credible(title: str, documents: list[Document]) -> str:
    """A paged document's metadata title, if its first page bears it out ("Q1 2023 8-K - Exhibit 99.1" names no company)."""
    if not title or not documents or documents[0].page is None:
        return title  # a JSON `title` field is the document's own word
    words = {w for w in tokenize(title) if w.isalpha() and len(w) > 2}  # "8-K", "99.1": digits any first page holds
    first = set(tokenize(" ".join(d.text for d in documents if d.page == 1)))
    return title if words and len(words & first) >= CREDIBLE_SHARE * len(words) else ""


def sec_cover_title(documents: list[Document]) -> str:
    """`Netflix, Inc. Form 10-K (fiscal year ended December 31, 2017)` from an SEC filing's cover page; "" if none."""
    head = documents[:COVER_DOCUMENTS]
    at = next((i for i, d in enumerate(head) if REGISTRANT.search(d.text)), None)
    if at is None:
        return ""
    # The name is what stands just before "(Exact name of registrant ...)", in the same element or the one before.
    before = REGISTRANT.split(head[at].text)[0].strip() or (head[at - 1].text if at else "")
    name = re.split(r"_{3,}|\n", before)[-1].strip(" _")
    if not name or len(name.split()) > 8:
        return ""
    text = " ".join(d.text for d in head)
    form, period = FORM.search(text), PERIOD.search(text)
    out = name + (f" Form {form[1].upper()}" if form else "")
    return out + (f" ({period[1].lower()} ended {period[2]})" if period else "")


def _heading(documents: list[Document]) -> str:
    """The first heading that names something, on the first page of a paged document."""
    for d in documents:
        if d.page is not None and d.page > 1:
            return ""
        if d.category == "Title" and d.text.strip() and not GENERIC.fullmatch(d.text.strip()):
            return d.text
    return ""


def _headline(documents: list[Document]) -> str:
    """A paged document's first line, if it is short and ends without a period."""
    first = next((d for d in documents if d.text.strip()), None)
    if first is None or first.page != 1:
        return ""
    text = first.text.strip()
    if first.category == "Table":  # a headline printed above the first table is its caption's first line
        text = text.splitlines()[0]
    return text if len(text.split()) <= HEADLINE_WORDS and not text.endswith(".") and any(c.isalpha() for c in text) else ""
