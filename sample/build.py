"""python sample/build.py [OUT_DIR]

Build ragtune's bundled sample corpus: the user guide in sample/src/*.md
(one Markdown file per chapter) is rendered into sample/docs/, each chapter
in a different file format, so that one small corpus exercises every ingest
loader without duplicated content.

The output format is chosen by the two-digit prefix of the chapter file name
(see FORMATS below), never by the chapter's content. The build is
deterministic: fixed dates and fixed zip timestamps make a rebuild
byte-identical, so the corpus can be checked in and hashed in tests.

Only the standard library, fpdf2 and python-docx are used.
"""

import html
import io
import json
import re
import shutil
import textwrap
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from docx import Document
from fpdf import FPDF

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
OUT = HERE / "docs"

# One fixed timestamp for every embedded date, so rebuilds are byte-identical.
FIXED_DATE = datetime(2025, 1, 1, tzinfo=UTC)

# The PDF core fonts only cover Latin-1; map common typography to ASCII.
ASCII_FOR = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "--",
        "\u2026": "...",
        "\u2022": "-",
        "\u2192": "->",
        "\u2264": "<=",
        "\u2265": ">=",
        "\u00a0": " ",
    }
)


# --- Parsing: a tiny Markdown subset -----------------------------------------


def parse(md):
    """Return blocks: ("h1"|"h2", text), ("p", text) or ("ul", [items]).

    Blocks are separated by blank lines; a block of "- " lines is a list.
    """
    blocks = []
    for chunk in re.split(r"\n\s*\n", md.strip()):
        heading = re.match(r"(#{1,2}) (.+)$", chunk)
        if heading and "\n" not in chunk:
            blocks.append((f"h{len(heading[1])}", heading[2].strip()))
        elif chunk.startswith("- "):
            items = re.split(r"^- ", chunk, flags=re.M)
            blocks.append(("ul", [" ".join(i.split()) for i in items if i.strip()]))
        else:
            blocks.append(("p", " ".join(chunk.split())))
    return blocks


def plain(text):
    """Drop inline-code backticks for formats without inline markup."""
    return re.sub(r"`([^`]*)`", r"\1", text)


def latin1(text):
    """Make text printable with a PDF core font (Latin-1 only)."""
    text = plain(text).translate(ASCII_FOR)
    return text.encode("latin-1", "replace").decode("latin-1")


def sections(blocks):
    """Split blocks into (title, intro blocks, [(heading, blocks), ...])."""
    title, intro, groups = blocks[0][1], [], []
    for kind, body in blocks[1:]:
        if kind == "h2":
            groups.append((body, []))
        else:
            (groups[-1][1] if groups else intro).append((kind, body))
    return title, intro, groups


def fold(kind, body):
    """Flatten a block to plain text; list items become "- item" lines."""
    return plain(body) if kind == "p" else "\n".join(f"- {plain(i)}" for i in body)


def word_count(blocks):
    words = 0
    for kind, body in blocks:
        words += sum(len(plain(t).split()) for t in (body if kind == "ul" else [body]))
    return words


# --- Writers: one per output format ------------------------------------------


def write_markdown(src, blocks, path):
    # The source already is Markdown; copying keeps it byte-for-byte.
    shutil.copyfile(src, path)


def write_pdf(src, blocks, path):
    # A5-sized pages keep a ~600-word chapter on several pages, so loaders see
    # real page breaks; headings are bold and clearly larger than body text
    # so a loader can find section titles by font size alone.
    pdf = FPDF(format=(148, 210))  # A5 in mm
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(latin1(blocks[0][1]))
    pdf.set_author("ragtune")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    for kind, body in blocks:
        if kind == "h1":
            pdf.set_font("Helvetica", "B", 20)
            pdf.multi_cell(0, 9, latin1(body), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        elif kind == "h2":
            # Never leave a heading alone at the bottom of a page.
            if pdf.get_y() > pdf.h - pdf.b_margin - 30:
                pdf.add_page()
            pdf.ln(2)
            pdf.set_font("Helvetica", "B", 14)
            pdf.multi_cell(0, 7, latin1(body), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif kind == "p":
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(0, 5.5, latin1(body), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        else:
            pdf.set_font("Helvetica", "", 11)
            for item in body:
                pdf.set_x(pdf.l_margin + 4)
                pdf.multi_cell(0, 5.5, "- " + latin1(item), new_x="LMARGIN", new_y="NEXT")
                pdf.ln(1)
            pdf.ln(1)
    pdf.output(str(path))
    assert pdf.pages_count >= 2, f"{path.name} should span at least 2 pages"


def inline_html(text):
    # Escape first; backticks survive escaping, so code spans can be added after.
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text, quote=False))


def write_html(src, blocks, path):
    title = html.escape(plain(blocks[0][1]), quote=False)
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{title}</title>",
        "</head>",
        "<body>",
        "<main>",
    ]
    for kind, body in blocks:
        if kind in ("h1", "h2"):
            lines.append(f"<{kind}>{inline_html(body)}</{kind}>")
        elif kind == "p":
            lines.append(f"<p>{inline_html(body)}</p>")
        else:
            lines += ["<ul>", *(f"<li>{inline_html(i)}</li>" for i in body), "</ul>"]
    lines += ["</main>", "</body>", "</html>"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def add_runs(paragraph, text):
    # Inline code becomes a monospace run, as a human author would format it.
    for n, part in enumerate(re.split(r"`([^`]*)`", text)):
        if part:
            run = paragraph.add_run(part)
            if n % 2:
                run.font.name = "Courier New"


def write_docx(src, blocks, path):
    doc = Document()
    props = doc.core_properties
    props.title = plain(blocks[0][1])
    props.author = props.last_modified_by = "ragtune"
    props.created = props.modified = FIXED_DATE.replace(tzinfo=None)
    props.revision = 1
    styles = {"h1": "Heading 1", "h2": "Heading 2", "p": "Normal"}
    for kind, body in blocks:
        for text in body if kind == "ul" else [body]:
            add_runs(doc.add_paragraph(style=styles.get(kind, "List Bullet")), text)
    buffer = io.BytesIO()
    doc.save(buffer)
    # python-docx stamps zip members with the current time; rewrite the
    # archive with a fixed timestamp (member order and content unchanged).
    with zipfile.ZipFile(buffer) as src_zip, zipfile.ZipFile(path, "w") as out_zip:
        for info in src_zip.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE.timetuple()[:6])
            out_zip.writestr(member, src_zip.read(info), compress_type=zipfile.ZIP_DEFLATED)


def write_text(src, blocks, path):
    # Each heading is a line of its own between blank lines, with no setext
    # underline: unstructured's text partitioner does not read === / --- as
    # heading markup, so an underline would end up in the chunk text and the
    # heading would be taken for body text. Paragraphs wrap at 78 columns.
    wrap = dict(width=78, break_long_words=False, break_on_hyphens=False)
    out = []
    for kind, body in blocks:
        if kind in ("h1", "h2"):
            out.append(plain(body))
        elif kind == "p":
            out.append(textwrap.fill(plain(body), **wrap))
        else:
            out.append("\n".join(textwrap.fill(plain(i), initial_indent="  - ", subsequent_indent="    ", **wrap) for i in body))
    path.write_text("\n\n".join(out) + "\n", encoding="utf-8")


def write_json(src, blocks, path):
    # The intro sits next to the title, so a loader that nests sections under
    # the title does not see an "Evaluation > Evaluation" section.
    title, intro, groups = sections(blocks)
    doc = {
        "title": plain(title),
        "text": "\n\n".join(fold(kind, body) for kind, body in intro),
        "sections": [
            {"heading": plain(heading), "text": "\n\n".join(fold(kind, body) for kind, body in group)} for heading, group in groups
        ],
    }
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(src, blocks, path):
    # Prose paragraphs become {"section", "text"} records; a "Q: ..." paragraph
    # followed by an "A: ..." paragraph becomes one {"section", "question",
    # "answer"} record. A list is folded into the paragraph that introduces it.
    title, intro, groups = sections(blocks)
    records = []
    for heading, group in [(title, intro), *groups]:
        question, first = None, len(records)
        for kind, body in group:
            text = fold(kind, body)
            if kind == "p" and text.startswith("Q: "):
                question = text[3:]
            elif kind == "p" and text.startswith("A: ") and question:
                records.append({"section": plain(heading), "question": question, "answer": text[3:]})
                question = None
            elif kind == "ul" and len(records) > first and "text" in records[-1]:
                records[-1]["text"] += "\n" + text
            else:
                records.append({"section": plain(heading), "text": text})
    lines = (json.dumps(r, ensure_ascii=False) for r in records)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# Chapter prefix -> (output extension, writer). One format per chapter.
FORMATS = {
    "01": (".md", write_markdown),
    "02": (".pdf", write_pdf),
    "03": (".html", write_html),
    "04": (".docx", write_docx),
    "05": (".txt", write_text),
    "06": (".json", write_json),
    "07": (".jsonl", write_jsonl),
}


def main(out=OUT):
    out = Path(out)
    out.mkdir(exist_ok=True)
    # Remove earlier outputs so a renamed chapter leaves no stale file behind.
    for old in out.glob("[0-9][0-9]-*"):
        old.unlink()
    for src in sorted(SRC.glob("*.md")):
        prefix = src.name[:2]
        if prefix not in FORMATS:
            raise SystemExit(f"{src.name}: no output format for prefix {prefix!r}")
        ext, writer = FORMATS[prefix]
        blocks = parse(src.read_text(encoding="utf-8"))
        if not blocks or blocks[0][0] != "h1":
            raise SystemExit(f"{src.name}: a chapter must start with a '# ' title")
        target = out / (src.stem + ext)
        writer(src, blocks, target)
        print(f"{src.name} -> {target} ({word_count(blocks)} words, {target.stat().st_size} bytes)")


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:2])  # an optional output folder, for the test that rebuilds and compares
