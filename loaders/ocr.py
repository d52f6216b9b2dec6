"""OCR for PDF pages with no text layer (scans): pdfium renders the page, the `tesseract`
binary reads it. Its TSV output gives each line's and word's box, so an OCR'd page goes
through the same paragraph, title and table steps as a page with text (loaders/pdf.py).

The binary is run directly (no pytesseract): one subprocess a page, the image on stdin.
"""

from __future__ import annotations

import io
import shutil
import subprocess

from ragtune.loaders.tables import Word

TESSERACT_INSTALL = "install it with `apt-get install tesseract-ocr` (Debian, Ubuntu) or `brew install tesseract` (macOS)"
DPI = 300  # tesseract's own advice for body text; lower loses small print
TIMEOUT_S = 120  # one page; a hung tesseract must not hang the batch


def tesseract() -> str | None:
    """The tesseract binary's path, or None when it is not installed."""
    return shutil.which("tesseract")


def ocr_lines(page, exe: str) -> list[tuple[str, float, float, float, list[Word]]]:
    """One rendered page's text lines as tesseract reads them, in page points as pdfium uses
    (origin at the bottom left): (text, left, top, bottom, words).

    Raises:
        RuntimeError: tesseract failed or timed out (its first line of stderr).
    """
    scale = DPI / 72
    height = page.get_height()
    image = page.render(scale=scale).to_pil()
    png = io.BytesIO()
    image.save(png, "PNG")
    try:
        done = subprocess.run(
            [exe, "stdin", "stdout", "--dpi", str(DPI), "tsv"], input=png.getvalue(), capture_output=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"tesseract took more than {TIMEOUT_S} s on a page") from None
    if done.returncode != 0:
        raise RuntimeError(f"tesseract failed: {(done.stderr.decode(errors='replace').strip().splitlines() or ['?'])[-1]}")
    lines: dict[tuple[str, str, str], list] = {}  # (block, paragraph, line) -> [left, top, bottom, words]
    for row in done.stdout.decode(errors="replace").splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12:
            continue
        level, key = cols[0], (cols[2], cols[3], cols[4])
        left, top, width, tall = (float(c) / scale for c in cols[6:10])
        if level == "4":  # a line's box
            lines[key] = [left, height - top, height - top - tall, []]
        elif level == "5" and cols[11].strip() and key in lines:
            lines[key][3].append(Word(cols[11].strip(), left, left + width))
    return [(" ".join(w.text for w in words), left, top, bottom, words) for left, top, bottom, words in lines.values() if words]
