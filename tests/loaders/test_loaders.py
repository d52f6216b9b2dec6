"""Every loader on the sample corpus, and every kind of bad input from the issue."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import is_root, write_pdf
from ragtune.loaders import LoadError, load_file, walk

MB = 10**6


@pytest.mark.parametrize(
    "name, min_sections",
    [
        ("01-overview.md", 2),
        ("02-ingesting.pdf", 2),
        ("03-search.html", 2),
        ("04-synthetic-data.docx", 2),
        ("05-training.txt", 2),
        ("06-evaluation.json", 2),
        ("07-app-and-faq.jsonl", 2),
    ],
)
def test_every_loader_keeps_provenance(sample_docs, name, min_sections):
    path = (sample_docs / name).resolve()
    loaded = load_file(path, 100 * MB)
    docs = loaded.documents
    assert len(docs) >= 5
    assert {d.source for d in docs} == {str(path)}
    assert all(len(d.sha256) == 64 for d in docs)
    assert len({d.section for d in docs if d.section}) >= min_sections, "section titles were lost"
    assert all(d.category for d in docs)
    if path.suffix == ".pdf":
        assert loaded.pages >= 2 and {d.page for d in docs} >= {1, 2}
    else:
        assert all(d.page is None for d in docs)


def test_pdf_sections_follow_the_type_size(tmp_path):
    pdf = write_pdf(
        tmp_path / "t.pdf",
        [
            [
                ("h1", "Guide"),
                ("p", "Intro text that is long enough to be body text in the document."),
                ("h2", "Install"),
                ("p", "Run the installer and wait for it to finish its work."),
            ],
            [("h2", "Usage"), ("p", "Call the command with a folder of files to index them all.")],
        ],
    )
    docs = load_file(pdf, MB).documents
    by_text = {d.text: d for d in docs}
    assert by_text["Run the installer and wait for it to finish its work."].section == "Guide > Install"
    usage = by_text["Call the command with a folder of files to index them all."]
    assert usage.section == "Guide > Usage" and usage.page == 2
    assert by_text["Usage"].category == "Title"


def test_pdf_with_some_pages_lacking_text_warns_and_keeps_the_rest(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, "The first page has a real text layer with words on it.")
    pdf.add_page()
    pdf.rect(20, 20, 100, 100, style="F")  # a scanned page: a picture, no text
    pdf.output(str(tmp_path / "half.pdf"))
    loaded = load_file(tmp_path / "half.pdf", MB)
    assert loaded.warnings == ["no text layer on page(s) 2; pass --ocr to read them with tesseract"]
    assert [d.page for d in loaded.documents] == [1]


def test_json_is_flattened_with_section_paths(tmp_path):
    p = tmp_path / "g.json"
    p.write_text(
        json.dumps({"title": "Guide", "sections": [{"heading": "Install", "text": "Run pip."}, {"heading": "Use", "text": "Run it."}]})
    )
    docs = load_file(p, MB).documents
    assert [(d.section, d.text) for d in docs] == [("Guide > Install", "Run pip."), ("Guide > Use", "Run it.")]


def test_walk_applies_include_and_exclude_globs(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\ntext")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b text")
    (tmp_path / ".hidden.md").write_text("secret")
    (tmp_path / "sub" / "skip.md").write_text("skip")
    found = list(walk([tmp_path, tmp_path / "missing"], ["**/*.md", "**/*.txt"], [".*", "**/skip.md"]))
    names = sorted(p.name for p in found if not isinstance(p, LoadError))
    assert names == ["a.md", "b.txt"]
    errors = [e for e in found if isinstance(e, LoadError)]
    assert len(errors) == 1 and "no such file" in str(errors[0])


def bad_inputs(tmp):
    """Each bad file, and a word its one-line error must contain."""
    cases = {}
    cases["corrupt.pdf"] = (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage garbage\n", "corrupt")
    cases["empty.pdf"] = (b"", "empty file")
    cases["junk.pdf"] = (bytes(range(256)) * 20, "not a PDF")
    cases["junk.html"] = (b"\x00\x01\x02binary\x00" * 100, "binary data")
    cases["bad.json"] = (b'{"title": "x", "text": ', "malformed JSON")
    cases["bad.jsonl"] = (b'{"a": 1\nnot json\n', "malformed JSONL")
    cases["image.txt"] = (bytes(range(1, 256)) * 20, "binary data")  # no NUL bytes, yet no text encoding fits
    cases["big.txt"] = (b"word " * 300_000, "size limit")
    cases["notes.xyz"] = (b"hello", "unsupported file type")
    for name, (data, _) in cases.items():
        (tmp / name).write_bytes(data)
    write_pdf(tmp / "encrypted.pdf", [[("p", "secret text")]], owner_password="own", user_password="user")
    cases["encrypted.pdf"] = (None, "encrypted")
    from fpdf import FPDF

    scanned = FPDF()
    scanned.add_page()
    scanned.rect(20, 20, 100, 100, style="F")  # a page with a picture and no text layer
    scanned.output(str(tmp / "scanned.pdf"))
    cases["scanned.pdf"] = (None, "no text layer")
    return {name: why for name, (_, why) in cases.items()}


def test_each_bad_input_gets_a_one_line_reason_naming_the_file(tmp_path):
    expected = bad_inputs(tmp_path)
    for name, why in expected.items():
        path = tmp_path / name
        with pytest.raises(LoadError) as err:
            load_file(path, 1 * MB)
        message = str(err.value)
        assert message.startswith(str(path)) and "\n" not in message
        assert why.lower() in message.lower(), message


def test_jsonl_with_some_bad_lines_keeps_the_good_ones(tmp_path):
    p = tmp_path / "mixed.jsonl"
    p.write_text('{"text": "good line one"}\n{broken\n{"text": "good line two"}\n')
    loaded = load_file(p, MB)
    assert [d.text for d in loaded.documents] == ["good line one", "good line two"]
    assert "line 2" in loaded.warnings[0]


@pytest.mark.skipif(not (is_root() and shutil.which("setpriv")), reason="needs root and setpriv to drop the read-anything capability")
def test_unreadable_file_is_reported(tmp_path):
    """Root reads everything, so the loader runs without CAP_DAC_OVERRIDE on a file owned by `nobody`."""
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    secret.chmod(0o600)
    os.chown(secret, 65534, 65534)
    code = (
        "from ragtune.loaders import load_file, LoadError\n"  # the venv's editable install finds the checkout
        f"try: load_file(__import__('pathlib').Path({str(secret)!r}), 10**6)\n"
        "except LoadError as e: print(e)"
    )
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", code]
    out = subprocess.run(drop, capture_output=True, text=True)
    assert out.stdout.strip() == f"{secret}: permission denied (file is not readable)", out.stderr[-500:]
