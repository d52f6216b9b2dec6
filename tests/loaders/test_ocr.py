"""`--ocr`: a scanned page read by tesseract, and the messages that say how to get it."""

import shutil

import pytest

from ragtune.core.config import ConfigError
from ragtune.loaders import LoadError, load_file

MB = 10**6
WORDS = ["The pelican colony nested near the old lighthouse", "during the spring survey of the northern harbour."]


def write_scan(path, words=WORDS):
    """An image-only PDF: text drawn into a 150 dpi picture, as a scanner makes it; no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1275, 1650), 255)
    draw = ImageDraw.Draw(image)
    draw.text((120, 150), "Field Report", fill=0, font=ImageFont.load_default(size=56))
    for i, line in enumerate(words):
        draw.text((120, 300 + 46 * i), line, fill=0, font=ImageFont.load_default(size=34))
    image.save(path, resolution=150)
    return path


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed (apt-get install tesseract-ocr)")
def test_ocr_reads_a_scanned_page_and_marks_it(tmp_path):
    loaded = load_file(write_scan(tmp_path / "scan.pdf"), MB, ocr=True)
    assert loaded.warnings == ["read page(s) 1 by OCR (tesseract)"]
    body = [d for d in loaded.documents if d.category == "OCR"]
    assert body and all(d.page == 1 for d in body)
    assert " ".join(d.text for d in body) == " ".join(WORDS), "one paragraph, every word read"
    assert body[0].section == "Field Report", "the larger type is read as a title"


def test_a_scan_without_ocr_names_the_flag(tmp_path):
    with pytest.raises(LoadError, match="no text layer on any of its 1 pages .*pass --ocr to read them with tesseract"):
        load_file(write_scan(tmp_path / "scan.pdf"), MB)


def test_ocr_without_tesseract_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract on it
    with pytest.raises(LoadError, match="--ocr needs the tesseract binary.*apt-get install tesseract-ocr.*brew install tesseract"):
        load_file(write_scan(tmp_path / "scan.pdf"), MB, ocr=True)
    with pytest.raises(ConfigError, match="--ocr needs the tesseract binary.*apt-get install tesseract-ocr"):
        from helpers import ingest_cfg

        ingest_cfg(tmp_path, [tmp_path], ocr=True)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is not installed (apt-get install tesseract-ocr)")
def test_an_ocr_chunk_is_marked_in_its_source_line(tmp_path):
    from helpers import ingest_cfg, search_cfg
    from ragtune.core import present
    from ragtune.core.records import Source
    from ragtune.rag.ingest import ingest
    from ragtune.rag.retrieve import Retriever

    (tmp_path / "docs").mkdir()
    write_scan(tmp_path / "docs" / "scan.pdf")
    ingest(ingest_cfg(tmp_path / "work", [tmp_path / "docs"], ocr=True))
    hit = Retriever(search_cfg(tmp_path / "work")).search("Where did the pelican colony nest?", 1)[0]
    assert hit.chunk.ocr, "the chunk keeps its OCR category through the index"
    assert present.source_line(1, Source.from_hit(hit)).endswith("p.1 § Field Report (OCR)")
