"""PDF through pdfium: pages, paragraphs and section titles, near raw pdfium's speed (bench/ingest.py).

Not unstructured's PDF path: it needs `unstructured-inference` (timm, torchvision, a multi-GB
torch) and is far slower (README, "Ingest and search"). Sections come from the PDF's outline
when it has one, else from each line's look: size, weight, capitals, `PART I` / `Item 7.`
(SEC filings). Font data is read for one character per line, which keeps the cost near raw
text extraction. Tables are found in the same text (loaders/tables.py) and each becomes one
"Table" Document in place of its lines.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ragtune.core.records import Document
from ragtune.loaders import Loaded, LoadError
from ragtune.loaders.ocr import TESSERACT_INSTALL, ocr_lines, tesseract
from ragtune.loaders.tables import HEADER_VALUE_RE, Found, Word, find_tables, lines_to_measure, looks_tabular, table_text, tail_tokens

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
    x0: float = 0.0  # left edge of its first character
    level: int | None = None  # set for a section title: 0 is the outermost
    words: list[Word] | None = None  # where its words sit, on lines that may belong to a table (tables.lines_to_measure)
    part: str = ""  # "caption" or "body" of a table: not read as text, and a body line is never a title
    table: Found | None = None  # on a table's first header or row line: the table, whose Document goes there
    ocr: bool = False  # read by OCR from a page with no text layer


def load_pdf(path: Path, sha: str, ocr: bool = False) -> Loaded:
    """One PDF's paragraphs, titles and tables as Documents, each with its page and section path.

    Args:
        ocr: read pages with no text layer by OCR (tesseract); their paragraphs get category "OCR".

    Raises:
        LoadError: encrypted, corrupt, or no text on any page (a page without any is a warning).
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
        metadata = pdf.get_metadata_dict()
        pages = [_read_page(pdf[i], i + 1) for i in range(len(pdf))]
        empty = [i + 1 for i, lines in enumerate(pages) if not lines]
        exe = tesseract() if ocr and empty else None
        if exe:
            for n in empty:
                pages[n - 1] = _ocr_page(pdf[n - 1], n, exe, path)
        outline = [
            (" ".join(item.get_title().split()), item.get_dest().get_index() if item.get_dest() else None, item.level)
            for item in pdf.get_toc()
        ]
    finally:
        pdf.close()
    warnings = _text_layer_warnings(path, len(pages), empty, pages, ocr, exe)
    _drop_running_lines(pages)
    _mark_tables(pages)
    docs = list(_paragraphs(pages, outline, path, sha))
    return Loaded(docs, pages=len(pages), warnings=warnings, title=_title(metadata))


def _text_layer_warnings(path: Path, n_pages: int, empty: list[int], pages: list[list[Line]], ocr: bool, exe: str | None) -> list[str]:
    """What the user should know about pages with no text layer; raises when no page has text."""
    if not empty:
        return []
    if not exe:
        how = "pass --ocr to read them with tesseract"
        if ocr:
            how = f"--ocr needs the tesseract binary, which is not on PATH: {TESSERACT_INSTALL}"
        if len(empty) == n_pages:
            raise LoadError(path, f"no text layer on any of its {n_pages} pages (a scan or image-only PDF); {how}")
        return [f"no text layer on page(s) {_ranges(empty)}; {how}"]
    read = [n for n in empty if pages[n - 1]]
    unread = [n for n in empty if not pages[n - 1]]
    if len(unread) == n_pages:
        raise LoadError(path, f"no text layer on any of its {n_pages} pages, and OCR found no text on them")
    warnings = [f"read page(s) {_ranges(read)} by OCR (tesseract)"] if read else []
    return warnings + ([f"no text on page(s) {_ranges(unread)}, even by OCR"] if unread else [])


def _ocr_page(page, number: int, exe: str, path: Path) -> list[Line]:
    """A scanned page's lines, read by tesseract, with their words' positions for tables."""
    try:
        found = ocr_lines(page, exe)
    except RuntimeError as e:
        raise LoadError(path, f"page {number}: {e}") from None
    finally:
        page.close()
    # A tesseract line box spans the ink, about an em; pdfium's loose box, by which body text and
    # paragraph gaps are sized, spans the font's ascent to descent, about 1.2 em.
    lines = [Line(text, number, round(1.2 * (top - bottom), 1), False, top, bottom, left, ocr=True) for text, left, top, bottom, _ in found]
    if looks_tabular(lines):
        for ln, (*_, words) in zip(lines, found, strict=True):
            ln.words = words
    return lines


def _read_page(page, number: int) -> list[Line]:
    import pypdfium2.raw as raw

    tp = page.get_textpage()
    try:
        text = tp.get_text_range()
        count = tp.count_chars()
        lines, spans, pos = [], [], 0
        for raw_line in re.split(r"(\r\n|\n|\r)", text):
            if raw_line in ("\r\n", "\n", "\r"):
                pos += len(raw_line)
                continue
            stripped = _clean(raw_line)
            if stripped:
                j = min(pos + len(raw_line) - len(raw_line.lstrip()), count - 1)
                left, bottom, right, top = tp.get_charbox(j, loose=True)
                weight = raw.FPDFText_GetFontWeight(tp, j)
                lines.append(Line(stripped, number, round(top - bottom, 1), weight >= 600, top, bottom, left))
                spans.append((pos, raw_line))
            pos += len(raw_line)
        if looks_tabular(lines):
            for i in lines_to_measure(lines):
                lines[i].words = _words(tp, *spans[i], count)
        return lines
    finally:
        tp.close()
        page.close()


def _words(tp, pos: int, raw_line: str, count: int) -> list[Word]:
    """Where a line's words sit, as far as tables.find_tables reads them, two character boxes a
    word: a row's label is one Word before its figures, and so is a long line of text."""
    dirty = any(c in raw_line for c in "\x00\x02\ufffe")
    tokens = [(pos + m.start(), pos + m.end() - 1, _clean(m.group()) if dirty else m.group()) for m in re.finditer(r"\S+", raw_line)]
    tokens = [t for t in tokens if t[2] and t[1] < count]
    tail = tail_tokens([w for _, _, w in tokens])
    if all(HEADER_VALUE_RE.fullmatch(w) for _, _, w in tokens[len(tokens) - tail :]):
        tail = 0  # years or dates: maybe a header line, whose every phrase counts
    if not tail and len(raw_line) > 100:
        tokens = [(tokens[0][0], tokens[-1][1], " ".join(w for _, _, w in tokens))] if tokens else []
    elif tail and len(tokens) > tail:
        label = tokens[:-tail]
        tokens = [(label[0][0], label[-1][1], " ".join(w for _, _, w in label)), *tokens[-tail:]]
    return [Word(w, tp.get_charbox(a)[0], tp.get_charbox(b)[2]) for a, b, w in tokens]


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


def _mark_tables(pages: list[list[Line]]) -> None:
    """Find each page's tables and mark the lines they take (after running lines are gone, so
    a page number is never a row)."""
    body = _body_size(pages)
    for lines in pages:
        if not any(ln.words for ln in lines):
            continue
        for found in find_tables(lines, body):
            for i in found.caption:
                lines[i].part = "caption"
            for i in found.body:
                lines[i].part = "body"
            lines[found.body.start].table = found


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
            category = "OCR" if para[0].ocr else "ListItem" if BULLET_RE.match(para[0].text) else "NarrativeText"
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
            if ln.part and ln.level is None:
                if ln.table is not None:  # a table, in place of its lines
                    yield from flush()
                    yield Document(
                        text=table_text(ln.table.table),
                        source=str(path),
                        sha256=sha,
                        category="Table",
                        section=" > ".join(t for _, t in stack),
                        page=ln.page,
                    )
                prev = None
                continue
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
        match = next((ln for ln in pages[index] if ln.text.lower() == key and ln.level is None and ln.part != "body"), None)
        if match is not None:
            match.level = level
        else:
            page_top.setdefault(index + 1, []).append((level, title))
    return page_top


def _mark_heuristic_titles(pages: list[list[Line]]) -> None:
    """Mark title lines by their look: type size, weight, capitals, SEC headings."""
    body = _body_size(pages)
    candidates = [ln for lines in pages for ln in lines if ln.part != "body" and _looks_like_title(ln, body)]
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


def _title(metadata: dict) -> str:
    """The metadata title if it names the document: not empty, not a file name ("Microsoft
    Word - report.docx"), not an id ("0001065280-18-000069")."""
    title = " ".join(str(metadata.get("Title") or "").split())
    if re.match(r"^microsoft\s+\w+\s+-\s+", title, re.I) or re.search(r"\.(docx?|pdf|pptx?|xlsx?|odt|rtf|txt|html?)$", title, re.I):
        return ""
    if title.lower() in ("untitled", "title", "document") or len(re.findall(r"[^\W\d_]{2,}", title)) < 1:
        return ""
    return title


def _ranges(pages: list[int]) -> str:
    return ", ".join(str(p) for p in pages[:10]) + (f" and {len(pages) - 10} more" if len(pages) > 10 else "")
