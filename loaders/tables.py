"""Tables as text that a retriever and a small model can read: a heading line (the caption),
then one line per row, `label | header: value | header: value`. Each row names its own
columns, so any run of rows reads alone; rag/chunking.py splits a table only between rows
and repeats the heading.

PDF tables are found in pdfium's own lines, from the figures that end them and where those
figures sit on the page, not with a table library: on the SEC filings of bench/ingest.py
(`--table-libs`), pdfplumber and PyMuPDF are far slower than this whole loader and neither
keeps these borderless statements' column headers (PyMuPDF is also AGPL). Character boxes
are read only on pages whose text has rows ending in figures, and only for those lines.
HTML and DOCX tables come from unstructured as HTML (`text_as_html`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragtune.loaders.pdf import Line

DASHES = {"—", "–", "-", "−"}
NIL = {"nm", "n/m", "n/a", "n.m.", "*"}  # "not meaningful" and friends, in a figures column
NUMBER_RE = re.compile(r"(\()?[-+−]?\$?\d(?:[\d,]*\d)?(?:\.\d+)?(\))?%?")
HEADER_VALUE_RE = re.compile(r"(19|20)\d\d|\d{1,2}/\d{1,2}/\d{2,4}")  # a year or a date: a column header, not a figure
UNITS_RE = re.compile(r"^\(.*\b(thousands|millions|billions|except|unaudited)\b.*\)$", re.I)
MAX_HEADER_LINES = 4
MAX_CAPTION_LINES = 3
MAX_LABEL_LINES = 5  # label-only lines (groups, wrapped labels) allowed between two rows


@dataclass(frozen=True)
class Word:
    """A word of a PDF line and its horizontal extent on the page, in points."""

    text: str
    x0: float
    x1: float


@dataclass(frozen=True)
class Table:
    """A table's caption, column headers and rows, whatever file it came from."""

    caption: str  # title and units above it, one printed line per line ("" when no line looked like one)
    headers: list[str]  # one per value column ("" for a column without one)
    rows: list[tuple[str, list[str]]]  # (label, one value per column, "" for an empty cell)
    label_header: str = ""  # the label column's own header ("Region"), if it has one


CELLS, HEADER = " | ", ": "  # a row as text: `label | header: value | ...` (engine/spans.py reads it back)


def table_text(table: Table) -> str:
    """The caption's lines as printed (a headline stays a line of its own), then `label | header: value | ...`
    per row; empty cells are left out."""
    lines = table.caption.splitlines() or ["Table"]
    for label, values in table.rows:
        cells = [f"{h}{HEADER}{v}" if h else v for h, v in zip(table.headers, values, strict=True) if v]
        if label and table.label_header:
            label = f"{table.label_header}{HEADER}{label}"
        lines.append(CELLS.join([label, *cells]) if label else CELLS.join(cells))
    return "\n".join(" ".join(line.split()) for line in lines)


def is_value(token: str) -> bool:
    """A figure as tables print it: `1,234`, `(56)`, `$7.8`, `12%`, `(10)%`, a dash for nil."""
    if token in DASHES or token.lower() in NIL:
        return True
    m = NUMBER_RE.fullmatch(token)
    return bool(m) and bool(m[1]) == bool(m[2])


@lru_cache(maxsize=4096)  # asked of the same lines again and again while a page's tables are found
def trailing_values(text: str) -> int:
    """How many figures end a line of text (`$ 1,944` is one): cheap, from the text alone."""
    return _tail(text.split())[0]


def tail_tokens(tokens: list[str]) -> int:
    """How many of a line's last tokens are its figures, with their "$" and "%" signs."""
    return _tail(tokens)[1]


def _tail(tokens: list[str]) -> tuple[int, int]:
    n, i = 0, len(tokens)
    while i > 0:
        j = i - 1 if tokens[i - 1] == "%" else i  # "15 %": a percent sign set apart
        if j == 0 or not is_value(tokens[j - 1]):
            break
        n, i = n + 1, j - 1
        if i > 0 and tokens[i - 1] == "$":
            i -= 1
    return n, len(tokens) - i


def looks_tabular(lines: list[Line]) -> bool:
    """Whether a page's text has enough rows ending in figures to be worth measuring."""
    return sum(trailing_values(ln.text) > 0 for ln in lines) >= 3


def lines_to_measure(lines: list[Line]) -> set[int]:
    """The lines whose words' positions `find_tables` needs: rows, and the lines above them
    that may hold group titles and column headers."""
    rows = [i for i, ln in enumerate(lines) if trailing_values(ln.text) > 0]
    return {j for i in rows for j in range(max(0, i - MAX_HEADER_LINES - MAX_LABEL_LINES), i + 1)}


# --- PDF: rows, columns, headers and caption from a page's lines ---


@dataclass(frozen=True)
class Found:
    """A table found on a PDF page, and the lines it stands for."""

    table: Table
    caption: range  # lines read into its caption: one that is a section title stays one too
    body: range  # its header, group and row lines, which the table replaces


@dataclass(frozen=True)
class _Row:
    label: str
    label_x1: float  # where the label ends
    cells: list[Word]  # the figures, left to right; a "$" is joined to its figure


def find_tables(lines: list[Line], size: float) -> list[Found]:
    """The tables on one page.

    Args:
        lines: the page's lines in reading order, `words` set on those `lines_to_measure` chose.
        size: the body text's size in points, which scales the gaps that part columns.
    """
    rows = {i: r for i, ln in enumerate(lines) if (r := _row(ln, size)) is not None}
    found, i = [], 0
    while i < len(lines):
        if i not in rows:
            i += 1
            continue
        end = _run_end(lines, rows, i)
        table = _table(lines, {k: rows[k] for k in range(i, end + 1) if k in rows}, i, end, size)
        if table is not None and found and not any(table.table.headers) and len(found[-1].table.headers) == len(table.table.headers):
            # The rest of the table above, parted from it by lines that are not rows: its headers and caption hold.
            prev = found[-1].table
            table = replace(table, table=replace(table.table, caption=table.table.caption or prev.caption, headers=prev.headers))
        if table is not None:
            found.append(table)
        i = end + 1
    return found


def _row(line: Line, size: float) -> _Row | None:
    """A line as a table row: a label, then figures parted from it by a column gap."""
    if line.words is None or trailing_values(line.text) == 0:
        return None
    words = list(line.words)
    cells: list[Word] = []
    while words:
        pct = words.pop() if words[-1].text == "%" and len(words) > 1 else None
        if not is_value(words[-1].text):
            words += [pct] if pct else []
            break
        cell = words.pop()
        if pct:
            cell = Word(f"{cell.text} %", cell.x0, pct.x1)
        if words and words[-1].text == "$":
            cell = Word(f"$ {cell.text}", words.pop().x0, cell.x1)
        cells.insert(0, cell)
    # A figure one space after the label belongs to it ("Note 15", "due 2027").
    while words and cells and cells[0].x0 - words[-1].x1 < 0.6 * size:
        words.append(cells.pop(0))
    if not cells or all(HEADER_VALUE_RE.fullmatch(c.text) for c in cells):
        return None  # years and dates over columns are headers, not figures
    return _Row(" ".join(w.text for w in words), words[-1].x1 if words else 0.0, cells)


def _label_only(line: Line) -> bool:
    """A group title or a wrapped row label: short, not a sentence, no figures."""
    t = line.text
    return len(t) <= 120 and not t.endswith(".") and trailing_values(t) == 0


def _run_end(lines: list[Line], rows: dict, i: int) -> int:
    """The last row of the run that starts at row i: rows with up to MAX_LABEL_LINES
    label-only lines between two of them."""
    end, j = i, i + 1
    while j < len(lines):
        if j in rows:
            end, j = j, j + 1
            continue
        gap = 0
        while j + gap < len(lines) and gap < MAX_LABEL_LINES and j + gap not in rows and _label_only(lines[j + gap]):
            gap += 1
        if not gap or j + gap not in rows:
            break
        j += gap
    return end


def _table(lines: list[Line], rows: dict[int, _Row], first: int, last: int, size: float) -> Found | None:
    """The table of a run of rows, or None if their figures do not stand in columns."""
    columns = _columns(list(rows.values()), size)
    if not columns or len(rows) < 2 or (len(rows) < 3 and len(columns) < 2):
        return None
    placed = {k: v for k, r in rows.items() if (v := _place(r.cells, columns, size)) is not None}
    if len(placed) < 0.8 * len(rows):
        return None
    left = columns[0][0] - 0.5 * size  # where the label column ends
    start = _groups_above(lines, first, left, size)
    labels = max(r.label_x1 for r in rows.values())  # where the longest label ends
    top, headers, units = _headers(lines, start, columns, labels, size)
    cap_top, caption = _caption(lines, top)
    body = _body(lines, range(start, last + 1), rows, placed, size)
    return Found(Table(" ".join(["\n".join(caption), *units]).strip(), headers, body), range(cap_top, top), range(top, last + 1))


def _columns(rows: list[_Row], size: float) -> list[tuple[float, float]]:
    """Value columns as (left, right) extents: figures right-align, so cluster their right edges."""
    edges = sorted((c.x1, c.x0) for r in rows for c in r.cells)
    clusters: list[list[tuple[float, float]]] = []
    for x1, x0 in edges:
        if clusters and x1 - clusters[-1][-1][0] <= 0.8 * size:
            clusters[-1].append((x1, x0))
        else:
            clusters.append([(x1, x0)])
    support = max(2, len(rows) // 4)  # a column holds figures of at least a quarter of the rows
    return [(min(x0 for _, x0 in c), max(x1 for x1, _ in c)) for c in clusters if len(c) >= support]


def _place(cells: list[Word], columns: list[tuple[float, float]], size: float) -> list[str] | None:
    """A row's figures in their columns, by right edge; None if one stands in no column."""
    values = [""] * len(columns)
    for cell in cells:
        k = min(range(len(columns)), key=lambda k: abs(columns[k][1] - cell.x1))
        if abs(columns[k][1] - cell.x1) > 1.6 * size or values[k]:
            return None
        values[k] = cell.text
    return values


def _groups_above(lines: list[Line], first: int, left: float, size: float) -> int:
    """The first of the group titles ("Assets", "Current assets:") just above the first row."""
    k = first
    while k > 0 and first - k < MAX_LABEL_LINES:
        ln = lines[k - 1]
        if not ln.words or not _label_only(ln) or ln.words[-1].x1 > left or ln.bottom - lines[k].top > 2.5 * size:
            break
        k -= 1
    return k


def _segments(words: list[Word], size: float) -> list[Word]:
    """Words joined into the phrases that column gaps part."""
    out: list[Word] = []
    for w in words:
        if out and w.x0 - out[-1].x1 < 0.6 * size:
            out[-1] = Word(f"{out[-1].text} {w.text}", out[-1].x0, w.x1)
        else:
            out.append(w)
    return out


def _headers(lines: list[Line], start: int, columns, labels: float, size: float) -> tuple[int, list[str], list[str]]:
    """Column headers from the lines above a table's body, each phrase given to the columns it
    stands over ("Three Months Ended December 31," over two, "2022" over one). Returns the
    first line used, the headers and the units (or the label column's header)."""
    above: list[tuple[list[Word], list[Word]] | str] = []  # bottom to top: (label-side, over-columns) phrases, or a units line
    # A header starts right of every row label and at most half a column pitch left of the
    # first column; a centred caption above a table of short labels reaches further.
    pitch = (columns[-1][1] - columns[0][1]) / (len(columns) - 1) if len(columns) > 1 else columns[0][1] - columns[0][0]
    reach = columns[0][0] - max(pitch / 2, 2 * size)
    k = start - 1
    while k >= 0 and start - k <= MAX_HEADER_LINES and lines[k].words is not None:
        ln = lines[k]
        if UNITS_RE.match(ln.text):
            above.append(ln.text)
        else:
            segs = _segments(ln.words, size)
            over = [s for s in segs if s.x0 > max(labels + 0.5 * size, reach) and s.x1 > columns[0][0]]
            label_side = [s for s in segs if s.x1 < columns[0][0] - 0.5 * size and s not in over]
            if not over or len(label_side) + len(over) < len(segs) or len(label_side) > 1:
                break  # a line across both sides is a caption or text, not a header
            above.append((label_side, over))
        k -= 1
    head: list[list[str]] = [[] for _ in columns]
    units: list[str] = []
    lowest = next((i for i, item in enumerate(above) if not isinstance(item, str)), None)
    for i in reversed(range(len(above))):  # top to bottom
        item = above[i]
        if isinstance(item, str):
            units.append(item)
            continue
        label_side, over = item
        units += [s.text for s in label_side]
        # Above the lowest header line, fewer phrases than columns span several ("Year ended December 31,").
        spans = _spans(over, columns) if i != lowest and len(over) < len(columns) else [_covered(s, columns) for s in over]
        for seg, cols in zip(over, spans, strict=True):
            for c in cols:
                head[c].append(seg.text)
    return k + 1, [" ".join(h) for h in head], units


def _centre(x: tuple[float, float] | Word) -> float:
    return (x[0] + x[1]) / 2 if isinstance(x, tuple) else (x.x0 + x.x1) / 2


def _covered(seg: Word, columns: list[tuple[float, float]]) -> list[int]:
    """The columns a header phrase stands over: by half its width or of the column's, or, for
    a phrase centred over two columns, a third of the column's."""
    out = []
    for c, (x0, x1) in enumerate(columns):
        overlap = min(seg.x1, x1) - max(seg.x0, x0)
        if overlap > 0.5 * min(x1 - x0, seg.x1 - seg.x0) or overlap > 0.3 * (x1 - x0):
            out.append(c)
    if out:
        return out
    return [min(range(len(columns)), key=lambda c: abs(_centre(columns[c]) - _centre(seg)))]  # over none: the nearest


def _spans(phrases: list[Word], columns: list[tuple[float, float]]) -> list[list[int]]:
    """The columns each spanning phrase heads: those nearer its centre than the next phrase's,
    and within one and a half column pitches of its ends."""
    pitch = (_centre(columns[-1]) - _centre(columns[0])) / max(1, len(columns) - 1)
    out = []
    for i, seg in enumerate(phrases):
        lo = (_centre(phrases[i - 1]) + _centre(seg)) / 2 if i else float("-inf")
        hi = (_centre(seg) + _centre(phrases[i + 1])) / 2 if i + 1 < len(phrases) else float("inf")
        lo, hi = max(lo, seg.x0 - 1.5 * pitch), min(hi, seg.x1 + 1.5 * pitch)
        near = [c for c, col in enumerate(columns) if lo <= _centre(col) < hi]
        out.append(near or _covered(seg, columns))
    return out


def _caption(lines: list[Line], top: int) -> tuple[int, list[str]]:
    """The short lines just above a table that name it: company, title, units."""
    k = top
    while k > 0 and top - k < MAX_CAPTION_LINES:
        ln, below = lines[k - 1], lines[k]
        sentence = ln.text.endswith(".") and not UNITS_RE.match(ln.text)
        if len(ln.text) > 100 or sentence or trailing_values(ln.text) or ln.bottom - below.top > 3 * below.size:
            break
        k -= 1
    out: list[str] = []
    for i in range(k, top):  # a line in the size and weight of the one before wraps it: one caption line
        ln, prev = lines[i], lines[i - 1]
        if out and abs(ln.size - prev.size) < 0.5 and ln.bold == prev.bold:
            out[-1] += " " + ln.text
        else:
            out.append(ln.text)
    return k, out


@dataclass
class _Group:
    title: str  # as printed, with its colon if it has one
    x0: float
    flat: bool  # its rows are not indented under it
    rows: int = 0  # rows under it so far


def _body(lines: list[Line], span: range, rows: dict[int, _Row], placed: dict[int, list[str]], size: float) -> list[tuple[str, list[str]]]:
    """Rows with whole labels: a wrapped label is joined, and the titles of the groups a row is
    in ("Current assets:", "Net Revenue") are put in front of its label."""
    ncols = len(next(iter(placed.values())))
    tol = 0.5 * size
    out: list[tuple[list[_Group], str, list[str]]] = []
    groups: list[_Group] = []
    pending: list[Line] = []
    for k in span:
        ln = lines[k]
        if k not in placed:
            if k in rows:
                out.append(([], ln.text, [""] * ncols))  # figures in no column: kept as text
            else:
                pending.append(ln)
            continue
        label = rows[k].label
        if pending and label[:1].islower():  # a label wrapped onto this line
            label = f"{pending.pop().text} {label}"
        for p in pending:
            flat = ln.x0 <= p.x0 + tol
            # A group title closes the groups at its level or deeper, except that one whose rows
            # it indents nests in a flat group at its own level.
            groups = [g for g in groups if g.x0 < p.x0 - tol or (not flat and g.flat and g.x0 <= p.x0 + tol)]
            groups.append(_Group(p.text, p.x0, flat))
        pending = []
        groups = [g for g in groups if g.flat or ln.x0 > g.x0 + tol]  # out of the indented groups this row is not under
        if groups and label.lower() == groups[-1].title.rstrip(":").lower():  # the group's own total row
            groups.pop()
        for g in groups:
            g.rows += 1
        out.append((list(groups), label, placed[k]))
        if label.lower().startswith("total") and groups:
            groups.pop()
    return [(_label(chain, label), values) for chain, label, values in out]


def _label(chain: list[_Group], label: str) -> str:
    """A row's label under its groups' titles. An indented "group" of one row whose title has
    no colon is that row's label wrapped onto two lines ("PepsiCo Beverages North" / "America")."""
    text = ""
    for g in chain:
        wrapped = not g.flat and g.rows == 1 and not g.title.endswith(":")
        text += g.title.rstrip(":") + (" " if wrapped else ": ")
    return (text + label).strip().rstrip(":")


# --- HTML (unstructured's `text_as_html` for HTML and DOCX tables) ---


class _Cells(HTMLParser):
    """Rows of (is_header, text) cells; a colspan repeats the cell so columns stay in line."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[tuple[bool, str]]] = []
        self._cell: list[str] | None = None
        self._th = False
        self._span = 1
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._th = [], tag == "th"
            span = dict(attrs).get("colspan") or "1"
            self._span = int(span) if span.isdigit() else 1
        elif tag == "thead":
            self._in_head = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            if not self.rows:
                self.rows.append([])
            text = " ".join("".join(self._cell).split())
            self.rows[-1] += [(self._th or self._in_head, text)] * max(1, min(self._span, 50))
            self._cell = None
        elif tag == "thead":
            self._in_head = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_from_html(html: str, caption: str = "") -> Table | None:
    """A Table from an HTML `<table>`: header rows name the columns, the first column labels
    the rows. Header rows are those marked (`<th>`, `<thead>`), else, in a table of figures, up
    to two leading rows without any (two body rows left at least), else, in a table of words of
    three rows or more, the first.
    None for an empty table."""
    parser = _Cells()
    parser.feed(html)
    rows = [r for r in parser.rows if any(t for _, t in r)]
    if not rows:
        return None
    width = max(len(r) for r in rows)
    rows = [r + [(False, "")] * (width - len(r)) for r in rows]

    def figures(row) -> bool:
        return any(is_value(t) and not HEADER_VALUE_RE.fullmatch(t) for _, t in row[1:] if t)

    n_head = 0
    while n_head < min(2, len(rows) - 1) and all(th for th, t in rows[n_head] if t):
        n_head += 1
    if not n_head and any(figures(r) for r in rows):
        while n_head < min(2, len(rows) - 2) and not figures(rows[n_head]):
            n_head += 1
    elif not n_head and len(rows) >= 3:
        n_head = 1
    headers = [" ".join(dict.fromkeys(r[c][1] for r in rows[:n_head] if r[c][1])) for c in range(1, width)]
    label_header = " ".join(r[0][1] for r in rows[:n_head] if r[0][1])
    body = _html_body([[t for _, t in r] for r in rows[n_head:]])
    return Table(caption, headers, body, label_header)


def _html_body(rows: list[list[str]]) -> list[tuple[str, list[str]]]:
    """Rows with only a label are group titles, put in front of the labels below until a total."""
    out, group = [], ""
    for label, *values in rows:
        if label and not any(values):
            group = label.rstrip(":")
            continue
        out.append((f"{group}: {label}" if group and label else label or group, values))
        if label.lower().startswith("total"):
            group = ""
    return out
