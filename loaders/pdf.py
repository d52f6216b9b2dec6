"""PDF through pdfium: pages, paragraphs and section titles, near raw pdfium's speed (bench/ingest.py).

Not unstructured's PDF path: it needs `unstructured-inference` (timm, torchvision, a multi-GB
torch) and is far slower (README, "Ingest and search"). Sections come from the PDF's outline
when it has one, else from each line's look: size, weight, capitals, `PART I` / `Item 7.`
(SEC filings). Font data is read for one character per line, which keeps the cost near raw
text extraction.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ragtune.core.records import Document
from ragtune.loaders import Loaded, LoadError

PART_RE = re.compile(r"^part\s+[ivx]+\b", re.I)
ITEM_RE = re.compile(r"^item\s+\d+[a-z]?\.", re.I)
BULLET_RE = re.compile(r"^[•◦▪●\-–*]\s+")
PAGE_NUMBER_RE = re.compile(r"^\W*(page\s*)?(\d+|[ivxlc]+)(\s*(of|/)\s*\d+)?\W*$", re.I)


@dataclass
class Line:
    """One line of a page's text, with the look that tells a title from body text."""

    text: str
    page: int
    size: float  # rendered height of its first character's loose box, in points
    bold: bool
    top: float
    bottom: float
    level: int | None = None  # set for a section title: 0 is the outermost


def load_pdf(path: Path, sha: str) -> Loaded:
    """One PDF's paragraphs and titles as Documents, each with its page and section path.

    Raises:
        LoadError: encrypted, corrupt, or no text layer on any page (a page without one is a warning).
    """
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        msg = str(e).lower()
        if "password" in msg:
            raise LoadError(path, "encrypted PDF (password required)") from None
        raise LoadError(path, f"corrupt or unreadable PDF ({str(e).strip()})") from None
    try:
        pages = [_read_page(pdf[i], i + 1) for i in range(len(pdf))]
        outline = [
            (" ".join(item.get_title().split()), item.get_dest().get_index() if item.get_dest() else None, item.level)
            for item in pdf.get_toc()
        ]
    finally:
        pdf.close()
    n_pages = len(pages)
    empty = [i + 1 for i, lines in enumerate(pages) if not lines]
    if n_pages and len(empty) == n_pages:
        raise LoadError(path, f"no text layer on any of its {n_pages} pages (scanned or image-only PDF; OCR it first)")
    warnings = [f"no text layer on page(s) {_ranges(empty)}"] if empty else []
    _drop_running_lines(pages)
    docs = list(_paragraphs(pages, outline, path, sha))
    return Loaded(docs, pages=n_pages, warnings=warnings)


def _read_page(page, number: int) -> list[Line]:
    import pypdfium2.raw as raw

    tp = page.get_textpage()
    try:
        text = tp.get_text_range()
        count = tp.count_chars()
        lines, pos = [], 0
        for raw_line in re.split(r"(\r\n|\n|\r)", text):
            if raw_line in ("\r\n", "\n", "\r"):
                pos += len(raw_line)
                continue
            stripped = _clean(raw_line)
            if stripped:
                j = min(pos + len(raw_line) - len(raw_line.lstrip()), count - 1)
                left, bottom, right, top = tp.get_charbox(j, loose=True)
                weight = raw.FPDFText_GetFontWeight(tp, j)
                lines.append(Line(stripped, number, round(top - bottom, 1), weight >= 600, top, bottom))
            pos += len(raw_line)
        return lines
    finally:
        tp.close()
        page.close()


def _clean(s: str) -> str:
    # pdfium marks soft hyphens and unmapped glyphs with control characters.
    return " ".join(s.replace("\x02", "").replace("\ufffe", "").replace("\x00", "").split())


def _drop_running_lines(pages: list[list[Line]]) -> None:
    """Remove page numbers and headers/footers that repeat on at least half the pages."""
    edges = Counter()
    for lines in pages:
        for ln in {id(x): x for x in lines[:2] + lines[-2:]}.values():
            edges[re.sub(r"\d+", "#", ln.text.lower())] += 1
    threshold = max(3, len(pages) // 2)
    for lines in pages:
        keep = []
        for i, ln in enumerate(lines):
            at_edge = i < 2 or i >= len(lines) - 2
            if at_edge and (PAGE_NUMBER_RE.match(ln.text) or edges[re.sub(r"\d+", "#", ln.text.lower())] >= threshold):
                continue
            keep.append(ln)
        lines[:] = keep


def _paragraphs(pages: list[list[Line]], outline: list[tuple], path: Path, sha: str):
    if outline:
        page_top = _mark_outline_titles(pages, outline)
    else:
        page_top = {}
        _mark_heuristic_titles(pages)
    stack: list[tuple[int, str]] = []
    para: list[Line] = []

    def flush():
        if para:
            text = _join(para)
            category = "ListItem" if BULLET_RE.match(para[0].text) else "NarrativeText"
            yield Document(
                text=text, source=str(path), sha256=sha, category=category, section=" > ".join(t for _, t in stack), page=para[0].page
            )
            para.clear()

    for lines in pages:
        # An outline entry that names a page but matches no line opens its section at the page top.
        for level, title in page_top.get(lines[0].page if lines else None, []):
            yield from flush()
            _push(stack, level, title)
        prev = None
        for ln in lines:
            if ln.level is not None:
                yield from flush()
                _push(stack, ln.level, ln.text)
                yield Document(
                    text=ln.text, source=str(path), sha256=sha, category="Title", section=" > ".join(t for _, t in stack), page=ln.page
                )
                prev = None
                continue
            new_para = prev is None or BULLET_RE.match(ln.text) or (prev.bottom - ln.top) > 0.6 * max(ln.size, 1.0)
            if new_para:
                yield from flush()
            para.append(ln)
            prev = ln
        yield from flush()  # paragraphs stop at page ends so each keeps one page number


def _push(stack: list[tuple[int, str]], level: int, title: str) -> None:
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, title))


def _join(lines: list[Line]) -> str:
    out = lines[0].text
    for ln in lines[1:]:
        # Re-join a word hyphenated across a line break ("informa-" + "tion").
        if out.endswith("-") and len(out) > 1 and out[-2].isalpha() and ln.text[:1].islower():
            out = out[:-1] + ln.text
        else:
            out += " " + ln.text
    return out


def _mark_outline_titles(pages: list[list[Line]], outline: list[tuple]) -> dict[int, list[tuple[int, str]]]:
    """Mark the lines that the PDF's bookmarks name on their page; return the bookmarks that
    match no line, by page, to open their section at the top of it."""
    page_top: dict[int, list[tuple[int, str]]] = {}
    for title, index, level in outline:
        if index is None or index >= len(pages):
            continue
        key = title.lower()
        match = next((ln for ln in pages[index] if ln.text.lower() == key and ln.level is None), None)
        if match is not None:
            match.level = level
        else:
            page_top.setdefault(index + 1, []).append((level, title))
    return page_top


def _mark_heuristic_titles(pages: list[list[Line]]) -> None:
    """Mark title lines by their look: type size, weight, capitals, SEC headings."""
    body = _body_size(pages)
    candidates = [ln for lines in pages for ln in lines if _looks_like_title(ln, body)]
    # PART > Item > larger type (bigger first) > body-size bold or capitals.
    sizes = sorted({ln.size for ln in candidates if ln.size >= body * 1.15}, reverse=True)
    rank = {s: i for i, s in enumerate(sizes)}
    for ln in candidates:
        if PART_RE.match(ln.text):
            ln.level = 0
        elif ITEM_RE.match(ln.text):
            ln.level = 1
        else:
            ln.level = 2 + rank.get(ln.size, len(sizes))


def _body_size(pages: list[list[Line]]) -> float:
    sizes = Counter()
    for lines in pages:
        for ln in lines:
            sizes[ln.size] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _looks_like_title(ln: Line, body: float) -> bool:
    t = ln.text
    words = t.split()
    if not (2 <= len(t) <= 120 and len(words) <= 14) or sum(c.isalpha() for c in t) < 2:
        return False
    if not (t[0].isupper() or t[0].isdigit()) or BULLET_RE.match(t):
        return False
    if PART_RE.match(t) or ITEM_RE.match(t):
        return not re.search(r"\d\s*$", t) or bool(re.fullmatch(r"item\s+\d+[a-z]?\.?", t, re.I))
    if t[-1] in ".,;:" or re.search(r"[\d%)$]\s*$", t):
        return False  # a sentence, or a table-of-contents or table row ending in a number
    letters = [c for c in t if c.isalpha()]
    caps = sum(c.isupper() for c in letters) / len(letters) > 0.9 and len(letters) >= 4
    return ln.size >= body * 1.15 or ln.bold or caps


def _ranges(pages: list[int]) -> str:
    return ", ".join(str(p) for p in pages[:10]) + (f" and {len(pages) - 10} more" if len(pages) > 10 else "")
