"""The PDF loader's own details: the metadata title."""

import pytest

from ragtune.loaders import load_file


def _pdf_titled(path, title):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, "A page of text, so that the file loads.")
    pdf.output(str(path))
    return path


@pytest.mark.parametrize(
    "title, kept",
    [
        ("Annual Report 2023", "Annual Report 2023"),
        ("  Q1 2023 8-K  -  Exhibit 99.1 ", "Q1 2023 8-K - Exhibit 99.1"),
        ("Microsoft Word - board minutes.docx", ""),
        ("report_final.pdf", ""),
        ("0001065280-18-000069", ""),  # an EDGAR accession number
        ("Untitled", ""),
        ("", ""),
    ],
)
def test_the_metadata_title_is_kept_only_when_it_names_the_document(tmp_path, title, kept):
    assert load_file(_pdf_titled(tmp_path / "t.pdf", title), 10**6).title == kept
